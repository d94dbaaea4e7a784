"""Faults on the router itself: what an admin, a firewall reload or a crash does to wanwatch.

faults.py breaks the world around the router (the ISPs); this package breaks
the router's own state in the lab's router namespace, as a real office sees it
happen. Every injection touches only the lab's router namespace, the daemon's
own files, or processes the lab started (checked by namespace and name before a
signal is sent), and returns an :class:`~wanwatch.lab.chaos.injected.Injected`
whose monotonic times bracket it. One module per kind, shared by
tests/lab/test_selfheal.py and bench/faults.py:

- ``readback``: what wanwatch owns in the kernel, read back by its marks (route
  protocol, rule protocol, its nft table, the forwarding sysctl), so a test or a
  bench can tell when the state is whole again, not only when the daemon says so;
- ``kernel``: drift -- its nft table deleted, ``nft flush ruleset``, its routes
  and rules flushed, forwarding turned off;
- ``kills``: a signal to a process of the router namespace (dnsmasq killed);
- ``sockets``: garbage, half requests and crowds on the control socket;
- ``reload``: a broken config under SIGHUP;
- ``clock``: the daemon's wall clock moved (libfaketime), the host's untouched;
- ``harness``: the LAN client's view across a fault and the test bed that keeps
  the daemon healthy between faults.
"""
