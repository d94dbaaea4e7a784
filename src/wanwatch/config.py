"""The configuration: a typed, frozen model and a loader that keeps YAML line numbers.

``load(path)`` returns a :class:`Config` or raises :class:`ConfigError` carrying
*every* problem found, each as ``file:line: path.to.field: what is wrong``.

The model is a tree of frozen msgspec Structs. msgspec checks each value against
its declared type and bounds (strictly: ``"5"`` is not a number, ``true`` is not
one either); the loader walks the tree field by field, so that a type error in
one uplink does not hide an overlap between two LANs. msgspec replaced
pydantic for the daemon's footprint: msgspec, this model and a loaded office
cost about 4 MB of resident memory (bench/footprint.py); the switch cut the
running daemon from 46.3 to 35.6 MB, under issue 3's 40 MB.
"""

from __future__ import annotations

import ipaddress
import re
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar, Union, get_args, get_origin

import msgspec
import yaml
from msgspec import Meta, Struct

from wanwatch.errors import ConfigError

# --------------------------------------------------------------------------- field rules


@dataclass(frozen=True)
class Parse:
    """``Annotated`` marker: turns the raw YAML value into the field's type before
    the type and bounds are checked (raise ValueError to reject it)."""

    fn: Callable[[Any], Any]


@dataclass(frozen=True)
class Check:
    """``Annotated`` marker: checks (and may normalise) the value once it has the
    field's type and is within bounds (raise ValueError to reject it)."""

    fn: Callable[[Any], Any]


# --------------------------------------------------------------------------- durations

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """``500ms``, ``10s``, ``5m``, ``1h``, ``1d`` or plain seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration (use 500ms, 10s, 5m, 1h, 1d or seconds)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use 500ms, 10s, 5m, 1h, 1d or seconds)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest exact spelling of ``seconds`` in the units above."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[float, Parse(parse_duration)]


# --------------------------------------------------------------------------- names

# Linux dev_valid_name(): 1..15 bytes (IFNAMSIZ 16 with the NUL), not "." or "..",
# and no "/", ":" or whitespace.
_IFNAME_RE = re.compile(r"^[^/:\s]{1,15}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# dnsmasq's dhcp-host takes digits with an optional w/d/h/m/s suffix as a lease
# time, and "infinite" / "ignore" as keywords, wherever they appear (option.c).
_LEASE_TIME_WORD_RE = re.compile(r"^[0-9]+[wdhmsWDHMS]?$")
_DHCP_HOST_KEYWORDS = ("infinite", "ignore")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
MAX_DOMAIN = 253  # RFC 1035 2.3.4: 255 octets on the wire = 253 characters as text


def _ifname(value: str) -> str:
    if value in (".", "..") or not _IFNAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a Linux interface name (1-15 characters, no '/', ':' or spaces)"
        )
    return value


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; at most 32)"
        )
    return value


IfName = Annotated[str, Check(_ifname)]
Name = Annotated[str, Check(_name)]


def _argv(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(
            'a hook is a non-empty argv list, e.g. ["logger", "-t", "wanwatch", "{wan} down"]'
        )
    if not all(isinstance(a, str) for a in value):
        raise ValueError("every argv item must be a string")
    return tuple(value)


Argv = Annotated[tuple[str, ...], Parse(_argv)]


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("a probe target is listed twice")
    return values


def _mac(value: str) -> str:
    if not _MAC_RE.match(value):
        raise ValueError(f"{value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return value.lower()


def _hostname(value: str) -> str:
    if not _HOSTNAME_RE.match(value):
        raise ValueError(f"{value!r} is not a host name (letters, digits, '-')")
    if _LEASE_TIME_WORD_RE.match(value) or value.lower() in _DHCP_HOST_KEYWORDS:
        # dnsmasq's dhcp-host reads such a field as a lease time or a keyword,
        # not a name ("45m" became a 2700 s lease in the lab; "ignore" drops the host).
        raise ValueError(
            f"{value!r} reads as a lease time or keyword to dnsmasq; pick another host name"
        )
    return value


def _dhcp_range(value: object) -> tuple[IPv4Address, IPv4Address]:
    if isinstance(value, str) and value.count("-") == 1:
        a, b = (s.strip() for s in value.split("-"))
        try:
            return IPv4Address(a), IPv4Address(b)
        except ipaddress.AddressValueError:
            pass
    raise ValueError(f"{value!r} is not a range (first-last, e.g. 192.168.19.2-192.168.19.254)")


def _whole_seconds(value: float) -> float:
    if value != int(value):
        raise ValueError("a DHCP lease time is a whole number of seconds (RFC 2132 option 51)")
    return value


def _dnsmasq_can_name(value: str) -> str:
    # dnsmasq serves every LAN: in its config '"' opens a quote, ',' splits a
    # list and a trailing '*' is a wildcard, so such a name would be refused
    # or silently mean other interfaces.
    if bad := next((c for c in value if c in '",*'), None):
        raise ValueError(f"{value!r}: dnsmasq cannot name a LAN interface containing {bad!r}")
    return value


def _domain(value: str) -> str:
    if not _DOMAIN_RE.match(value):
        raise ValueError(f"{value!r} is not a domain name (labels of letters, digits, '-')")
    if len(value) > MAX_DOMAIN:
        raise ValueError(f"a domain name has at most {MAX_DOMAIN} characters, not {len(value)}")
    return value


def _some_uplink(wans: tuple[Any, ...]) -> tuple[Any, ...]:
    if not wans:
        raise ValueError("must list at least one uplink")
    return wans


# --------------------------------------------------------------------------- model


class _Model(Struct, frozen=True):
    """A frozen, typed config section. msgspec passes ``frozen`` on to subclasses;
    they repeat it for mypy. Fields named in ``_internal`` are not read from YAML."""

    _internal: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_data(cls, data: Any, source: str = "<memory>") -> Self:
        """Validate plain data (as YAML gives it); ConfigError lists every problem."""
        return _validated(cls, _Located(data), source)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (not validated: for code and tests, not user input)."""
        return msgspec.structs.replace(self, **changes)

    def to_data(self, *, drop_none: bool = False, drop_defaults: bool = False) -> dict[str, Any]:
        """Plain data for YAML or JSON: lists for tuples, addresses as text."""
        out: dict[str, Any] = {}
        for f in msgspec.structs.fields(self):
            if f.name in self._internal:
                continue
            value = getattr(self, f.name)
            if (drop_none and value is None) or (drop_defaults and value == _default(f)):
                continue
            out[f.name] = _plain(value, drop_none, drop_defaults)
        return out


