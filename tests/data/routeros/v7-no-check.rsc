# 2024-05-02 by RouterOS 7.13
# Broken: the naive two-distance set-up without any check.
/ip/address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip/firewall/nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip/route
add comment=Primary distance=1 gateway=10.111.0.1
add comment=Secondary distance=2 gateway=10.112.0.1
