# 2024-05-02 10:00:00 by RouterOS 7.15.3
# PCC load balancing over two uplinks, recursive checks, and a fallback route in
# each table so marked connections move to the other uplink when theirs dies.
/interface list
add name=LAN
/interface list member
add interface=bridge list=LAN
/routing table
add disabled=no fib name=to_ISP1
add disabled=no fib name=to_ISP2
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
add address=192.168.88.1/24 interface=bridge network=192.168.88.0
/ip firewall address-list
add address=192.168.88.0/24 list=local-nets
/ip firewall mangle
add action=mark-connection chain=prerouting connection-mark=no-mark \
    in-interface=ether1 new-connection-mark=ISP1_conn passthrough=yes
add action=mark-connection chain=prerouting connection-mark=no-mark \
    in-interface=ether2 new-connection-mark=ISP2_conn passthrough=yes
add action=mark-connection chain=prerouting connection-mark=no-mark \
    dst-address-list=!local-nets dst-address-type=!local in-interface-list=LAN \
    new-connection-mark=ISP1_conn passthrough=yes \
    per-connection-classifier=both-addresses:2/0
add action=mark-connection chain=prerouting connection-mark=no-mark \
    dst-address-list=!local-nets dst-address-type=!local in-interface-list=LAN \
    new-connection-mark=ISP2_conn passthrough=yes \
    per-connection-classifier=both-addresses:2/1
add action=mark-routing chain=prerouting connection-mark=ISP1_conn \
    in-interface-list=LAN new-routing-mark=to_ISP1 passthrough=no
add action=mark-routing chain=prerouting connection-mark=ISP2_conn \
    in-interface-list=LAN new-routing-mark=to_ISP2 passthrough=no
add action=mark-routing chain=output connection-mark=ISP1_conn \
    new-routing-mark=to_ISP1 passthrough=no
add action=mark-routing chain=output connection-mark=ISP2_conn \
    new-routing-mark=to_ISP2 passthrough=no
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add disabled=no dst-address=1.0.0.1/32 gateway=10.111.0.1 routing-table=main \
    scope=10 suppress-hw-offload=no target-scope=10
add disabled=no dst-address=9.9.9.9/32 gateway=10.112.0.1 routing-table=main \
    scope=10 suppress-hw-offload=no target-scope=10
add check-gateway=ping disabled=no distance=1 dst-address=0.0.0.0/0 gateway=\
    1.0.0.1 routing-table=main scope=30 suppress-hw-offload=no target-scope=11
add check-gateway=ping disabled=no distance=2 dst-address=0.0.0.0/0 gateway=\
    9.9.9.9 routing-table=main scope=30 suppress-hw-offload=no target-scope=11
add check-gateway=ping disabled=no distance=1 dst-address=0.0.0.0/0 gateway=\
    1.0.0.1@main routing-table=to_ISP1 scope=30 suppress-hw-offload=no \
    target-scope=11
add check-gateway=ping disabled=no distance=2 dst-address=0.0.0.0/0 gateway=\
    9.9.9.9@main routing-table=to_ISP1 scope=30 suppress-hw-offload=no \
    target-scope=11
add check-gateway=ping disabled=no distance=1 dst-address=0.0.0.0/0 gateway=\
    9.9.9.9@main routing-table=to_ISP2 scope=30 suppress-hw-offload=no \
    target-scope=11
add check-gateway=ping disabled=no distance=2 dst-address=0.0.0.0/0 gateway=\
    1.0.0.1@main routing-table=to_ISP2 scope=30 suppress-hw-offload=no \
    target-scope=11
