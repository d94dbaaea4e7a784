# may/02/2024 by RouterOS 6.48.6
# Broken: a recursive "primary" without a host route (scope=30 target-scope=30,
# as some DHCP-client scripts write it). 8.8.8.8 resolves through the backup's
# default route, so the primary route carries traffic out of the backup.
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add check-gateway=ping comment=ISP1 distance=1 gateway=8.8.8.8 scope=30 \
    target-scope=30
add check-gateway=ping comment=ISP2 distance=2 gateway=10.112.0.1
