"""The configuration: a typed, frozen model and a loader that keeps YAML line numbers.

``load(path)`` returns a :class:`Config` or raises :class:`ConfigError` carrying
*every* problem found, each as ``file:line: path.to.field: what is wrong``.

The model is a tree of frozen msgspec Structs. msgspec checks each value against
its declared type and bounds (strictly: ``"5"`` is not a number, ``true`` is not
one either); the loader walks the tree field by field, so that a type error in
one uplink does not hide an overlap between two LANs. msgspec replaced
pydantic for the daemon's footprint: msgspec, this model and a loaded office
cost about 4 MB of resident memory (bench/footprint.py); the switch cut the
running daemon from 46.3 to 35.6 MB, under the 40 MB budget of docs/architecture.md.
"""

from wanwatch.config.fields import format_duration, format_path, parse_duration
from wanwatch.config.load import load, loads
from wanwatch.config.model import (
    MONITOR_FIELDS,
    Config,
    Dhcp,
    Dns,
    Hooks,
    Lan,
    Monitor,
    Nat,
    Policy,
    Probe,
    StaticLease,
    Wan,
)

__all__ = [
    "MONITOR_FIELDS",
    "Config",
    "Dhcp",
    "Dns",
    "Hooks",
    "Lan",
    "Monitor",
    "Nat",
    "Policy",
    "Probe",
    "StaticLease",
    "Wan",
    "format_duration",
    "format_path",
    "load",
    "loads",
    "parse_duration",
]