def _default(f: msgspec.structs.FieldInfo) -> Any:
    if f.default is not msgspec.NODEFAULT:
        return f.default
    if f.default_factory is not msgspec.NODEFAULT:
        return f.default_factory()
    return msgspec.NODEFAULT


def _plain(value: Any, drop_none: bool, drop_defaults: bool) -> Any:
    if isinstance(value, _Model):
        return value.to_data(drop_none=drop_none, drop_defaults=drop_defaults)
    if isinstance(value, tuple):
        return [_plain(v, drop_none, drop_defaults) for v in value]
    if isinstance(value, IPv4Address | IPv4Interface):
        return str(value)
    return value


# Each default, bound and meaning of the monitor settings is declared once, here;
# the model, `wanwatch check --explain` and the docs derive from this table.
#   key: (default, low, high, meaning)
MONITOR_FIELDS: dict[str, tuple[Any, float, float, str]] = {
    "interval": (0.5, 0.1, 60, "time between probes while healthy"),
    "down_after": (3, 1, 50, "fewest lost probes in a row that can mark an uplink down"),
    "up_after": (5, 1, 100, "good probes in a row that mark it up again"),
    "hold": (10.0, 0, 86400, "an uplink must stay up this long before it is preferred again"),
    "max_hold": (300.0, 0, 86400, "flap damping: the longest hold after repeated flaps"),
    "timeout": (None, 0.01, 30, "fixed probe timeout; unset: derived from the measured RTT"),
    "min_timeout": (0.15, 0.01, 30, "floor of the RTT-derived probe timeout"),
    "fast_interval": (0.025, 0.005, 5, "probe cadence while a loss is unconfirmed"),
    "degraded_loss": (40.0, 1, 100, "% loss over loss_window that marks an uplink degraded"),
    "degraded_rtt": (1.0, 0.001, 60, "smoothed RTT that marks an uplink degraded"),
    "loss_window": (30.0, 1, 3600, "window of the loss and RTT figures"),
}


