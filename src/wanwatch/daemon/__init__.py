"""The router daemon: one asyncio loop wiring probes -> engine -> backend (loop.py).

Imports nothing itself: ``wanwatch status`` reaches ``daemon.control`` through
here and must not pay for the backend (pyroute2) or the HTTP servers.
"""
