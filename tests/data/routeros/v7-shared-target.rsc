# 2024-05-02 by RouterOS 7.15
# Broken: both default routes check 8.8.8.8, which is pinned to ISP1 only.
# When ISP1 dies both routes die with it and nothing is left.
/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add gateway=8.8.8.8 distance=1 check-gateway=ping target-scope=11
add gateway=8.8.8.8 distance=2 check-gateway=ping target-scope=11
