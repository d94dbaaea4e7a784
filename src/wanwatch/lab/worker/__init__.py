"""Traffic workers: processes that run inside a lab namespace and measure what a client sees.

Each is started by ``wanwatch.lab.traffic`` as ``python -m wanwatch.lab.worker <kind>``,
bounded in attempts and time (``limits``), and writes one JSON object per line on
stdout with ``time.monotonic()`` timestamps. A worker imports the standard library,
``wanwatch.probe.icmp`` (echo packets), ``wanwatch.lab.services`` (ports) and this
package, and nothing of the controller side (engine, nft, the lab), so it starts fast.
"""
