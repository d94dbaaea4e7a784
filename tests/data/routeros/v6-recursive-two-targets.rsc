# may/02/2024 10:11:12 by RouterOS 6.49.10
# software id = ABCD-1234
#
# Recursive failover with two targets per uplink (v6 syntax, default
# target-scope=10, which is enough for scope=10 pins).
/interface list
add name=WAN
/interface list member
add interface=ether1 list=WAN
add interface=ether2 list=WAN
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
add address=192.168.88.1/24 comment=defconf interface=bridge network=\
    192.168.88.0
/ip firewall nat
add action=masquerade chain=srcnat comment="defconf: masquerade" \
    ipsec-policy=out,none out-interface-list=WAN
/ip route
add check-gateway=ping distance=1 gateway=208.67.222.222
add check-gateway=ping distance=2 gateway=208.67.220.220
add check-gateway=ping distance=3 gateway=9.9.9.9
add check-gateway=ping distance=4 gateway=149.112.112.112
add comment="pin ISP1 a" distance=1 dst-address=208.67.222.222/32 gateway=\
    10.111.0.1 scope=10
add comment="pin ISP1 b" distance=1 dst-address=208.67.220.220/32 gateway=\
    10.111.0.1 scope=10
add comment="pin ISP2 a" distance=1 dst-address=9.9.9.9/32 gateway=10.112.0.1 \
    scope=10
add comment="pin ISP2 b" distance=1 dst-address=149.112.112.112/32 gateway=\
    10.112.0.1 scope=10
/ip dhcp-server
add address-pool=dhcp disabled=no interface=bridge name=defconf
/ip pool
add name=dhcp ranges=192.168.88.10-192.168.88.254
/ip dhcp-server network
add address=192.168.88.0/24 comment=defconf gateway=192.168.88.1
