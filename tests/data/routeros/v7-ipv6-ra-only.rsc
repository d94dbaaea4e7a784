# 2024-05-02 10:11:12 by RouterOS 7.14.3
# Broken: IPv4 fails over by the official recipe; IPv6 takes its default from
# router advertisements only (no check-gateway, and nothing to fail over to).
/interface bridge
add name=bridge
/interface bridge port
add bridge=bridge interface=ether3
/ip/address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
add address=192.168.88.1/24 interface=bridge
/ip/firewall/nat
add chain=srcnat action=masquerade out-interface=ether1
add chain=srcnat action=masquerade out-interface=ether2
/ip/route/
add dst-address=8.8.8.8 scope=10 gateway=10.111.0.1
add dst-address=8.8.4.4 scope=10 gateway=10.112.0.1
add distance=1 gateway=8.8.8.8 target-scope=11 check-gateway=ping
add distance=2 gateway=8.8.4.4 target-scope=11 check-gateway=ping
/ipv6 settings
set accept-router-advertisements=yes
/ipv6 address
add address=fd00:88::1/64 interface=bridge
/ipv6 firewall nat
add chain=srcnat action=masquerade
