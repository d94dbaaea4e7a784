"""nftables: our one table, ``table inet wanwatch``, rendered from the Intent and swapped in whole.

:func:`render` is pure (Intent + Config -> text; golden-file tested). :func:`apply_ruleset`
validates the text with ``nft -c`` and then replaces the table in one ``nft -f``
transaction (``add table; delete table; table {...}``): nft applies a file as one
netlink batch, all or nothing, so packets never see a half-built table and a
rejected ruleset leaves the running one untouched. Nothing outside our table is
touched (never ``flush ruleset``).

What the table does (marks are the uplink's bits under ``footprint.FWMARK_MASK``;
the admin's other mark bits are preserved by every rule):

* a connection that *arrives* on an uplink gets that uplink's ct mark, and a
  connection that *leaves* through an uplink is pinned to it (postrouting, first
  packet), so replies and later packets stay on the uplink that NATed them;
* loadbalance: a new connection from a LAN that would leave by an uplink
  (``fib daddr oifname``) gets a ct mark chosen by ``jhash`` of the classifier
  fields ``mod len(buckets)`` through a verdict map built from ``intent.buckets``;
  the seed is fixed so a classifier keeps sending the same client the same way
  across table replacements (the kernel picks a random seed otherwise);
* every packet, forwarded or the router's own (output ``route`` chain, so the
  kernel routes again), gets its connection's uplink bits restored into the
  packet mark, and the ``fwmark/mask lookup <table>`` rules choose the uplink;
* ``oifname { uplinks } masquerade``: one rule NATs every uplink
  (docs/lab-notes.md, "NAT and conntrack");
* IPv6 (docs/ipv6.md): the LANs' ULAs leave an uplink translated into its routed
  prefix (``snat ip6 prefix to ip6 saddr map``), or masqueraded to its address
  where it has none, so an IPv6 flow moves on failover exactly as an IPv4 one;
* per uplink, its bytes and packets in and out (usage.py: two counters and two
  chains of their own, their values carried over every swap);
* the firewall (firewall.py; docs/firewall.md): its counters, its rules at the end
  of the forward chain, its hairpin NAT at the head of the nat chain, and its own
  chains (input, one pair per uplink and isolated LAN, dstnat for port forwards).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import struct
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Address
from pathlib import Path

from wanwatch.config import Config, ha
from wanwatch.config.ipv6 import has_ipv6, ipv6_lans, nat66
from wanwatch.engine.intent import Intent, UplinkPlan
from wanwatch.engine.rules import baseline
from wanwatch.errors import NftError
from wanwatch.footprint import FWMARK_MASK, MAX_UPLINKS, NFT_FAMILY, NFT_TABLE, fwmark
from wanwatch.linux import firewall, rules_nft, usage
from wanwatch.linux.classify import CLASSIFIERS, HASH_SEED, classify_rules

log = logging.getLogger("wanwatch")
_KEEP = ~FWMARK_MASK & 0xFFFFFFFF  # the admin's mark bits
_COMMENT_RE = re.compile(r'^\s*comment "wanwatch ([0-9a-f]+)"', re.MULTILINE)
# nft reads a quoted string up to the next '"' (no escapes), and a trailing '*'
# in an interface name is a wildcard; such names cannot be written safely.
_UNSAFE_IFNAME = re.compile(r'["\\*\x00-\x1f\x7f]')
_NFT_TIMEOUT = 20.0


def _q(ifname: str) -> str:
    if not ifname or _UNSAFE_IFNAME.search(ifname):
        raise NftError(f"interface name {ifname!r} cannot be written in an nft ruleset")
    return f'"{ifname}"'


def _ifset(names: Sequence[str]) -> str:
    return "{ " + ", ".join(_q(n) for n in names) + " }"


def _hex(mark: int) -> str:
    return f"0x{mark:08x}"


def _slot(u: UplinkPlan) -> int:
    """Number used in our chain names: 1-based, the mark's bits with the shift taken off."""
    return u.slot + 1


def _check(intent: Intent) -> None:
    slots: set[int] = set()
    for u in intent.uplinks:
        if not 0 <= u.slot < MAX_UPLINKS:
            raise NftError(f"uplink {u.name}: slot {u.slot} is outside 0..{MAX_UPLINKS - 1}")
        if u.slot in slots:
            raise NftError(f"uplink {u.name}: slot {u.slot} is used twice")
        slots.add(u.slot)
    names = {u.name for u in intent.uplinks}
    for b in intent.buckets:
        if b not in names:
            raise NftError(f"hash bucket names {b!r}, which is not an uplink of the intent")
    if intent.buckets and intent.classifier not in CLASSIFIERS:
        raise NftError(f"unknown classifier {intent.classifier!r}")


