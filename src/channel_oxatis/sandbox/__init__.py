"""A local stand-in for an Oxatis store: the Web Services HTTP form interface on loopback.

``python -m channel_oxatis.sandbox --port 8765`` (or ``channel sandbox``) runs it;
tests and the demo start it in-process with :class:`SandboxServer`.
"""

from channel_oxatis.sandbox.server import FAULT_KINDS, Fault, SandboxConfig, SandboxServer
from channel_oxatis.sandbox.store import SandboxStore

__all__ = ["FAULT_KINDS", "Fault", "SandboxConfig", "SandboxServer", "SandboxStore"]
