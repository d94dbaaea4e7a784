"""The configuration: a typed, frozen model and a loader that keeps YAML line numbers.

``load(path)`` returns a :class:`Config` or raises :class:`ConfigError` carrying
*every* problem found, each as ``file:line: path.to.field: what is wrong``.
Sections and list items are validated one by one so that a type error in one
uplink does not hide an overlap between two LANs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from wanwatch.errors import ConfigError

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


Duration = Annotated[float, BeforeValidator(parse_duration)]


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


def _ifname(value: object) -> str:
    if not isinstance(value, str) or value in (".", "..") or not _IFNAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a Linux interface name (1-15 characters, no '/', ':' or spaces)"
        )
    return value


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; at most 32)"
        )
    return value


IfName = Annotated[str, BeforeValidator(_ifname)]
Name = Annotated[str, BeforeValidator(_name)]


def _argv(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(
            'a hook is a non-empty argv list, e.g. ["logger", "-t", "wanwatch", "{wan} down"]'
        )
    if not all(isinstance(a, str) for a in value):
        raise ValueError("every argv item must be a string")
    return tuple(value)


Argv = Annotated[tuple[str, ...], BeforeValidator(_argv)]


# --------------------------------------------------------------------------- model


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Each default, bound and meaning is declared once, here; `wanwatch check --explain`
# and the docs derive from this table.
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


def _mon(key: str) -> Any:
    default, lo, hi, meaning = MONITOR_FIELDS[key]
    return Field(default=default, ge=lo, le=hi, description=meaning)


class Monitor(_Model):
    """How an uplink is judged. Defaults are meant to be right for an LTE primary."""

    interval: Duration = _mon("interval")
    down_after: int = _mon("down_after")
    up_after: int = _mon("up_after")
    hold: Duration = _mon("hold")
    max_hold: Duration = _mon("max_hold")
    timeout: Duration | None = _mon("timeout")
    min_timeout: Duration = _mon("min_timeout")
    fast_interval: Duration = _mon("fast_interval")
    degraded_loss: float = _mon("degraded_loss")
    degraded_rtt: Duration = _mon("degraded_rtt")
    loss_window: Duration = _mon("loss_window")


class Probe(_Model):
    """Where an uplink's health is measured, and per-uplink monitor overrides."""

    targets: tuple[IPv4Address, ...] = Field(min_length=1)
    interval: Duration | None = None
    down_after: int | None = None
    up_after: int | None = None
    hold: Duration | None = None
    max_hold: Duration | None = None
    timeout: Duration | None = None
    min_timeout: Duration | None = None
    fast_interval: Duration | None = None
    degraded_loss: float | None = None
    degraded_rtt: Duration | None = None
    loss_window: Duration | None = None

    @field_validator("targets")
    @classmethod
    def _distinct(cls, v: tuple[IPv4Address, ...]) -> tuple[IPv4Address, ...]:
        if len(set(v)) != len(v):
            raise ValueError("a probe target is listed twice")
        return v

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"targets"}).items() if v is not None}


class Wan(_Model):
    """An uplink."""

    name: Name
    interface: IfName
    address: IPv4Interface | None = None
    gateway: IPv4Address
    priority: int = Field(default=1, ge=1, le=255)  # lower is preferred (RouterOS distance)
    weight: int = Field(default=1, ge=1, le=100)  # share of new connections in loadbalance
    probe: Probe


class StaticLease(_Model):
    mac: str
    address: IPv4Address
    hostname: str | None = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str) -> str:
        if not _MAC_RE.match(v):
            raise ValueError(f"{v!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
        return v.lower()

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, v: str | None) -> str | None:
        if v is not None and not _HOSTNAME_RE.match(v):
            raise ValueError(f"{v!r} is not a host name (letters, digits, '-')")
        if v is not None and (_LEASE_TIME_WORD_RE.match(v) or v.lower() in _DHCP_HOST_KEYWORDS):
            # dnsmasq's dhcp-host reads such a field as a lease time or a keyword,
            # not a name ("45m" became a 2700 s lease in the lab; "ignore" drops the host).
            raise ValueError(
                f"{v!r} reads as a lease time or keyword to dnsmasq; pick another host name"
            )
        return v


def _dhcp_range(value: object) -> tuple[IPv4Address, IPv4Address]:
    if isinstance(value, str) and value.count("-") == 1:
        a, b = (s.strip() for s in value.split("-"))
        try:
            return IPv4Address(a), IPv4Address(b)
        except ipaddress.AddressValueError:
            pass
    raise ValueError(f"{value!r} is not a range (first-last, e.g. 192.168.19.2-192.168.19.254)")


class Dhcp(_Model):
    """A DHCP pool on a LAN."""

    range: Annotated[tuple[IPv4Address, IPv4Address], BeforeValidator(_dhcp_range)]
    dns: tuple[IPv4Address, ...] | None = None  # handed to clients; None: the router itself
    lease_time: Duration = Field(default=12 * 3600.0, ge=120, le=365 * 86400)
    static: tuple[StaticLease, ...] = ()

    @field_validator("lease_time")
    @classmethod
    def _whole_seconds(cls, v: float) -> float:
        if v != int(v):
            raise ValueError("a DHCP lease time is a whole number of seconds (RFC 2132 option 51)")
        return v