def _mon(key: str) -> Meta:
    _, lo, hi, meaning = MONITOR_FIELDS[key]
    return Meta(ge=lo, le=hi, description=meaning)


_Interval = Annotated[Duration, _mon("interval")]
_DownAfter = Annotated[int, _mon("down_after")]
_UpAfter = Annotated[int, _mon("up_after")]
_Hold = Annotated[Duration, _mon("hold")]
_MaxHold = Annotated[Duration, _mon("max_hold")]
_Timeout = Annotated[Duration, _mon("timeout")]
_MinTimeout = Annotated[Duration, _mon("min_timeout")]
_FastInterval = Annotated[Duration, _mon("fast_interval")]
_DegradedLoss = Annotated[float, _mon("degraded_loss")]
_DegradedRtt = Annotated[Duration, _mon("degraded_rtt")]
_LossWindow = Annotated[Duration, _mon("loss_window")]


class Monitor(_Model, frozen=True):
    """How an uplink is judged. Defaults are meant to be right for an LTE primary."""

    interval: _Interval = MONITOR_FIELDS["interval"][0]
    down_after: _DownAfter = MONITOR_FIELDS["down_after"][0]
    up_after: _UpAfter = MONITOR_FIELDS["up_after"][0]
    hold: _Hold = MONITOR_FIELDS["hold"][0]
    max_hold: _MaxHold = MONITOR_FIELDS["max_hold"][0]
    timeout: _Timeout | None = MONITOR_FIELDS["timeout"][0]
    min_timeout: _MinTimeout = MONITOR_FIELDS["min_timeout"][0]
    fast_interval: _FastInterval = MONITOR_FIELDS["fast_interval"][0]
    degraded_loss: _DegradedLoss = MONITOR_FIELDS["degraded_loss"][0]
    degraded_rtt: _DegradedRtt = MONITOR_FIELDS["degraded_rtt"][0]
    loss_window: _LossWindow = MONITOR_FIELDS["loss_window"][0]


class Probe(_Model, frozen=True):
    """Where an uplink's health is measured, and per-uplink monitor overrides."""

    targets: Annotated[tuple[IPv4Address, ...], Meta(min_length=1), Check(_distinct)]
    interval: _Interval | None = None
    down_after: _DownAfter | None = None
    up_after: _UpAfter | None = None
    hold: _Hold | None = None
    max_hold: _MaxHold | None = None
    timeout: _Timeout | None = None
    min_timeout: _MinTimeout | None = None
    fast_interval: _FastInterval | None = None
    degraded_loss: _DegradedLoss | None = None
    degraded_rtt: _DegradedRtt | None = None
    loss_window: _LossWindow | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k in MONITOR_FIELDS if (v := getattr(self, k)) is not None}


class Wan(_Model, frozen=True, kw_only=True):
    """An uplink."""

    name: Name
    interface: IfName
    address: IPv4Interface | None = None
    gateway: IPv4Address
    priority: Annotated[int, Meta(ge=1, le=255)] = 1  # lower is preferred (RouterOS distance)
    weight: Annotated[int, Meta(ge=1, le=100)] = 1  # share of new connections in loadbalance
    probe: Probe


class StaticLease(_Model, frozen=True):
    mac: Annotated[str, Check(_mac)]
    address: IPv4Address
    hostname: Annotated[str, Check(_hostname)] | None = None


class Dhcp(_Model, frozen=True):
    """A DHCP pool on a LAN."""

    range: Annotated[tuple[IPv4Address, IPv4Address], Parse(_dhcp_range)]
    dns: tuple[IPv4Address, ...] | None = None  # handed to clients; None: the router itself
    lease_time: Annotated[Duration, Meta(ge=120, le=365 * 86400), Check(_whole_seconds)] = (
        12 * 3600.0
    )
    static: tuple[StaticLease, ...] = ()


