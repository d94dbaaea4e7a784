"""The run-time facts of uplinks that are not static, for the daemon.

Which uplink interfaces exist (they come and go: USB modems, PPP), the DHCP
client of each ``address: dhcp`` uplink and its lease, the DHCPv6 client of
each ``dhcp6`` uplink and its delegated prefix. The daemon asks:

- :meth:`DynamicUplinks.usable_link` -- what the engine hears as carrier: the
  interface exists, has carrier, and (DHCP) holds a lease;
- :meth:`DynamicUplinks.overlay` -- the engine's Intent with each DHCP uplink's
  address and gateway taken from its lease, and each ``dhcp6`` uplink's delegated
  prefix as its ``prefix6`` (the backend applies them);
- :meth:`DynamicUplinks.status` -- the extra fields of ``wanwatch status``.

Lease changes reach the daemon through ``on_lease`` (dhcp_client.py), delegations
through ``on_delegation`` (dhcp6_client.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from wanwatch import status as st
from wanwatch.config import Config
from wanwatch.config.dynamic import kind, static_address
from wanwatch.config.fields import DHCP
from wanwatch.engine.events import Event, event
from wanwatch.engine.intent import Intent
from wanwatch.linux import dhcp6_client
from wanwatch.linux.dhcp6_client import Delegation, Dhcp6Client, OnDelegation
from wanwatch.linux.dhcp_client import DhcpClient, Lease, LeaseClient, OnLease, write_script


class DynamicUplinks:
    """Interface presence and DHCP clients of a config's uplinks."""

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        emit: Callable[[Event], None],
        on_lease: OnLease,
        on_delegation: OnDelegation,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._state_dir = state_dir
        self._emit = emit
        self._on_lease = on_lease
        self._on_delegation = on_delegation
        self._now = now
        self._present: dict[str, bool] = {}  # interface -> exists
        self._carrier: dict[str, bool] = {}  # interface -> carrier, as last heard
        self._clients: dict[str, DhcpClient] = {}  # wan -> its client (DHCP uplinks)
        self._clients6: dict[str, Dhcp6Client] = {}  # wan -> its client (dhcp6 uplinks)
        self._script: Path | None = None
        self._script6: Path | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ facts in

    def link(self, ifname: str, present: bool) -> list[str]:
        """Interface ``ifname`` exists (or not) now; the uplinks whose presence changed.

        A DHCP (or DHCPv6) uplink's client runs while its interface exists: started
        when it appears (a replugged modem gets a lease at once), stopped when it goes.
        """
        was = self._present.get(ifname)
        self._present[ifname] = present
        if was == present:
            return []
        changed = []
        for w in self._config.wans:
            if w.interface != ifname:
                continue
            changed.append(w.name)
            if was is not None:
                self._emit(
                    event(
                        self._now(),
                        "wan.link_appeared" if present else "wan.link_absent",
                        wan=w.name,
                        interface=ifname,
                    )
                )
            elif not present:
                self._emit(event(self._now(), "wan.link_absent", wan=w.name, interface=ifname))
            if w.address == DHCP:
                self._client(w.name, w.interface, run=present)
            if w.dhcp6 is not None:
                self._client6(w.name, w.interface, w.dhcp6.prefix_length, run=present)
        return changed

    def carrier(self, ifname: str, up: bool) -> None:
        """Carrier of ``ifname`` now; when it returns, each DHCP client there re-verifies
        its lease at once (DhcpClient.reverify: the ISP's end may have renumbered)."""
        was = self._carrier.get(ifname)
        self._carrier[ifname] = up
        if not up or was is not False:
            return
        for w in self._config.wans:
            client = self._clients.get(w.name)
            if w.interface == ifname and client is not None:
                client.reverify()

    async def reload(self, config: Config) -> None:
        """Follow a new config: clients for new DHCP uplinks, none for the others."""
        self._config = config
        wanted = {w.name: w.interface for w in config.wans if w.address == DHCP}
        for name, client in list(self._clients.items()):
            if wanted.get(name) != client.ifname:
                await client.stop("reload")
                del self._clients[name]
        for name, ifname in wanted.items():
            self._client(name, ifname, run=self._present.get(ifname, False))
        wanted6 = {w.name: (w.interface, w.dhcp6.prefix_length) for w in config.wans if w.dhcp6}
        for name, client6 in list(self._clients6.items()):
            if wanted6.get(name) != (client6.ifname, client6.prefix_length):
                await client6.stop("reload")
                del self._clients6[name]
        for name, (ifname, length) in wanted6.items():
            self._client6(name, ifname, length, run=self._present.get(ifname, False))

    async def stop(self) -> None:
        if self._stopping:
            await asyncio.wait(self._stopping)
        clients: list[LeaseClient[Any]] = [*self._clients.values(), *self._clients6.values()]
        for client in clients:
            await client.stop("daemon stopping")
        self._clients.clear()
        self._clients6.clear()

    def _halt(self, client: LeaseClient[Any] | None) -> None:
        """Stop ``client`` soon: its interface is gone."""
        if client is not None and client.running:
            task = asyncio.create_task(client.stop("interface absent"))
            self._stopping.add(task)  # held until done (asyncio keeps weak references)
            task.add_done_callback(self._stopping.discard)

    def _client6(self, wan: str, ifname: str, prefix_length: int | None, *, run: bool) -> None:
        client = self._clients6.get(wan)
        if not run:
            self._halt(client)
            return
        if client is None:
            if self._script6 is None:
                self._script6 = dhcp6_client.write_script(self._state_dir)
            client = Dhcp6Client(
                wan,
                ifname,
                self._state_dir,
                prefix_length,
                emit=self._emit,
                on_delegation=self._on_delegation,
                now=self._now,
            )
            self._clients6[wan] = client
        client.start()

    def _client(self, wan: str, ifname: str, *, run: bool) -> None:
        client = self._clients.get(wan)
        if not run:
            self._halt(client)
            return
        if client is None:
            if self._script is None:
                self._script = write_script(self._state_dir)
            client = DhcpClient(
                wan,
                ifname,
                self._state_dir,
                emit=self._emit,
                on_lease=self._on_lease,
                now=self._now,
            )
            self._clients[wan] = client
        client.start()

    # ------------------------------------------------------------------ facts out

    def present(self, wan: str) -> bool:
        return self._present.get(self._config.wan(wan).interface, False)

    def lease(self, wan: str) -> Lease | None:
        client = self._clients.get(wan)
        return client.lease if client is not None else None

    def delegation(self, wan: str) -> Delegation | None:
        client = self._clients6.get(wan)
        return client.lease if client is not None else None

    def usable_link(self, wan: str, carrier: bool) -> bool:
        """The carrier the engine hears: link up and, for a DHCP uplink, a lease held."""
        w = self._config.wan(wan)
        return carrier and self.present(wan) and (w.address != DHCP or self.lease(wan) is not None)

    def probe_source(self, wan: str) -> IPv4Address | None:
        """The source address probes of ``wan`` are bound to (re-pinned on a new lease)."""
        w = self._config.wan(wan)
        if w.address == DHCP:
            lease = self.lease(wan)
            return lease.address.ip if lease is not None else None
        a = static_address(w)
        return a.ip if a is not None else None

    def overlay(self, intent: Intent) -> Intent:
        """``intent`` with each DHCP uplink's address and gateway from its lease (None without),
        and each ``dhcp6`` uplink's delegated prefix as its ``prefix6``."""
        plans = []
        for plan in intent.uplinks:
            d = self.delegation(plan.name)
            u = plan if d is None else dataclasses.replace(plan, prefix6=d.prefix)
            lease = self.lease(u.name) if u.kind == "dhcp" else None
            if u.kind != "dhcp":
                plans.append(u)
            elif lease is None:
                plans.append(dataclasses.replace(u, address=None, gateway=None))
            else:
                plans.append(dataclasses.replace(u, address=lease.address, gateway=lease.router))
        return dataclasses.replace(intent, uplinks=tuple(plans))

    def status(
        self,
        wan: str,
        carrier: bool,
        resolved: tuple[IPv4Interface | None, IPv4Address | None] | None,
    ) -> dict[str, Any]:
        """Extra fields of ``wan``'s UplinkStatus; ``resolved``: the backend's address, gateway."""
        w = self._config.wan(wan)
        present = self.present(wan)
        link = "absent" if not present else "up" if carrier else "down"
        out: dict[str, Any] = {"kind": kind(w), "present": present, "link": link}
        if resolved is not None:
            address, gateway = resolved
            out["address"] = str(address) if address is not None else None
            out["gateway"] = str(gateway) if gateway is not None else None
        client6 = self._clients6.get(wan)
        if client6 is not None:
            out["dhcp6_client"] = client6.supervision()
            if (d := client6.lease) is not None:
                out["delegation"] = st.DelegationStatus(
                    prefix=str(d.prefix),
                    preferred_s=d.preferred_s,
                    valid_s=d.valid_s,
                    age_s=round(self._now() - d.bound_at, 1),
                )
        client = self._clients.get(wan)
        if client is not None:
            out["dhcp_client"] = client.supervision()
            lease = client.lease
            if lease is not None:
                out["lease"] = st.LeaseStatus(
                    address=str(lease.address),
                    router=str(lease.router) if lease.router else None,
                    dns=[str(d) for d in lease.dns],
                    lease_s=lease.lease_s,
                    server=str(lease.server) if lease.server else None,
                    age_s=round(self._now() - lease.bound_at, 1),
                )
        return out
