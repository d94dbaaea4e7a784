# may/02/2024 by RouterOS 6.49.10
# Broken: the watched host is pinned to ISP1 and blackholed otherwise (so its
# pings never leak), but the down-script disables every route commented ISP1 -
# the pin included - so the host is never seen again and ISP1 never comes back.
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add comment=ISP1 distance=1 dst-address=8.8.4.4/32 gateway=10.111.0.1 scope=10
add distance=250 dst-address=8.8.4.4/32 type=blackhole
add comment=ISP1 distance=1 gateway=10.111.0.1
add comment=ISP2 distance=2 gateway=10.112.0.1
/system script
add dont-require-permissions=no name=isp1-down owner=admin policy=read,write \
    source="/ip route disable [find comment=\"ISP1\"]"
add dont-require-permissions=no name=isp1-up owner=admin policy=read,write \
    source="/ip route enable [find comment=\"ISP1\"]"
/tool netwatch
add down-script=isp1-down host=8.8.4.4 interval=10s up-script=isp1-up
