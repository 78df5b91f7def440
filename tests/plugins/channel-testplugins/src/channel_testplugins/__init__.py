"""Test-only channel plugins installed through real entry points."""