class Lan(_Model):
    """A network behind the router."""

    name: Name
    interface: IfName
    address: IPv4Interface | None = None
    dhcp: Dhcp | None = None

    @field_validator("interface")
    @classmethod
    def _dnsmasq_can_name(cls, v: str) -> str:
        # dnsmasq serves every LAN: in its config '"' opens a quote, ',' splits a
        # list and a trailing '*' is a wildcard, so such a name would be refused
        # or silently mean other interfaces.
        if bad := next((c for c in v if c in '",*'), None):
            raise ValueError(f"{v!r}: dnsmasq cannot name a LAN interface containing {bad!r}")
        return v


def _domain(value: object) -> str:
    if not isinstance(value, str) or not _DOMAIN_RE.match(value):
        raise ValueError(f"{value!r} is not a domain name (labels of letters, digits, '-')")
    if len(value) > MAX_DOMAIN:
        raise ValueError(f"a domain name has at most {MAX_DOMAIN} characters, not {len(value)}")
    return value


class Dns(_Model):
    upstream: tuple[IPv4Address, ...] = ()  # where the router's forwarder asks
    domain: Annotated[str, BeforeValidator(_domain)] | None = None  # local domain for LAN names


class Nat(_Model):
    masquerade: bool = True


Classifier = Literal[
    "both-addresses",
    "src-address",
    "dst-address",
    "both-addresses-and-ports",
    "src-address-and-port",
    "dst-address-and-port",
]


class Policy(_Model):
    mode: Literal["failover", "loadbalance"] = "failover"
    classifier: Classifier = "both-addresses"  # loadbalance: fields hashed per connection


class Hooks(_Model):
    """Commands run on uplink events, as argv lists (never a shell)."""

    on_down: Argv | None = None
    on_up: Argv | None = None
    on_failover: Argv | None = None
    on_failback: Argv | None = None
    timeout: Duration = Field(default=10.0, ge=0.1, le=600)

    def __init__(self, **data: Any) -> None:
        super().__init__(**{"timeout": 10.0, **data})


class Config(_Model):
    wans: tuple[Wan, ...] = Field(min_length=1)
    lans: tuple[Lan, ...] = ()
    dns: Dns = Dns()
    nat: Nat = Nat()
    policy: Policy = Policy()
    monitor: Monitor = Monitor()
    hooks: Hooks = Hooks()
    source: str = Field(default="<memory>", exclude=True)  # file it came from

    def wan(self, name: str) -> Wan:
        for w in self.wans:
            if w.name == name:
                return w
        raise KeyError(name)

    def monitor_for(self, wan: Wan) -> Monitor:
        """The monitor settings of one uplink: defaults, then global, then its probe block."""
        return Monitor.model_validate({**self.monitor.model_dump(), **wan.probe.overrides()})


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


def _construct(node: yaml.Node, path: Path_, out: _Located) -> Any:
    out.lines[path] = node.start_mark.line + 1
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


_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "required",
    "ip_v4_address": "not an IPv4 address",
    "ip_v4_interface": "not an IPv4 address with prefix (e.g. 192.168.0.2/24)",
    "too_short": "must not be empty",
    "int_parsing": "not a whole number",
    "int_type": "not a whole number",
    "bool_type": "not true/false",
    "bool_parsing": "not true/false",
    "model_type": "must be a mapping of keys",
    "tuple_type": "must be a list",
    "literal_error": "",
}


def _friendly(err: Any) -> str:
    kind = err["type"]
    msg: str = err["msg"]
    if kind == "literal_error":
        return "must be one of " + msg.removeprefix("Input should be ")
    if kind in ("greater_than_equal", "less_than_equal"):
        return msg.replace("Input should be", "must be")
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return _FRIENDLY.get(kind) or msg


