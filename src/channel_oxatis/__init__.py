"""channel_oxatis: the Oxatis channel for channel_core (entry point ``channel_core.channels: oxatis``)."""

__version__ = "0.1.0"
