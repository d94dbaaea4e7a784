# 2024-05-02 10:11:12 by RouterOS 7.14.3
# The official "Failover (WAN Backup)" recipe for both families: IPv4 as published,
# IPv6 the same way (a scope=10 /128 pin per uplink through its link-local router,
# both routers fe80::1, and checked recursive defaults), the ULA LAN masqueraded.
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
/ipv6 address
add address=2001:db8:111::2/64 interface=ether1 advertise=no
add address=2001:db8:112::2/64 interface=ether2 advertise=no
add address=fd00:88::1/64 interface=bridge
/ipv6 firewall nat
add chain=srcnat action=masquerade out-interface=ether1
add chain=srcnat action=masquerade out-interface=ether2
/ipv6 route
add dst-address=2001:4860:4860::8888/128 gateway=fe80::1%ether1 scope=10
add dst-address=2001:4860:4860::8844/128 gateway=fe80::1%ether2 scope=10
add dst-address=::/0 gateway=2001:4860:4860::8888 target-scope=11 check-gateway=ping distance=1
add dst-address=::/0 gateway=2001:4860:4860::8844 target-scope=11 check-gateway=ping distance=2
/system identity
set name=office-gw
