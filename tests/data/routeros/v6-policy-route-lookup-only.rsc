# nov/30/2026 10:00:00 by RouterOS 6.49.15
# Good: the guest subnet only ever uses the second line; a route rule keeps
# its marked traffic off the main table when that line fails (fail closed).
/ip address
add address=10.111.0.2/24 interface=ether1 network=10.111.0.0
add address=10.112.0.2/24 interface=ether2 network=10.112.0.0
add address=192.168.20.1/24 interface=wlan1 network=192.168.20.0
/ip firewall mangle
add action=mark-routing chain=prerouting dst-address-type=!local \
    new-routing-mark=guest_out passthrough=no src-address=192.168.20.0/24
/ip firewall nat
add action=masquerade chain=srcnat out-interface=ether1
add action=masquerade chain=srcnat out-interface=ether2
/ip route
add distance=1 gateway=8.8.8.8 check-gateway=ping target-scope=11
add distance=2 gateway=9.9.9.9 check-gateway=ping target-scope=11
add distance=1 gateway=9.9.9.9 check-gateway=ping routing-mark=guest_out \
    target-scope=11
add distance=1 dst-address=8.8.8.8/32 gateway=10.111.0.1 scope=10
add distance=1 dst-address=9.9.9.9/32 gateway=10.112.0.1 scope=10
/ip route rule
add action=lookup-only-in-table routing-mark=guest_out table=guest_out