class Lan(_Model, frozen=True):
    """A network behind the router."""

    name: Name
    interface: Annotated[IfName, Check(_dnsmasq_can_name)]
    address: IPv4Interface | None = None
    dhcp: Dhcp | None = None


class Dns(_Model, frozen=True):
    upstream: tuple[IPv4Address, ...] = ()  # where the router's forwarder asks
    domain: Annotated[str, Check(_domain)] | None = None  # local domain for LAN names


class Nat(_Model, frozen=True):
    masquerade: bool = True


Classifier = Literal[
    "both-addresses",
    "src-address",
    "dst-address",
    "both-addresses-and-ports",
    "src-address-and-port",
    "dst-address-and-port",
]


class Policy(_Model, frozen=True):
    mode: Literal["failover", "loadbalance"] = "failover"
    classifier: Classifier = "both-addresses"  # loadbalance: fields hashed per connection


class Hooks(_Model, frozen=True):
    """Commands run on uplink events, as argv lists (never a shell)."""

    on_down: Argv | None = None
    on_up: Argv | None = None
    on_failover: Argv | None = None
    on_failback: Argv | None = None
    on_admin: Argv | None = None  # wanwatch disable / enable
    timeout: Annotated[Duration, Meta(ge=0.1, le=600)] = 10.0


class Config(_Model, frozen=True):
    _internal: ClassVar[tuple[str, ...]] = ("source",)

    wans: Annotated[tuple[Wan, ...], Meta(description="at least one uplink"), Check(_some_uplink)]
    lans: tuple[Lan, ...] = ()
    dns: Dns = Dns()
    nat: Nat = Nat()
    policy: Policy = Policy()
    monitor: Monitor = Monitor()
    hooks: Hooks = Hooks()
    source: str = "<memory>"  # the file it came from

    def wan(self, name: str) -> Wan:
        for w in self.wans:
            if w.name == name:
                return w
        raise KeyError(name)

    def monitor_for(self, wan: Wan) -> Monitor:
        """The monitor settings of one uplink: defaults, then global, then its probe block."""
        return self.monitor.replace(**wan.probe.overrides())


# --------------------------------------------------------------------------- loading


Path_ = tuple[str | int, ...]


@dataclass
class _Located:
    """Plain Python data from YAML plus the line of every path in it."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    problems: list[tuple[Path_, str]] = field(default_factory=list)
    _loader: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))

    def scalar(self, node: yaml.Node) -> Any:
        return self._loader.construct_object(node)

    def line(self, path: Sequence[str | int]) -> int:
        p = tuple(path)
        while p and p not in self.lines:
            p = p[:-1]
        return self.lines.get(p, 1)


# Deeper than any real config; also where a recursive YAML alias (``&a [*a]``,
# which yaml.compose returns as a cyclic node graph) is stopped.
MAX_NESTING = 32


def _construct(node: yaml.Node, path: Path_, out: _Located) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if len(path) > MAX_NESTING:
        out.problems.append((path, "nested too deep (a recursive alias?)"))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = out.scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                out.problems.append(
                    (path, f"key at line {key_node.start_mark.line + 1} must be a plain word")
                )
                continue
            if key in result:
                out.lines[(*path, key)] = key_node.start_mark.line + 1
                out.problems.append(((*path, key), "key given twice"))
                continue
            result[key] = _construct(value_node, (*path, key), out)
            out.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(n, (*path, i), out) for i, n in enumerate(node.value)]
    return out.scalar(node)


def format_path(path: Sequence[str | int]) -> str:
    s = ""
    for part in path:
        s += f"[{part}]" if isinstance(part, int) else (f".{part}" if s else str(part))
    return s or "(top)"


_NOT_IP = {
    IPv4Address: "not an IPv4 address",
    IPv4Interface: "not an IPv4 address with prefix (e.g. 192.168.0.2/24)",
}


def _ip_hook(tp: type, obj: Any) -> Any:
    """msgspec's hook for the types it does not know: IPv4 addresses from text."""
    if tp not in _NOT_IP:
        raise NotImplementedError(tp)
    if isinstance(obj, tp):
        return obj  # already parsed (a Parse rule's result)
    if isinstance(obj, str):
        try:
            return tp(obj)
        except ValueError:
            pass
    raise ValueError(_NOT_IP[tp])


