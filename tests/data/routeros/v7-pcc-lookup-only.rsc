# 2024-05-02 by RouterOS 7.15
# Broken: marked tables without fallback, and routing rules that forbid the
# main table, so marked connections are dropped while their uplink is down.
/routing table
add fib name=to_ISP1
add fib name=to_ISP2
/routing rule
add action=lookup-only-in-table routing-mark=to_ISP1 table=to_ISP1
add action=lookup-only-in-table routing-mark=to_ISP2 table=to_ISP2
/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip firewall mangle
add action=mark-connection chain=prerouting connection-mark=no-mark \
    in-interface=bridge new-connection-mark=c1 per-connection-classifier=\
    src-address:2/0
add action=mark-connection chain=prerouting connection-mark=no-mark \
    in-interface=bridge new-connection-mark=c2 per-connection-classifier=\
    src-address:2/1
add action=mark-routing chain=prerouting connection-mark=c1 new-routing-mark=\
    to_ISP1 passthrough=no
add action=mark-routing chain=prerouting connection-mark=c2 new-routing-mark=\
    to_ISP2 passthrough=no
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add dst-address=9.9.9.9/32 gateway=10.112.0.1 scope=10
add check-gateway=ping gateway=8.8.8.8@main routing-table=to_ISP1 target-scope=11
add check-gateway=ping gateway=9.9.9.9@main routing-table=to_ISP2 target-scope=11
add check-gateway=ping distance=1 gateway=8.8.8.8 target-scope=11
add check-gateway=ping distance=2 gateway=9.9.9.9 target-scope=11
