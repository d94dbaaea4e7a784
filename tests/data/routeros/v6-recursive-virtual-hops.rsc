# may/02/2024 by RouterOS 6.49.10
# The official recipe's "improve detection" form: each uplink's default route
# goes through a virtual hop (10.10.10.1 / 10.20.20.2) reachable through either
# of two pinned hosts, so one silent host does not take the uplink down. LAN
# traffic is routing-marked ISP1 or ISP2; each mark falls back to the other
# uplink at distance 2.
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
add address=192.168.88.1/24 interface=ether3 network=192.168.88.0
/ip firewall mangle
add action=mark-routing chain=prerouting new-routing-mark=ISP1 passthrough=no \
    src-address=192.168.88.0/25
add action=mark-routing chain=prerouting new-routing-mark=ISP2 passthrough=no \
    src-address=192.168.88.128/25
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add dst-address=8.8.8.8 gateway=10.111.0.1 scope=10
add dst-address=208.67.222.222 gateway=10.111.0.1 scope=10
add dst-address=8.8.4.4 gateway=10.112.0.1 scope=10
add dst-address=208.67.220.220 gateway=10.112.0.1 scope=10
add check-gateway=ping dst-address=10.10.10.1 gateway=8.8.8.8 scope=10 \
    target-scope=11
add check-gateway=ping dst-address=10.10.10.1 gateway=208.67.222.222 scope=10 \
    target-scope=11
add check-gateway=ping dst-address=10.20.20.2 gateway=8.8.4.4 scope=10 \
    target-scope=11
add check-gateway=ping dst-address=10.20.20.2 gateway=208.67.220.220 scope=10 \
    target-scope=11
add distance=1 gateway=10.10.10.1 routing-mark=ISP1 target-scope=12
add distance=2 gateway=10.20.20.2 routing-mark=ISP1 target-scope=12
add distance=1 gateway=10.20.20.2 routing-mark=ISP2 target-scope=12
add distance=2 gateway=10.10.10.1 routing-mark=ISP2 target-scope=12