class _Collector:
    def __init__(self, source: str, located: _Located) -> None:
        self.source = source
        self.located = located
        self.problems: list[tuple[int, str]] = []

    def add(self, path: Sequence[str | int], message: str) -> None:
        line = self.located.line(path)
        self.problems.append((line, f"{self.source}:{line}: {format_path(path)}: {message}"))

    def validate(self, model: type[_Model] | TypeAdapter[Any], data: Any, path: Path_) -> Any:
        try:
            if isinstance(model, TypeAdapter):
                return model.validate_python(data)
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
                # pydantic puts the offending key itself last for unknown keys
                self.add((*path, *loc), _friendly(err))
            return None


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
    col = _Collector(source, located)
    for prob_path, message in located.problems:
        col.add(prob_path, message)
    data = located.data
    if not isinstance(data, dict):
        col.add((), "the file must be a mapping with wans:, lans:, ...")
        raise ConfigError([m for _, m in col.problems])

    sections: dict[str, Any] = {}
    partial: dict[str, list[Any]] = {}
    singles: dict[str, type[_Model]] = {
        "dns": Dns,
        "nat": Nat,
        "policy": Policy,
        "monitor": Monitor,
        "hooks": Hooks,
    }
    for key, value in data.items():
        if key in singles:
            sections[key] = col.validate(singles[key], value if value is not None else {}, (key,))
        elif key in ("wans", "lans"):
            item_model: type[_Model] = Wan if key == "wans" else Lan
            if not isinstance(value, list):
                col.add((key,), "must be a list")
                continue
            items = [col.validate(item_model, item, (key, i)) for i, item in enumerate(value)]
            sections[key] = items
            # Salvage the valid fields of broken items for the cross checks, so one
            # typo does not hide a subnet overlap (all problems are reported at once).
            partial[key] = [
                it if it is not None else _salvage(item_model, raw)
                for it, raw in zip(items, value, strict=True)
            ]
        else:
            col.add((key,), "unknown key")
    wans_raw = sections.get("wans")
    if not wans_raw and "wans" not in data:
        col.add(("wans",), "required: at least one uplink")
    elif isinstance(data.get("wans"), list) and not data["wans"]:
        col.add(("wans",), "must list at least one uplink")

    _cross_check(col, partial.get("wans", []), partial.get("lans", []), sections.get("dns"))

    if col.problems:
        col.problems.sort(key=lambda p: p[0])
        raise ConfigError([m for _, m in col.problems])
    built = {k: (tuple(v) if isinstance(v, list) else v) for k, v in sections.items()}
    return Config.model_validate({**built, "source": source})


def _is_model(t: object) -> TypeGuard[type[_Model]]:
    return isinstance(t, type) and issubclass(t, _Model)


def _salvage(model: type[_Model], raw: Any) -> Any:
    """A model built from only the fields of ``raw`` that validate; the rest are None."""
    if not isinstance(raw, dict):
        return None
    good: dict[str, Any] = {n: None for n, f in model.model_fields.items() if f.is_required()}
    with suppress(ValidationError):  # already reported by the caller's own validation
        return model.model_validate(raw)
    for name, info in model.model_fields.items():
        if name not in raw:
            continue
        sub = next((t for t in (info.annotation, *get_args(info.annotation)) if _is_model(t)), None)
        if sub is not None and isinstance(raw[name], dict):
            try:
                good[name] = sub.model_validate(raw[name])
            except ValidationError:
                good[name] = _salvage(sub, raw[name])
            continue
        items = get_args(info.annotation)
        if len(items) == 2 and items[1] is Ellipsis and _is_model(items[0]):
            if isinstance(raw[name], list):  # tuple[Model, ...]: salvage item by item
                good[name] = tuple(
                    x for x in (_salvage(items[0], r) for r in raw[name]) if x is not None
                )
            continue
        try:
            ann: Any = info.annotation
            if info.metadata:
                ann = Annotated.__class_getitem__((ann, *info.metadata))  # type: ignore[attr-defined]
            good[name] = TypeAdapter(ann).validate_python(raw[name])
        except ValidationError:
            good[name] = None
    return model.model_construct(**good)


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


def _cross_check(col: _Collector, wans: list[Any], lans: list[Any], dns: Dns | None) -> None:
    """Checks across items. Items may be partial (fields None where invalid)."""
    names: dict[str, Path_] = {}
    ifaces: dict[str, Path_] = {}
    nets: list[_Net] = []
    members: list[tuple[Path_, Wan | Lan]] = [(("wans", i), w) for i, w in _enumerate_valid(wans)]
    members += [(("lans", i), lan) for i, lan in _enumerate_valid(lans)]
    path: Path_
    for path, item in members:
        if item.name is None:
            pass  # already reported as invalid
        elif item.name in names:
            col.add(
                (*path, "name"),
                f"name {item.name!r} already used by {format_path(names[item.name])}",
            )
        else:
            names[item.name] = path
        if item.interface is None:
            pass
        elif item.interface in ifaces:
            col.add(
                (*path, "interface"),
                f"interface {item.interface!r} already used by "
                f"{format_path(ifaces[item.interface])}",
            )
        else:
            ifaces[item.interface] = path
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
        for s_i, s in enumerate(lan.dhcp.static or ()):
            spath: Path_ = ("lans", i, "dhcp", "static", s_i)
            if s.mac in macs:
                col.add(
                    (*spath, "mac"),
                    f"{s.mac} already has a static lease at {format_path(macs[s.mac])}",
                )
            else:
                macs[s.mac] = spath
            if s.address in fixed:
                col.add(
                    (*spath, "address"),
                    f"{s.address} already given to {format_path(fixed[s.address])}",
                )
            else:
                fixed[s.address] = spath
            if s.hostname is not None:
                if s.hostname.lower() in hostnames:
                    col.add(
                        (*spath, "hostname"),
                        f"{s.hostname} already names {format_path(hostnames[s.hostname.lower()])}",
                    )
                else:
                    hostnames[s.hostname.lower()] = spath
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
        for u_i, u in enumerate(dns.upstream):
            for n in nets:
                if u in n.network and n.path[0] == "lans":
                    col.add(
                        ("dns", "upstream", u_i),
                        f"{u} is inside {format_path(n.path[:-1])}: "
                        "upstream DNS is beyond the uplinks",
                    )
