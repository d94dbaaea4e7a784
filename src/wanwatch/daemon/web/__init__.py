"""The read-only status page and its HTTP endpoint, served on the daemon's own loop."""
