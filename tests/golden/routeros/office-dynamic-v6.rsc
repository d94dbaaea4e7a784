# wanwatch 0.1.0: RouterOS 6 script for office-dynamic.yaml (policy: failover)
# Paste into a terminal or /import it. Every object wanwatch owns has a comment
# starting with "wanwatch: "; the first lines remove those, so importing a newer
# export replaces exactly them and nothing else. /ip dns is a setting, not an
# object: its servers are overwritten. Addresses are removed and re-added, so
# run it from the console (or /import it) rather than over a wanwatch address.
#
# Not expressible in RouterOS (reported, not dropped):
#   monitor.interval=500ms, down_after=3, up_after=5: RouterOS check-gateway pings every 10s and drops a route after 2 misses in a row (about 20 s), restoring it on the next answer; only the Netwatch log entries use the interval
#   monitor.fast_interval=25ms: no faster probing while a loss is unconfirmed
#   monitor.hold=10s, max_hold=5m: RouterOS fails back as soon as a check answers again (no hold, no flap damping)
#   monitor.timeout unset (RTT-derived, min_timeout=150ms): RouterOS timeouts are fixed
#   monitor.degraded_loss=40%, loss_window=30s: RouterOS has no degraded state; degraded_rtt=1s: v6 Netwatch has no thr-avg
#   wans[0] LTE-DHCP address: dhcp: /ip dhcp-client on ether1; its script re-points the probe pins at each new gateway (disabled until the first lease), and its own default route is a last resort
#   wans[1] PPP-BACKUP point-to-point: pins use gateway=ppp0 (an interface route); configure ppp0 yourself (PPP, LTE)
#   dns.upstream 8.8.8.8 (pinned to LTE-DHCP), 1.1.1.1 (pinned to LTE-DHCP): a scope=10 host route sends a probe target through its uplink only, so the router's DNS loses it while that uplink is down
#   lans[0].dhcp.dns 8.8.8.8 (pinned to LTE-DHCP), 8.8.4.4 (pinned to PPP-BACKUP): each answers only while its uplink is up
#   firewall: the filter rules are added after the router's own; an earlier drop (defconf's "drop all not coming from LAN") wins over the openings here: remove such rules or move these above them
/tool netwatch remove [find where comment~"^wanwatch: "]
/ip firewall filter remove [find where comment~"^wanwatch: "]
/ip firewall mangle remove [find where comment~"^wanwatch: "]
/ip firewall address-list remove [find where comment~"^wanwatch: "]
/ip firewall nat remove [find where comment~"^wanwatch: "]
/interface list member remove [find where comment~"^wanwatch: "]
/interface list remove [find where comment~"^wanwatch: "]
/ip route remove [find where comment~"^wanwatch: "]
/ip dhcp-client remove [find where comment~"^wanwatch: "]
/ip dhcp-server lease remove [find where comment~"^wanwatch: "]
/ip dhcp-server network remove [find where comment~"^wanwatch: "]
/ip dhcp-server remove [find where comment~"^wanwatch: "]
/ip pool remove [find where comment~"^wanwatch: "]
/ip address remove [find where comment~"^wanwatch: "]
/ip address
add address=192.168.19.1/24 interface=ether3 comment="wanwatch: lans[0] ether3 address"
/ip dhcp-client
add interface=ether1 add-default-route=yes default-route-distance=5 use-peer-dns=no use-peer-ntp=no script=":if (\$bound=1) do={:local gw \$\"gateway-address\"; /ip route set [find where dst-address=\"8.8.8.8/32\" and comment~\"^wanwatch: \"] gateway=\$gw disabled=no; /ip route set [find where dst-address=\"1.1.1.1/32\" and comment~\"^wanwatch: \"] gateway=\$gw disabled=no;}" comment="wanwatch: wans[0] LTE-DHCP address: dhcp"
/ip pool
add name=wanwatch-ether3 ranges=192.168.19.2-192.168.19.254 comment="wanwatch: lans[0].dhcp.range ether3"
/ip dhcp-server
add name=wanwatch-ether3 interface=ether3 address-pool=wanwatch-ether3 lease-time=1d disabled=no comment="wanwatch: lans[0].dhcp ether3"
/ip dhcp-server network
add address=192.168.19.0/24 gateway=192.168.19.1 dns-server=8.8.8.8,8.8.4.4 comment="wanwatch: lans[0].dhcp ether3 network"
/ip dns set servers=8.8.8.8,1.1.1.1 allow-remote-requests=yes
/ip firewall nat
add chain=srcnat out-interface=ether1 action=masquerade comment="wanwatch: nat.masquerade wans[0] LTE-DHCP"
add chain=srcnat out-interface=ppp0 action=masquerade comment="wanwatch: nat.masquerade wans[1] PPP-BACKUP"
/interface list
add name=wanwatch-wans comment="wanwatch: firewall: the uplinks"
/interface list member
add list=wanwatch-wans interface=ether1 comment="wanwatch: wans[0] LTE-DHCP is an uplink"
add list=wanwatch-wans interface=ppp0 comment="wanwatch: wans[1] PPP-BACKUP is an uplink"
/ip firewall filter
add chain=input action=accept connection-state=established,related,untracked comment="wanwatch: firewall: established, related"
add chain=input action=drop connection-state=invalid comment="wanwatch: firewall: invalid"
add chain=input action=accept protocol=icmp icmp-options=3:4 comment="wanwatch: firewall: path MTU discovery"
add chain=input action=accept protocol=icmp icmp-options=8:0 limit=10,20 comment="wanwatch: firewall: echo requests, rate-limited"
add chain=input action=drop in-interface-list=wanwatch-wans comment="wanwatch: firewall: nothing else from the uplinks"
add chain=forward action=accept connection-state=established,related,untracked comment="wanwatch: firewall: established, related"
add chain=forward action=drop connection-state=invalid comment="wanwatch: firewall: invalid"
add chain=forward action=drop connection-state=new connection-nat-state=!dstnat in-interface-list=wanwatch-wans comment="wanwatch: firewall: nothing new from the uplinks but a forward"
/ip route
add dst-address=8.8.8.8/32 gateway=ether1 scope=10 disabled=yes comment="wanwatch: wans[0].probe.targets[0] pins 8.8.8.8 to LTE-DHCP"
add dst-address=1.1.1.1/32 gateway=ether1 scope=10 disabled=yes comment="wanwatch: wans[0].probe.targets[1] pins 1.1.1.1 to LTE-DHCP"
add dst-address=9.9.9.9/32 gateway=ppp0 scope=10 comment="wanwatch: wans[1].probe.targets[0] pins 9.9.9.9 to PPP-BACKUP"
add dst-address=8.8.4.4/32 gateway=ppp0 scope=10 comment="wanwatch: wans[1].probe.targets[1] pins 8.8.4.4 to PPP-BACKUP"
add dst-address=0.0.0.0/0 gateway=8.8.8.8 check-gateway=ping distance=1 target-scope=11 comment="wanwatch: wans[0] LTE-DHCP via 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=1.1.1.1 check-gateway=ping distance=2 target-scope=11 comment="wanwatch: wans[0] LTE-DHCP via 1.1.1.1"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=3 target-scope=11 comment="wanwatch: wans[1] PPP-BACKUP via 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=8.8.4.4 check-gateway=ping distance=4 target-scope=11 comment="wanwatch: wans[1] PPP-BACKUP via 8.8.4.4"
/tool netwatch
add host=8.8.8.8 interval=500ms down-script=":log info \"wanwatch: uplink LTE-DHCP target 8.8.8.8 down\"" up-script=":log info \"wanwatch: uplink LTE-DHCP target 8.8.8.8 up\"" comment="wanwatch: wans[0].probe.targets[0] LTE-DHCP 8.8.8.8"
add host=1.1.1.1 interval=500ms down-script=":log info \"wanwatch: uplink LTE-DHCP target 1.1.1.1 down\"" up-script=":log info \"wanwatch: uplink LTE-DHCP target 1.1.1.1 up\"" comment="wanwatch: wans[0].probe.targets[1] LTE-DHCP 1.1.1.1"
add host=9.9.9.9 interval=500ms down-script=":log info \"wanwatch: uplink PPP-BACKUP target 9.9.9.9 down\"" up-script=":log info \"wanwatch: uplink PPP-BACKUP target 9.9.9.9 up\"" comment="wanwatch: wans[1].probe.targets[0] PPP-BACKUP 9.9.9.9"
add host=8.8.4.4 interval=500ms down-script=":log info \"wanwatch: uplink PPP-BACKUP target 8.8.4.4 down\"" up-script=":log info \"wanwatch: uplink PPP-BACKUP target 8.8.4.4 up\"" comment="wanwatch: wans[1].probe.targets[1] PPP-BACKUP 8.8.4.4"