def _classify_rules(intent: Intent) -> list[str]:
    slot = {u.name: _slot(u) for u in intent.uplinks}
    return classify_rules([f"mark_{slot[b]}" for b in intent.buckets], intent.classifier)


def _nat_chain(intent: Intent, config: Config, srcnat: list[str]) -> list[str]:
    """The srcnat chain: the firewall's hairpin rules, then masquerade; [] if neither."""
    if not (intent.masquerade or srcnat):
        return []
    out = ["\tchain nat {", "\t\ttype nat hook postrouting priority srcnat; policy accept;"]
    out += [f"\t\t{rule}" for rule in srcnat]
    if intent.masquerade:
        for iface, own, shared in ha.snat(config):  # a router pair: the shared address
            out.append(
                f"\t\tmeta nfproto ipv4 oifname {_q(iface)} ip saddr != {own} snat ip to {shared}"
            )
        # IPv4 only: in an inet table a bare masquerade would also NAT the office's IPv6
        out.append(f"\t\tmeta nfproto ipv4 oifname {_ifset(intent.masquerade)} masquerade")
        out += [f"\t\t{rule}" for rule in _nat66(intent, config)]
    return [*out, "\t}"]


def _nat66(intent: Intent, config: Config) -> list[str]:
    """The LANs' IPv6 out of each uplink: prefix translation or masquerade. Only the
    LANs' sources: the router's own (its probes) already carry the uplink's address."""
    lans = [a.network for _, a in ipv6_lans(config)]
    if not lans:
        return []
    out: list[str] = []
    translation = nat66(config, {u.name: u.prefix6 for u in intent.uplinks if u.prefix6})
    masq = [iface for iface, mapping in translation if mapping is None]
    for iface, mapping in translation:
        if mapping:
            pairs = ", ".join(f"{lan} : {ext}" for lan, ext in mapping.items())
            out.append(
                f"meta nfproto ipv6 oifname {_q(iface)}"
                f" snat ip6 prefix to ip6 saddr map {{ {pairs} }}"
            )
    if masq:
        out.append(
            f"meta nfproto ipv6 oifname {_ifset(masq)} ip6 saddr {{ {', '.join(map(str, lans))} }}"
            " masquerade"
        )
    return out


def render(intent: Intent, config: Config) -> str:
    """The full definition of ``table inet wanwatch`` for this Intent (pure).

    The table's comment carries a fingerprint of the rest of the text, so the
    backend can tell whether the running table is already this one.
    """
    _check(intent)
    if config.rules and not intent.rules:  # the backend's baseline, before the engine spoke
        four, six = baseline(config)
        intent = dataclasses.replace(intent, rules=four, rules6=six)
    # A failover changes only the rules' paths (rules_nft.path_update): the
    # fingerprint covers the rest, so the backend updates paths in place.
    fp = fingerprint(_body(intent, config, with_paths=False))
    body = _body(intent, config, with_paths=True)
    source = Path(config.source).name
    head = (
        f"# wanwatch: generated from {source}; replaced whole on every change, do not edit\n"
        f"# mode {intent.mode}, masquerade {', '.join(intent.masquerade) or 'off'}, "
        f"firewall {'on' if config.firewall.enabled else 'off'}\n"
        f"table {NFT_FAMILY} {NFT_TABLE} {{\n"
        f'\tcomment "wanwatch {fp}"\n\n'
    )
    return head + body + "}\n"


def _to_peer(config: Config) -> list[str]:
    """A router pair: a reply for a shared uplink address goes on to the router holding it.

    For a few milliseconds after the peer took the address, the ISP may still
    send for it to this router. A reply of a connection the peer has just opened
    fits none here: conntrack calls a SYN-ACK without its SYN invalid (RFC 9293
    section 3.5; nf_conntrack_proto_tcp.c), and the lines below would drop it,
    though the peer knows the connection (docs/pair.md, "A reply that reaches the
    other router"). It goes back out of the uplink it came in by, to the address's
    holder. Only invalid packets: a mid-stream packet that conntrack picks up as
    new would leave a reversed entry here that conntrackd replicates.
    """
    rules = [
        f"meta nfproto ipv4 ct state invalid iifname {_q(i)} oifname {_q(i)} ip daddr {s} accept"
        for i, _, s in ha.snat(config)
    ]
    return (
        ["# a router pair: a reply for the shared address goes on to its holder", *rules]
        if rules
        else []
    )


