"""The config loader: YAML with the line of every path, validated field by field.

Every problem is reported, each as ``file:line: path.to.field: what is wrong``.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Network
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import msgspec
import yaml
from msgspec import Meta

from wanwatch.config.checks import check_firewall, check_rules, cross_check
from wanwatch.config.fields import Check, Parse, Path_, format_duration, format_path, parse_duration
from wanwatch.config.ha import check_ha
from wanwatch.config.ipv6 import check_ipv6
from wanwatch.config.model import Config, Model
from wanwatch.errors import ConfigError


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


_NOT_IP = {
    IPv4Address: "not an IPv4 address",
    IPv4Interface: "not an IPv4 address with prefix (e.g. 192.168.0.2/24)",
    IPv6Address: "not an IPv6 address",
    IPv6Network: "not an IPv6 prefix (e.g. 2001:db8:1:100::/56)",
}


def _ip_hook(tp: type, obj: Any) -> Any:
    """msgspec's hook for the types it does not know: addresses and prefixes from text."""
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
    return isinstance(tp, type) and issubclass(tp, Model)


def _variants(tp: Any) -> dict[str, type[Model]] | None:
    """A union of sections told apart by one key (each member's ``_tag``): value -> class."""
    if get_origin(tp) not in (Union, types.UnionType):
        return None
    members = get_args(tp)
    if not all(_is_model(m) and m._tag is not None for m in members):
        return None
    return {m._tag[1]: m for m in members}


def _is_section(tp: Any) -> bool:
    return _is_model(tp) or _variants(tp) is not None


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

    def struct(self, cls: type[Model], raw: Any, path: Path_) -> Any:
        if raw is None:
            raw = {}  # an empty section: every field takes its default
        if not isinstance(raw, dict):
            self.add(path, "must be a mapping of keys")
            return _BAD
        fields = [f for f in msgspec.structs.fields(cls) if f.name not in cls._internal]
        names = {f.encode_name for f in fields}  # a YAML key may differ: `from` is `from_`
        for key in raw:
            if key not in names:
                self.add((*path, key), "unknown key")
        values: dict[str, Any] = {}
        for f in fields:
            key = f.encode_name
            if key in raw:
                value = self.value(f.type, raw[key], (*path, key))
                values[f.name] = None if value is _BAD else value
            elif f.required:
                hint = next((m.description for m in _metas(f.type) if m.description), None)
                self.add((*path, key), f"required: {hint}" if hint else "required")
                values[f.name] = None
        return cls(**values)  # Struct __init__ checks nothing: partial parents are fine

    def section(self, tp: Any, raw: Any, path: Path_) -> Any:
        """A section, or one of a union of sections chosen by its tag key (``method: tcp``);
        a plain value stands for the member whose ``_shorthand`` field it fills."""
        variants = _variants(tp)
        if variants is None:
            return self.struct(tp, raw, path)
        if not isinstance(raw, dict):
            short = next((m for m in variants.values() if m._shorthand), None)
            if short is None or short._shorthand is None:
                self.add(path, "must be a mapping of keys")
                return _BAD
            (f,) = (f for f in msgspec.structs.fields(short) if f.name == short._shorthand)
            value = self.value(f.type, raw, path)
            return _BAD if value is _BAD else short(**{f.name: value})
        key = next(iter(variants.values()))._tag[0]  # type: ignore[index]
        *first, last = (repr(v) for v in variants)
        choices = f"{', '.join(first)} or {last}" if first else last
        name = raw.get(key)
        if not isinstance(name, str) or name not in variants:
            problem = "must be one of" if key in raw else "required: one of"
            self.add((*path, key), f"{problem} {choices}")
            return _BAD
        return self.struct(variants[name], {k: v for k, v in raw.items() if k != key}, path)

    def value(self, tp: Any, raw: Any, path: Path_) -> Any:
        tp, metas, rules, optional = _peel(tp)
        if raw is None and optional:
            return None
        try:
            for rule in rules:
                if isinstance(rule, Parse):
                    raw = rule.fn(raw)
            value = self._typed(tp, metas, raw, path)
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

    def _typed(self, tp: Any, metas: list[Meta], raw: Any, path: Path_) -> Any:
        """``raw`` as ``tp`` within ``metas``: a section, a list of sections, or a value."""
        if _is_section(tp):
            return self.section(tp, raw, path)
        if get_origin(tp) is tuple and _is_section(get_args(tp)[0]):
            if not isinstance(raw, list):
                self.add(path, "must be a list")
                return _BAD
            items = (self.section(get_args(tp)[0], r, (*path, i)) for i, r in enumerate(raw))
            return tuple(None if it is _BAD else it for it in items)  # keeps indexes
        target = Annotated.__class_getitem__((tp, *metas)) if metas else tp  # type: ignore[attr-defined]
        return msgspec.convert(raw, target, strict=True, dec_hook=_ip_hook)


def _peel(tp: Any) -> tuple[Any, list[Meta], list[Parse | Check], bool]:
    """Annotated[...] and X | None peeled down to X: (X, bounds, rules, optional)."""
    metas: list[Meta] = []
    rules: list[Parse | Check] = []
    optional = False
    while True:
        if get_origin(tp) is Annotated:
            tp, *extra = get_args(tp)
            metas += [x for x in extra if isinstance(x, Meta)]
            rules += [x for x in extra if isinstance(x, Parse | Check)]
        elif get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
            optional = True
            (tp,) = (a for a in get_args(tp) if a is not type(None))
        else:
            return tp, metas, rules, optional


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


_M = TypeVar("_M", bound=Model)


def validate(cls: type[_M], data: Any, source: str = "<memory>") -> _M:
    """``data`` (plain, as YAML gives it) as a ``cls``; ConfigError lists every problem."""
    return _validated(cls, _Located(data), source)


def _validated(cls: type[_M], located: _Located, source: str) -> _M:
    walker = _Walker(source, located)
    for prob_path, message in located.problems:
        walker.add(prob_path, message)
    value = walker.struct(cls, located.data, ())
    if isinstance(value, Config):
        cross_check(walker.add, list(value.wans or ()), list(value.lans or ()), value.dns)
        check_ha(walker.add, value)
        check_firewall(walker.add, value)
        check_ipv6(walker.add, value)
        # a rejected rule field reads as "anything": no shadow test then
        clean = not any(": rules[" in m for _, m in walker.problems)
        check_rules(walker.add, value, clean=clean)
        value = value.replace(source=source)
    if walker.problems:
        walker.problems.sort(key=lambda p: p[0])
        raise ConfigError([m for _, m in walker.problems])
    return value  # type: ignore[no-any-return]
