# 2026-11-30 by RouterOS 7.16
# Broken: the guest subnet is policy-routed into a table over the two backup
# lines, with no routing rule for its mark: when both backups fail, marked
# traffic falls back to main and leaves by the office line it must never use.
/routing table
add fib name=guest_out
/ip address
add address=10.111.0.2/24 interface=ether1
add address=10.112.0.2/24 interface=ether2
add address=10.113.0.2/24 interface=ether3
add address=192.168.20.1/24 interface=wlan1
/ip firewall mangle
add action=mark-routing chain=prerouting src-address=192.168.20.0/24 \
    dst-address-type=!local new-routing-mark=guest_out passthrough=no
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
add action=masquerade chain=srcnat out-interface=ether3
/ip route
add dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add dst-address=9.9.9.9/32 gateway=10.112.0.1 scope=10
add dst-address=1.1.1.1/32 gateway=10.113.0.1 scope=10
add check-gateway=ping distance=1 gateway=8.8.8.8 target-scope=11
add check-gateway=ping distance=2 gateway=9.9.9.9 target-scope=11
add check-gateway=ping distance=3 gateway=1.1.1.1 target-scope=11
add check-gateway=ping distance=1 gateway=9.9.9.9@main routing-table=guest_out \
    target-scope=11
add check-gateway=ping distance=2 gateway=1.1.1.1@main routing-table=guest_out \
    target-scope=11