def _invalid_out(config: Config, wan_ifs: list[str]) -> list[str]:
    """Drops of invalid packets leaving by an uplink: IPv4's, and the same for the ULAs."""
    out = [f"meta nfproto ipv4 ct state invalid oifname {_ifset(wan_ifs)} drop"]
    if lans6 := [str(a.network) for _, a in ipv6_lans(config)]:
        out.append(
            f"meta nfproto ipv6 ct state invalid oifname {_ifset(wan_ifs)}"
            f" ip6 saddr {{ {', '.join(lans6)} }} drop"
        )
    return out


def _body(intent: Intent, config: Config, *, with_paths: bool) -> str:
    uplinks = intent.uplinks
    wan_ifs = [u.interface for u in uplinks]
    restore = ", ".join(f"{_hex(fwmark(u.slot))} : jump restore_{_slot(u)}" for u in uplinks)
    fw = firewall.render(intent, config)
    rp = rules_nft.render(config, intent, with_paths=with_paths)
    out: list[str] = []
    w = out.append

    six = {wan.name for wan in config.wans if has_ipv6(wan)}
    out.extend(usage.declarations(uplinks, six))  # bytes and packets per uplink (usage.py)
    w("")
    if fw.counters:  # the firewall's named counters (firewall.py)
        out.extend(f"\tcounter {name} {{ }}" for name in fw.counters)
        w("")
    if rp.declarations:  # the policy rules' maps and sets (rules_nft.py)
        out.extend(f"\t{line}" if line else "" for line in rp.declarations)
        w("")
    w("\tchain prerouting {")
    w("\t\ttype filter hook prerouting priority mangle; policy accept;")
    w("\t\t# a connection arriving on an uplink belongs to it: its replies leave the same way")
    for u in uplinks:
        w(f"\t\tct state new iifname {_q(u.interface)} jump mark_{_slot(u)}")
    if rp.chains:
        lines = rules_nft.prerouting(config, _ifset(wan_ifs), _hex(FWMARK_MASK))
        out.extend(f"\t\t{line}" for line in lines)
    if intent.mode == "loadbalance" and intent.buckets:
        w("\t\t# loadbalance: a new connection from a LAN that would leave by an uplink")
        w(f"\t\t# gets one by hash of {intent.classifier}, buckets: {', '.join(intent.buckets)}")
        w(
            f"\t\tct state new ct mark & {_hex(FWMARK_MASK)} == 0x00000000"
            f" iifname != {_ifset(wan_ifs)} fib daddr oifname {_ifset(wan_ifs)} jump classify"
        )
    w("\t\t# every packet carries its connection's uplink; the fwmark rules pick the table")
    w(f"\t\tct mark & {_hex(FWMARK_MASK)} vmap {{ {restore} }}")
    w("\t}")

    if intent.mode == "loadbalance" and intent.buckets:
        w("")
        w("\tchain classify {")
        for r in _classify_rules(intent):
            w(f"\t\t{r}")
        w("\t}")

    w("")
    w("\tchain output {")
    w("\t\ttype route hook output priority mangle; policy accept;")
    w("\t\t# the router's own packets of a pinned connection: a changed mark routes again")
    w(f"\t\tct mark & {_hex(FWMARK_MASK)} vmap {{ {restore} }}")
    w("\t}")

    w("")
    w("\tchain pin {")
    w("\t\ttype filter hook postrouting priority mangle; policy accept;")
    w("\t\t# a connection stays on the uplink its first packet left by (and was NATed to)")
    pins = ", ".join(f"{_q(u.interface)} : jump mark_{_slot(u)}" for u in uplinks)
    w(f"\t\tct state new oifname vmap {{ {pins} }}")
    w("\t}")

    w("")
    w("\tchain forward {")
    w("\t\ttype filter hook forward priority filter; policy accept;")
    w("\t\t# conntrack calls a packet invalid when it fits no connection (say, a late")
    w("\t\t# retransmission of a deleted flow): NAT skips it, so it would leave")
    w("\t\t# with its private source address. RouterOS's default firewall drops these too.")
    out.extend(f"\t\t{rule}" for rule in _to_peer(config))
    out.extend(f"\t\t{rule}" for rule in _invalid_out(config, wan_ifs))
    for rule in [*rp.forward, *fw.forward]:  # the rules' counters before the firewall decides
        w(f"\t\t{rule}")
    w("\t}")

    nat = _nat_chain(intent, config, fw.srcnat)
    if nat:
        w("")
        out.extend(nat)

    # the usage counters', the firewall's and the rules' own chains
    for part in [*usage.chains(uplinks, _q, six), *fw.chains, *rp.chains]:
        w("")
        out.extend(f"\t{line}" for line in part)

    for chain, what in (("mark", "ct"), ("restore", "meta")):  # pin the connection; the packet
        for u in uplinks:
            w("")
            w(f"\tchain {chain}_{_slot(u)} {{")
            mark = _hex(fwmark(u.slot))
            w(f'\t\t{what} mark set {what} mark & {_hex(_KEEP)} | {mark} comment "{u.name}"')
            w("\t}")

    return "\n".join(out) + "\n"


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rendered_fingerprint(definition: str) -> str:
    """The fingerprint carried in a rendered definition."""
    m = _COMMENT_RE.search(definition)
    if m is None:
        raise NftError("not a wanwatch table definition (no fingerprint comment)")
    return m.group(1)


