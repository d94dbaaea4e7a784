# may/02/2024 by RouterOS 6.49.7
# The "check-gateway only" recipe: fine for a dead gateway, blind to an LTE
# modem that answers pings while nothing behind it does.
/ip address
add address=192.168.8.100/24 interface=lte-eth network=192.168.8.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
/ip firewall nat
add action=masquerade chain=srcnat out-interface=lte-eth
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add check-gateway=ping distance=1 gateway=192.168.8.1
add check-gateway=ping distance=2 gateway=10.112.0.1
