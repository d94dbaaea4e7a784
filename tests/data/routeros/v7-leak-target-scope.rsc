# 2024-05-02 by RouterOS 7.15
# Broken: the pins exist, but target-scope=30 lets each target resolve through
# the other uplink's default route whenever its pin is inactive.
/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add dst-address=1.1.1.1/32 gateway=10.111.0.1 scope=10 check-gateway=ping
add dst-address=9.9.9.9/32 gateway=10.112.0.1 scope=10 check-gateway=ping
add gateway=1.1.1.1 distance=1 check-gateway=ping target-scope=30
add gateway=9.9.9.9 distance=2 check-gateway=ping target-scope=30