def transaction(definition: str) -> str:
    """One ``nft -f`` batch that replaces our table and nothing else.

    ``table`` first makes the ``delete`` valid when the table does not exist yet.
    """
    return f"table {NFT_FAMILY} {NFT_TABLE}\ndelete table {NFT_FAMILY} {NFT_TABLE}\n{definition}"


def _nft(
    nft: str, args: Sequence[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [nft, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_NFT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise NftError(f"{nft}: not found (install nftables)") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"{nft} {' '.join(args)}: no answer in {_NFT_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise NftError(f"{nft}: cannot run: {exc.strerror}") from None


def apply_ruleset(
    definition: str,
    nft: str = "nft",
    carry: str = "",
    last: Callable[[str], str] | None = None,
) -> float:
    """Check, then swap in our table atomically. Returns the swap's duration in ms.

    ``carry``: commands run in the same batch after the new table is built (the
    domain sets' addresses, :func:`carried_sets`). ``last``: a change to the
    checked definition made just before the swap, that alters no rule (the usage
    counters' running values, :func:`carried_usage`). Raises NftError if nft
    refuses the text; the running ruleset is then untouched.
    """
    text = transaction(definition) + carry
    check = _nft(nft, ["-c", "-f", "-"], text)
    if check.returncode != 0:
        raise NftError(f"nft -c rejected the ruleset: {check.stderr.strip()}")
    if last is not None:
        text = transaction(last(definition)) + carry
    return apply_batch(text, nft)


def apply_batch(batch: str, nft: str = "nft") -> float:
    """Run commands on our table as one ``nft -f`` batch, all or nothing; its duration in ms."""
    t0 = time.perf_counter()
    done = _nft(nft, ["-f", "-"], batch)
    ms = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        raise NftError(f"nft -f failed (nothing changed): {done.stderr.strip()}")
    return ms


def carried_sets(names: Mapping[str, str], nft: str = "nft") -> str:
    """``add element`` commands refilling sets of the running table as they are; ``names``:
    set name -> its comment (a set renumbered to another rule by a new config is not carried).

    A domain set holds what dnsmasq answered; dnsmasq adds to it only when it
    forwards a query, not when it answers from its cache, so a set emptied by a
    table swap would stay empty for names still cached (up to their TTL).
    """
    out: list[str] = []
    for name, comment in names.items():
        proc = _nft(nft, ["-j", "list", "set", NFT_FAMILY, NFT_TABLE, name])
        if proc.returncode != 0:
            continue  # no such set in the running table: nothing to carry
        try:
            items = json.loads(proc.stdout)["nftables"]
        except (ValueError, KeyError, TypeError):
            raise NftError(f"nft -j list set {name}: unreadable output") from None
        sets = [i["set"] for i in items if "set" in i and i["set"].get("comment") == comment]
        elems = [e for s in sets for e in s.get("elem", [])]
        addrs = [e for e in elems if isinstance(e, str)]
        if addrs:
            out.append(f"add element {NFT_FAMILY} {NFT_TABLE} {name} {{ {', '.join(addrs)} }}")
    return "".join(f"{line}\n" for line in out)


def carried_usage(intent: Intent, nft: str = "nft") -> Callable[[str], str]:
    """For :func:`apply_ruleset`'s ``last``: the running table's usage counters, read at
    the moment it is called, written into the definition (usage.py)."""

    def last(definition: str) -> str:
        try:
            text = list_table(nft)
            running = usage.parse(text) if text else {}
        except NftError as exc:  # the new table matters more than the figures
            log.warning("usage counters not carried over (from zero again): %s", exc)
            running = {}
        return usage.carried(definition, intent.uplinks, running)

    return last


def running_fingerprint(nft: str = "nft") -> str | None:
    """Fingerprint of the running ``table inet wanwatch``; None if there is no such table.

    A table of that name without our comment yields "" (someone else's, or damaged).
    """
    proc = _nft(nft, ["list", "table", NFT_FAMILY, NFT_TABLE])
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr:
            return None
        raise NftError(f"nft list table: {proc.stderr.strip()}")
    m = _COMMENT_RE.search(proc.stdout)
    return m.group(1) if m else ""


def list_table(nft: str = "nft") -> str | None:
    """``nft -j list table`` of our table (its counters, sets and rules); None if there is none.

    ``list table`` rather than ``list counters``: only it names the table's handle,
    which tells a replaced table's firewall counters (from zero again) from the old ones.
    """
    proc = _nft(nft, ["-j", "list", "table", NFT_FAMILY, NFT_TABLE])
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr:
            return None
        raise NftError(f"nft list table: {proc.stderr.strip()}")
    return proc.stdout


def delete_table(nft: str = "nft") -> bool:
    """Remove our table if it exists. True if there was one."""
    if running_fingerprint(nft) is None:
        return False
    proc = _nft(
        nft, ["-f", "-"], f"table {NFT_FAMILY} {NFT_TABLE}\ndelete table {NFT_FAMILY} {NFT_TABLE}\n"
    )
    if proc.returncode != 0:
        raise NftError(f"nft delete table: {proc.stderr.strip()}")
    return True


# --------------------------------------------------------------------------- prediction


_M32 = 0xFFFFFFFF


def _rol(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def _words(block: bytes) -> tuple[int, int, int]:
    x, y, z = struct.unpack("<III", block)  # __get_unaligned_cpu32 on little endian
    return int(x), int(y), int(z)


def jhash(key: bytes, initval: int) -> int:
    """The kernel's jhash() (include/linux/jhash.h, Bob Jenkins' lookup3) on a little-endian CPU."""
    length = len(key)
    a = b = c = (0xDEADBEEF + length + initval) & _M32
    k = key
    while length > 12:
        x, y, z = _words(k[:12])
        a, b, c = (a + x) & _M32, (b + y) & _M32, (c + z) & _M32
        # __jhash_mix
        a = ((a - c) & _M32) ^ _rol(c, 4)
        c = (c + b) & _M32
        b = ((b - a) & _M32) ^ _rol(a, 6)
        a = (a + c) & _M32
        c = ((c - b) & _M32) ^ _rol(b, 8)
        b = (b + a) & _M32
        a = ((a - c) & _M32) ^ _rol(c, 16)
        c = (c + b) & _M32
        b = ((b - a) & _M32) ^ _rol(a, 19)
        a = (a + c) & _M32
        c = ((c - b) & _M32) ^ _rol(b, 4)
        b = (b + a) & _M32
        length -= 12
        k = k[12:]
    if length == 0:
        return c
    x, y, z = _words(k + bytes(12 - length))
    a, b, c = (a + x) & _M32, (b + y) & _M32, (c + z) & _M32
    # __jhash_final
    c = ((c ^ b) - _rol(b, 14)) & _M32
    a = ((a ^ c) - _rol(c, 11)) & _M32
    b = ((b ^ a) - _rol(a, 25)) & _M32
    c = ((c ^ b) - _rol(b, 16)) & _M32
    a = ((a ^ c) - _rol(c, 4)) & _M32
    b = ((b ^ a) - _rol(a, 14)) & _M32
    c = ((c ^ b) - _rol(b, 24)) & _M32
    return c


def predict_bucket(
    classifier: str,
    buckets: int,
    saddr: IPv4Address,
    daddr: IPv4Address,
    *,
    proto: int,
    sport: int = 0,
    dport: int = 0,
) -> int:
    """The bucket our ruleset gives a new IPv4 connection (for tests, benches and status).

    nft_jhash hashes the concatenation as it sits in registers: each field in its
    own 32-bit slot, a 16-bit port in network order followed by two zero bytes,
    then scales it with reciprocal_scale() (``hash * n >> 32``), not ``%``.
    """
    if buckets < 1:
        raise ValueError("no buckets")
    cls = CLASSIFIERS[classifier]
    fields = cls.fields
    if cls.fallback is not None and proto not in (6, 17):
        fields = cls.fallback
    parts = {
        "saddr": saddr.packed,
        "daddr": daddr.packed,
        "sport": struct.pack(">H", sport) + b"\0\0",
        "dport": struct.pack(">H", dport) + b"\0\0",
    }
    key = b"".join(parts[f] for f in fields)
    return (jhash(key, HASH_SEED) * buckets) >> 32