_STEP_RE = re.compile(r"\[(\d+)\]|\.([^.\[]+)")
_EXPECTED_RE = re.compile(r"^Expected `(\w+)`, got `\w+`$")
_BOUND_RE = re.compile(r"^Expected `\w+` (>=|<=) (\S+)$")
_TYPE_WORDS = {
    "int": "not a whole number",
    "float": "not a number",
    "bool": "not true/false",
    "str": "must be text",
    "array": "must be a list",
    "object": "must be a mapping of keys",
}


def _friendly(message: str, tp: Any, duration: bool) -> str:
    """msgspec's wording of a rejected value, in the words of the config docs
    (bounds of a duration in its own units)."""
    if message.startswith("Invalid enum value"):
        *first, last = (repr(a) for a in get_args(tp))
        return f"must be one of {', '.join(first)} or {last}" if first else f"must be {last}"
    if m := _EXPECTED_RE.match(message):
        return _TYPE_WORDS.get(m.group(1), message)
    if m := _BOUND_RE.match(message):
        bound = format_duration(float(m.group(2))) if duration else m.group(2)
        return f"must be {'at least' if m.group(1) == '>=' else 'at most'} {bound}"
    if message.startswith("Expected `array` of length >= 1"):
        return "must not be empty"
    return message


def _steps(at: str) -> Path_:
    return tuple(int(i) if i else key for i, key in _STEP_RE.findall(at))


_BAD: Any = object()  # a value that was rejected (and reported)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, _Model)


class _Walker:
    """Validates raw YAML data against the model field by field, reporting every
    problem with its line. A rejected field becomes None in its (partial) parent,
    so the cross checks still see the rest."""

    def __init__(self, source: str, located: _Located) -> None:
        self.source = source
        self.located = located
        self.problems: list[tuple[int, str]] = []

    def add(self, path: Sequence[str | int], message: str) -> None:
        line = self.located.line(path)
        self.problems.append((line, f"{self.source}:{line}: {format_path(path)}: {message}"))

    def struct(self, cls: type[_Model], raw: Any, path: Path_) -> Any:
        if raw is None:
            raw = {}  # an empty section: every field takes its default
        if not isinstance(raw, dict):
            self.add(path, "must be a mapping of keys")
            return _BAD
        fields = [f for f in msgspec.structs.fields(cls) if f.name not in cls._internal]
        names = {f.name for f in fields}
        for key in raw:
            if key not in names:
                self.add((*path, key), "unknown key")
        values: dict[str, Any] = {}
        for f in fields:
            if f.name in raw:
                value = self.value(f.type, raw[f.name], (*path, f.name))
                values[f.name] = None if value is _BAD else value
            elif f.required:
                hint = next((m.description for m in _metas(f.type) if m.description), None)
                self.add((*path, f.name), f"required: {hint}" if hint else "required")
                values[f.name] = None
        return cls(**values)  # Struct __init__ checks nothing: partial parents are fine

    def value(self, tp: Any, raw: Any, path: Path_) -> Any:
        metas: list[Meta] = []
        rules: list[Parse | Check] = []
        optional = False
        while True:  # peel Annotated[...] and X | None down to the type itself
            if get_origin(tp) is Annotated:
                tp, *extra = get_args(tp)
                metas += [x for x in extra if isinstance(x, Meta)]
                rules += [x for x in extra if isinstance(x, Parse | Check)]
            elif get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
                optional = True
                (tp,) = (a for a in get_args(tp) if a is not type(None))
            else:
                break
        if raw is None and optional:
            return None
        try:
            for rule in rules:
                if isinstance(rule, Parse):
                    raw = rule.fn(raw)
            if _is_model(tp):
                value = self.struct(tp, raw, path)
            elif get_origin(tp) is tuple and _is_model(get_args(tp)[0]):
                if not isinstance(raw, list):
                    self.add(path, "must be a list")
                    return _BAD
                items = (self.struct(get_args(tp)[0], r, (*path, i)) for i, r in enumerate(raw))
                value = tuple(None if it is _BAD else it for it in items)  # keeps indexes
            else:
                target = Annotated.__class_getitem__((tp, *metas)) if metas else tp  # type: ignore[attr-defined]
                value = msgspec.convert(raw, target, strict=True, dec_hook=_ip_hook)
            if value is _BAD:
                return _BAD
            for rule in rules:
                if isinstance(rule, Check):
                    value = rule.fn(value)
        except ValueError as exc:
            if isinstance(exc, msgspec.ValidationError):
                # msgspec says where inside the value: "<what> - at `$[1].key`"
                what, _, at = str(exc).partition(" - at `$")
                duration = Parse(parse_duration) in rules
                self.add((*path, *_steps(at.rstrip("`"))), _friendly(what, tp, duration))
            else:
                self.add(path, str(exc))
            return _BAD
        return value


