# 2024-06-01 by RouterOS 7.15
# Ethernet primary, LTE backup: Netwatch watches the LTE target with type=icmp
# and the default thr-avg (100ms), so a loaded LTE link is declared dead.
/interface lte
set [ find default-name=lte1 ] name=lte1
/interface lte apn
set [ find default=yes ] add-default-route=no
/ip address
add address=10.111.0.2/24 interface=ether1
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=lte1
/ip route
add dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add dst-address=1.1.1.1/32 gateway=lte1 scope=10
add check-gateway=ping distance=1 gateway=8.8.8.8 target-scope=11
add check-gateway=ping distance=2 gateway=1.1.1.1 target-scope=11
/tool netwatch
add host=1.1.1.1 type=icmp interval=10s
