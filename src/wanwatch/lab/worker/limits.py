"""Bounds every traffic worker enforces, whatever its caller asks."""

DEFAULT_MAX_SECONDS = 120.0  # a worker that is not told otherwise
MAX_ATTEMPTS = 100_000  # connections, echoes or resets of one worker
MAX_BULK_FLOWS = 64
MAX_BULK_SECONDS = 120.0
RST_GAP = 0.01  # between two lone TCP resets
MAX_STREAM_RATE = 5000.0  # packets per second of one stream
MAX_STREAM_SECONDS = 7200.0
MAX_FLAP_CYCLES = 1000  # fault on, fault off
MAX_SERVER_SECONDS = 24 * 3600.0  # a web server or portal (web.py) outlasts no lab run
SINK_PORT = 9009  # the UDP sink's port on the fake internet
MAX_SCAN_PORTS = 64  # per protocol, of one scan or one listener
MAX_LISTEN_SECONDS = 900.0
MAX_SCAN_TIMEOUT = 10.0  # how long a scan waits for the ports that have not answered