def _metas(tp: Any) -> list[Meta]:
    return (
        [x for x in get_args(tp)[1:] if isinstance(x, Meta)] if get_origin(tp) is Annotated else []
    )


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{p}: not UTF-8 text"]) from None
    return loads(text, str(p))


def loads(text: str, source: str = "<memory>") -> Config:
    """Parse and validate; raise ConfigError listing every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{source}:{line}: yaml: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}:1: yaml: {exc}"]) from None
    located = _Located(None)
    located.data = _construct(node, (), located) if node is not None else {}
    if not isinstance(located.data, dict):
        raise ConfigError([f"{source}:1: (top): the file must be a mapping with wans:, lans:, ..."])
    return _validated(Config, located, source)


_M = TypeVar("_M", bound=_Model)


def _validated(cls: type[_M], located: _Located, source: str) -> _M:
    walker = _Walker(source, located)
    for prob_path, message in located.problems:
        walker.add(prob_path, message)
    value = walker.struct(cls, located.data, ())
    if isinstance(value, Config):
        _cross_check(walker, list(value.wans or ()), list(value.lans or ()), value.dns)
        value = value.replace(source=source)
    if walker.problems:
        walker.problems.sort(key=lambda p: p[0])
        raise ConfigError([m for _, m in walker.problems])
    return value  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- cross checks


@dataclass(frozen=True)
class _Net:
    path: Path_
    network: IPv4Network
    own: IPv4Address


_T = TypeVar("_T")


def _enumerate_valid(items: list[_T | None]) -> Iterator[tuple[int, _T]]:
    for i, item in enumerate(items):
        if item is not None:
            yield i, item


def _once(col: _Walker, seen: dict[Any, Path_], key: Any, at: Path_, *, used: str) -> None:
    """Report field ``at`` if an earlier item already has ``key`` ("``used`` <that
    item>"); a None key was already reported as invalid."""
    if key is None:
        return
    if key in seen:
        col.add(at, f"{used} {format_path(seen[key])}")
    else:
        seen[key] = at[:-1]


def _cross_check(col: _Walker, wans: list[Any], lans: list[Any], dns: Dns | None) -> None:
    """Checks across items. Items may be partial (fields None where invalid)."""
    names: dict[str, Path_] = {}
    ifaces: dict[str, Path_] = {}
    nets: list[_Net] = []
    members: list[tuple[Path_, Wan | Lan]] = [(("wans", i), w) for i, w in _enumerate_valid(wans)]
    members += [(("lans", i), lan) for i, lan in _enumerate_valid(lans)]
    path: Path_
    for path, item in members:
        _once(col, names, item.name, (*path, "name"), used=f"name {item.name!r} already used by")
        _once(
            col,
            ifaces,
            item.interface,
            (*path, "interface"),
            used=f"interface {item.interface!r} already used by",
        )
        if item.address is not None:
            if item.address.network.prefixlen >= 31 and isinstance(item, Lan):
                col.add((*path, "address"), "a LAN needs a prefix of /30 or shorter")
            elif (
                item.address.ip
                in (item.address.network.network_address, item.address.network.broadcast_address)
                and item.address.network.prefixlen < 31
            ):
                col.add(
                    (*path, "address"), f"{item.address.ip} is the network or broadcast address"
                )
            nets.append(_Net((*path, "address"), item.address.network, item.address.ip))

    for a_i, a in enumerate(nets):
        for b in nets[a_i + 1 :]:
            if a.network.overlaps(b.network):
                col.add(
                    b.path, f"subnet {b.network} overlaps {a.network} of {format_path(a.path[:-1])}"
                )

    target_owner: dict[IPv4Address, Path_] = {}
    for i, w in _enumerate_valid(wans):
        path = ("wans", i)
        if w.address is not None and w.gateway is not None:
            if w.gateway not in w.address.network:
                col.add(
                    (*path, "gateway"),
                    f"{w.gateway} is outside the uplink's subnet {w.address.network}",
                )
            elif w.gateway == w.address.ip:
                col.add((*path, "gateway"), f"{w.gateway} is the uplink's own address")
        targets = w.probe.targets if w.probe is not None and w.probe.targets else ()
        for t_i, t in enumerate(targets):
            tpath = (*path, "probe", "targets", t_i)
            for n in nets:
                if t in n.network:
                    col.add(
                        tpath,
                        f"{t} is inside {format_path(n.path[:-1])}'s subnet {n.network}: "
                        "a probe target must be beyond the uplink",
                    )
                    break
            else:
                if (
                    t.is_loopback
                    or t.is_multicast
                    or t.is_unspecified
                    or t == IPv4Address("255.255.255.255")
                ):
                    col.add(tpath, f"{t} cannot be probed through an uplink")
            if t in target_owner:
                col.add(
                    tpath,
                    f"{t} is already a probe target of {format_path(target_owner[t])}: "
                    "each target must be pinned to one uplink (RouterOS cannot pin it twice)",
                )
            else:
                target_owner[t] = path

    pools: list[tuple[Path_, IPv4Address, IPv4Address]] = []
    for i, lan in _enumerate_valid(lans):
        if lan.dhcp is None or lan.dhcp.range is None:
            continue
        path = ("lans", i, "dhcp")
        lo, hi = lan.dhcp.range
        if lo > hi:
            col.add((*path, "range"), f"{lo}-{hi} is reversed (first address is above the last)")
        elif lan.address is not None:
            net = lan.address.network
            if lo not in net or hi not in net:
                col.add((*path, "range"), f"{lo}-{hi} is outside the LAN {net}")
            elif lo <= lan.address.ip <= hi:
                col.add(
                    (*path, "range"),
                    f"{lo}-{hi} contains the router's own address {lan.address.ip}",
                )
            elif lo == net.network_address or hi == net.broadcast_address:
                col.add((*path, "range"), f"{lo}-{hi} includes the network or broadcast address")
        pools.append((("lans", i), lo, hi))

    macs: dict[str, Path_] = {}
    fixed: dict[IPv4Address, Path_] = {}
    hostnames: dict[str, Path_] = {}  # one DNS name space for every LAN (dnsmasq)
    for i, lan in _enumerate_valid(lans):
        if lan.dhcp is None:
            continue
        for s_i, s in _enumerate_valid(list(lan.dhcp.static or ())):
            spath: Path_ = ("lans", i, "dhcp", "static", s_i)
            _once(col, macs, s.mac, (*spath, "mac"), used=f"{s.mac} already has a static lease at")
            hostname = s.hostname.lower() if s.hostname is not None else None
            _once(
                col, hostnames, hostname, (*spath, "hostname"), used=f"{s.hostname} already names"
            )
            _once(col, fixed, s.address, (*spath, "address"), used=f"{s.address} already given to")
            if s.address is None:
                continue
            if lan.address is not None:
                if s.address not in lan.address.network:
                    col.add(
                        (*spath, "address"), f"{s.address} is outside the LAN {lan.address.network}"
                    )
                elif s.address == lan.address.ip:
                    col.add((*spath, "address"), f"{s.address} is the router's own address")
            for ppath, lo, hi in pools:
                if ppath != ("lans", i) and lo <= s.address <= hi:
                    col.add(
                        (*spath, "address"),
                        f"{s.address} is inside the pool of {format_path(ppath)}",
                    )

    if dns is not None:
        for u_i, u in enumerate(dns.upstream or ()):
            for n in nets:
                if u in n.network and n.path[0] == "lans":
                    col.add(
                        ("dns", "upstream", u_i),
                        f"{u} is inside {format_path(n.path[:-1])}: "
                        "upstream DNS is beyond the uplinks",
                    )
