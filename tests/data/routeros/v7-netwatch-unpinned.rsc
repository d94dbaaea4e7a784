# 2024-05-02 by RouterOS 7.16
# Broken: the watched host is not pinned. When ISP1 dies the down-script moves
# traffic to ISP2, the host answers through ISP2, the up-script moves it back...
/ip/address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip/firewall/nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip/route
add comment=ISP1 distance=1 gateway=10.111.0.1
add comment=ISP2 distance=2 gateway=10.112.0.1
/tool/netwatch
add host=8.8.8.8 interval=10s type=simple \
    down-script="/ip/route/disable [find where comment=\"ISP1\"]" \
    up-script="/ip/route/enable [find where comment=\"ISP1\"]"
