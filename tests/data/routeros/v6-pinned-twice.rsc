# may/02/2024 by RouterOS 6.49.10
# Broken: 1.1.1.1 is pinned to both uplinks; only the first pin is active, so
# the backup's recursive route checks the primary's link.
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add distance=1 dst-address=1.1.1.1/32 gateway=10.111.0.1 scope=10
add distance=1 dst-address=1.1.1.1/32 gateway=10.112.0.1 scope=10
add check-gateway=ping distance=1 gateway=8.8.8.8 target-scope=10
add distance=1 dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add check-gateway=ping distance=2 gateway=1.1.1.1 target-scope=10
