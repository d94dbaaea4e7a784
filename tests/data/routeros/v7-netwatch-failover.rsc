# 2024-05-02 by RouterOS 7.15.2
# Netwatch-based failover: 1.1.1.1 is pinned to ISP1; its down-script disables
# the primary route, its up-script enables it again.
/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add comment=pin-ISP1 dst-address=1.1.1.1/32 gateway=10.111.0.1 scope=10
add comment=ISP1 distance=1 gateway=10.111.0.1
add comment=ISP2 distance=2 gateway=10.112.0.1
/tool netwatch
add down-script="/ip route disable [find comment=\"ISP1\"]\r\
    \n:log warning \"ISP1 down\"" host=1.1.1.1 interval=5s thr-avg=1500ms \
    type=icmp up-script="/ip route enable [find comment=\"ISP1\"]\r\
    \n:log warning \"ISP1 up\""
