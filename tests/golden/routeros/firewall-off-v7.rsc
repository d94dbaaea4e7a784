# wanwatch 0.1.0: RouterOS 7 script for firewall.yaml (policy: failover)
# Paste into a terminal or /import it. Every object wanwatch owns has a comment
# starting with "wanwatch: "; the first lines remove those, so importing a newer
# export replaces exactly them and nothing else. /ip dns is a setting, not an
# object: its servers are overwritten. Addresses are removed and re-added, so
# run it from the console (or /import it) rather than over a wanwatch address.
# Needs RouterOS 7.4 or later (Netwatch type=icmp with thr-avg).
#
# Not expressible in RouterOS (reported, not dropped):
#   monitor.interval=500ms, down_after=3, up_after=5: RouterOS check-gateway pings every 10s and drops a route after 2 misses in a row (about 20 s), restoring it on the next answer; only the Netwatch log entries use the interval
#   monitor.fast_interval=25ms: no faster probing while a loss is unconfirmed
#   monitor.hold=10s, max_hold=5m: RouterOS fails back as soon as a check answers again (no hold, no flap damping)
#   monitor.timeout unset (RTT-derived, min_timeout=150ms): RouterOS timeouts are fixed
#   monitor.degraded_loss=40%, loss_window=30s: RouterOS has no degraded state
#   wans[1] FIBER address: dhcp: /ip dhcp-client on eth1; its script re-points the probe pins at each new gateway (disabled until the first lease), and its own default route is a last resort
#   dns.upstream empty: /ip dns keeps the servers RouterOS already has
#   firewall.enabled=false: no /ip firewall filter rules written
/tool netwatch remove [find where comment~"^wanwatch: "]
/ip firewall filter remove [find where comment~"^wanwatch: "]
/ip firewall mangle remove [find where comment~"^wanwatch: "]
/ip firewall address-list remove [find where comment~"^wanwatch: "]
/ip firewall nat remove [find where comment~"^wanwatch: "]
/interface list member remove [find where comment~"^wanwatch: "]
/interface list remove [find where comment~"^wanwatch: "]
/ip route remove [find where comment~"^wanwatch: "]
/ip dhcp-client remove [find where comment~"^wanwatch: "]
/routing table remove [find where comment~"^wanwatch: "]
/ip dhcp-server lease remove [find where comment~"^wanwatch: "]
/ip dhcp-server network remove [find where comment~"^wanwatch: "]
/ip dhcp-server remove [find where comment~"^wanwatch: "]
/ip pool remove [find where comment~"^wanwatch: "]
/ip address remove [find where comment~"^wanwatch: "]
/ip address
add address=192.168.0.2/24 interface=wwan0 comment="wanwatch: wans[0] LTE address"
add address=192.168.19.1/24 interface=eth2 comment="wanwatch: lans[0] office address"
add address=192.168.20.1/24 interface=wlan0 comment="wanwatch: lans[1] guest address"
/ip dhcp-client
add interface=eth1 add-default-route=yes default-route-distance=4 use-peer-dns=no use-peer-ntp=no script=":if (\$bound=1) do={:local gw \$\"gateway-address\"; /ip route set [find where dst-address=\"203.0.113.10/32\" and comment~\"^wanwatch: \"] gateway=\$gw disabled=no;}" comment="wanwatch: wans[1] FIBER address: dhcp"
/ip firewall nat
add chain=srcnat out-interface=wwan0 action=masquerade comment="wanwatch: nat.masquerade wans[0] LTE"
add chain=srcnat out-interface=eth1 action=masquerade comment="wanwatch: nat.masquerade wans[1] FIBER"
/interface list
add name=wanwatch-wans comment="wanwatch: firewall: the uplinks"
/interface list member
add list=wanwatch-wans interface=wwan0 comment="wanwatch: wans[0] LTE is an uplink"
add list=wanwatch-wans interface=eth1 comment="wanwatch: wans[1] FIBER is an uplink"
/ip firewall nat
add chain=dstnat action=dst-nat in-interface-list=wanwatch-wans dst-address-type=local protocol=tcp dst-port=443 to-addresses=192.168.19.10 comment="wanwatch: forwards[0] web"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=tcp dst-port=443 to-addresses=192.168.19.10 comment="wanwatch: forwards[0] web hairpin via LTE"
add chain=dstnat action=dst-nat in-interface=eth1 dst-address-type=local protocol=tcp dst-port=8443 src-address=198.51.100.0/24 to-addresses=192.168.19.11 to-ports=443 comment="wanwatch: forwards[1] nas"
add chain=dstnat action=dst-nat in-interface-list=wanwatch-wans dst-address-type=local protocol=udp dst-port=10000-10999 to-addresses=192.168.19.12 comment="wanwatch: forwards[2] rtp"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=udp dst-port=10000-10999 to-addresses=192.168.19.12 comment="wanwatch: forwards[2] rtp hairpin via LTE"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=tcp dst-port=7000 to-addresses=192.168.20.50 to-ports=9000 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=tcp dst-port=7001 to-addresses=192.168.20.50 to-ports=9001 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=tcp dst-port=7002 to-addresses=192.168.20.50 to-ports=9002 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=tcp dst-port=7003 to-addresses=192.168.20.50 to-ports=9003 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=udp dst-port=7000 to-addresses=192.168.20.50 to-ports=9000 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=udp dst-port=7001 to-addresses=192.168.20.50 to-ports=9001 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=udp dst-port=7002 to-addresses=192.168.20.50 to-ports=9002 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface=wwan0 dst-address-type=local protocol=udp dst-port=7003 to-addresses=192.168.20.50 to-ports=9003 comment="wanwatch: forwards[3] shifted"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=tcp dst-port=7000 to-addresses=192.168.20.50 to-ports=9000 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=tcp dst-port=7001 to-addresses=192.168.20.50 to-ports=9001 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=tcp dst-port=7002 to-addresses=192.168.20.50 to-ports=9002 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=tcp dst-port=7003 to-addresses=192.168.20.50 to-ports=9003 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=udp dst-port=7000 to-addresses=192.168.20.50 to-ports=9000 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=udp dst-port=7001 to-addresses=192.168.20.50 to-ports=9001 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=udp dst-port=7002 to-addresses=192.168.20.50 to-ports=9002 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=dstnat action=dst-nat in-interface-list=!wanwatch-wans dst-address=192.168.0.2 protocol=udp dst-port=7003 to-addresses=192.168.20.50 to-ports=9003 comment="wanwatch: forwards[3] shifted hairpin via LTE"
add chain=srcnat action=masquerade src-address=192.168.19.0/24 out-interface=eth2 connection-nat-state=dstnat comment="wanwatch: lans[0] office hairpin: the reply comes back to the router"
add chain=srcnat action=masquerade src-address=192.168.20.0/24 out-interface=wlan0 connection-nat-state=dstnat comment="wanwatch: lans[1] guest hairpin: the reply comes back to the router"
/ip route
add dst-address=198.51.100.10/32 gateway=192.168.0.1 scope=10 comment="wanwatch: wans[0].probe.targets[0] pins 198.51.100.10 to LTE"
add dst-address=203.0.113.10/32 gateway=eth1 scope=10 disabled=yes comment="wanwatch: wans[1].probe.targets[0] pins 203.0.113.10 to FIBER"
add dst-address=0.0.0.0/0 gateway=198.51.100.10 check-gateway=ping distance=1 target-scope=11 comment="wanwatch: wans[0] LTE via 198.51.100.10"
add dst-address=0.0.0.0/0 gateway=203.0.113.10 check-gateway=ping distance=2 target-scope=11 comment="wanwatch: wans[1] FIBER via 203.0.113.10"
/tool netwatch
add host=198.51.100.10 type=icmp interval=500ms thr-avg=1s down-script=":log info \"wanwatch: uplink LTE target 198.51.100.10 down\"" up-script=":log info \"wanwatch: uplink LTE target 198.51.100.10 up\"" comment="wanwatch: wans[0].probe.targets[0] LTE 198.51.100.10"
add host=203.0.113.10 type=icmp interval=500ms thr-avg=1s down-script=":log info \"wanwatch: uplink FIBER target 203.0.113.10 down\"" up-script=":log info \"wanwatch: uplink FIBER target 203.0.113.10 up\"" comment="wanwatch: wans[1].probe.targets[0] FIBER 203.0.113.10"
