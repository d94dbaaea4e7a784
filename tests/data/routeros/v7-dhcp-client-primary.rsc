# 2024-05-02 by RouterOS 7.14
# Broken: the primary is a DHCP client's default route (no check at all); the
# backup is static. A DHCP lease outlives a dead upstream.
/ip dhcp-client
add interface=ether1 default-route-distance=1
/ip address
add address=10.112.0.2/24 interface=ether2
add address=192.168.88.1/24 interface=bridge
/interface list
add name=WAN
/interface list member
add interface=ether1 list=WAN
add interface=ether2 list=WAN
/ip firewall nat
add action=masquerade chain=srcnat out-interface-list=WAN
/ip route
add distance=2 gateway=10.112.0.1 check-gateway=ping
