# 2024-05-02 by RouterOS 7.16
# The down-script raises the primary's distance but the up-script only logs, so
# it never fails back (thr-avg stays at the default 100ms: fine on Ethernet).
/ip/address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
/ip/firewall/nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip/route
add dst-address=208.67.222.222/32 gateway=10.111.0.1 scope=10
add comment=ISP1 distance=1 gateway=10.111.0.1
add comment=ISP2 distance=2 gateway=10.112.0.1
/tool/netwatch
add host=208.67.222.222 type=icmp interval=10s \
    down-script="/ip route set [find comment=ISP1] distance=5" \
    up-script=":log info \"ISP1 back\""
