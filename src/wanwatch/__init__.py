"""wanwatch: keep a small office online when an uplink dies."""

__version__ = "0.1.0"
