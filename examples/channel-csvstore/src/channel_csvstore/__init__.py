"""channel_csvstore: manual orders kept in a CSV file, as a channel_core channel."""

__version__ = "0.1.0"
