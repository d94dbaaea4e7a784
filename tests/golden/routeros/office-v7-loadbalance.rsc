# wanwatch 0.1.0: RouterOS 7 script for office-loadbalance.yaml (policy: loadbalance)
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
#   hooks.on_down=["logger", "-t", "wanwatch", "uplink {wan} is down"]: RouterOS cannot run a command; each Netwatch down-script logs it with :log info instead (per probe target)
#   hooks.on_up=["logger", "-t", "wanwatch", "uplink {wan} is up"]: RouterOS cannot run a command; each Netwatch up-script logs it with :log info instead (per probe target)
#   hooks.timeout=10s: Netwatch scripts have no timeout
#   dns.upstream 8.8.8.8 (pinned to INET-UTAMA), 1.1.1.1 (pinned to INET-UTAMA): a scope=10 host route sends a probe target through its uplink only, so the router's DNS loses it while that uplink is down
#   lans[0].dhcp.dns 8.8.8.8 (pinned to INET-UTAMA), 8.8.4.4 (pinned to BACKUP-INET): each answers only while its uplink is up
#   lans[1].dhcp.dns 8.8.8.8 (pinned to INET-UTAMA), 8.8.4.4 (pinned to BACKUP-INET): each answers only while its uplink is up
#   policy.mode=loadbalance: a FastTrack rule (RouterOS defconf) skips mangle for established connections; exempt marked ones (connection-mark=no-mark on it)
#   firewall: the filter rules are added after the router's own; an earlier drop (defconf's "drop all not coming from LAN") wins over the openings here: remove such rules or move these above them
/tool netwatch remove [find where comment~"^wanwatch: "]
/ip firewall filter remove [find where comment~"^wanwatch: "]
/ip firewall mangle remove [find where comment~"^wanwatch: "]
/ip firewall address-list remove [find where comment~"^wanwatch: "]
/ip firewall nat remove [find where comment~"^wanwatch: "]
/interface list member remove [find where comment~"^wanwatch: "]
/interface list remove [find where comment~"^wanwatch: "]
/ip route remove [find where comment~"^wanwatch: "]
/routing table remove [find where comment~"^wanwatch: "]
/ip dhcp-server lease remove [find where comment~"^wanwatch: "]
/ip dhcp-server network remove [find where comment~"^wanwatch: "]
/ip dhcp-server remove [find where comment~"^wanwatch: "]
/ip pool remove [find where comment~"^wanwatch: "]
/ip address remove [find where comment~"^wanwatch: "]
/ip address
add address=192.168.0.2/24 interface=ether1 comment="wanwatch: wans[0] INET-UTAMA address"
add address=192.168.18.2/24 interface=ether2 comment="wanwatch: wans[1] BACKUP-INET address"
add address=192.168.19.1/24 interface=ether3 comment="wanwatch: lans[0] ether3 address"
add address=192.168.20.1/24 interface=wlan1 comment="wanwatch: lans[1] WIFI address"
/ip pool
add name=wanwatch-ether3 ranges=192.168.19.2-192.168.19.254 comment="wanwatch: lans[0].dhcp.range ether3"
add name=wanwatch-WIFI ranges=192.168.20.2-192.168.20.254 comment="wanwatch: lans[1].dhcp.range WIFI"
/ip dhcp-server
add name=wanwatch-ether3 interface=ether3 address-pool=wanwatch-ether3 lease-time=1d disabled=no comment="wanwatch: lans[0].dhcp ether3"
add name=wanwatch-WIFI interface=wlan1 address-pool=wanwatch-WIFI lease-time=1h disabled=no comment="wanwatch: lans[1].dhcp WIFI"
/ip dhcp-server network
add address=192.168.19.0/24 gateway=192.168.19.1 dns-server=8.8.8.8,8.8.4.4 comment="wanwatch: lans[0].dhcp ether3 network"
add address=192.168.20.0/24 gateway=192.168.20.1 dns-server=8.8.8.8,8.8.4.4 comment="wanwatch: lans[1].dhcp WIFI network"
/ip dns set servers=8.8.8.8,1.1.1.1 allow-remote-requests=yes
/ip firewall nat
add chain=srcnat out-interface=ether1 action=masquerade comment="wanwatch: nat.masquerade wans[0] INET-UTAMA"
add chain=srcnat out-interface=ether2 action=masquerade comment="wanwatch: nat.masquerade wans[1] BACKUP-INET"
/interface list
add name=wanwatch-wans comment="wanwatch: firewall: the uplinks"
/interface list member
add list=wanwatch-wans interface=ether1 comment="wanwatch: wans[0] INET-UTAMA is an uplink"
add list=wanwatch-wans interface=ether2 comment="wanwatch: wans[1] BACKUP-INET is an uplink"
/ip firewall filter
add chain=input action=accept connection-state=established,related,untracked comment="wanwatch: firewall: established, related"
add chain=input action=drop connection-state=invalid comment="wanwatch: firewall: invalid"
add chain=input action=accept protocol=icmp icmp-options=3:4 comment="wanwatch: firewall: path MTU discovery"
add chain=input action=accept protocol=icmp icmp-options=8:0 limit=10,20:packet comment="wanwatch: firewall: echo requests, rate-limited"
add chain=input action=drop in-interface-list=wanwatch-wans comment="wanwatch: firewall: nothing else from the uplinks"
add chain=forward action=accept connection-state=established,related,untracked comment="wanwatch: firewall: established, related"
add chain=forward action=drop connection-state=invalid comment="wanwatch: firewall: invalid"
add chain=forward action=drop connection-state=new connection-nat-state=!dstnat in-interface-list=wanwatch-wans comment="wanwatch: firewall: nothing new from the uplinks but a forward"
/ip firewall address-list
add list=wanwatch-local address=192.168.0.0/24 comment="wanwatch: wans[0] INET-UTAMA subnet not balanced"
add list=wanwatch-local address=192.168.18.0/24 comment="wanwatch: wans[1] BACKUP-INET subnet not balanced"
add list=wanwatch-local address=192.168.19.0/24 comment="wanwatch: lans[0] ether3 subnet not balanced"
add list=wanwatch-local address=192.168.20.0/24 comment="wanwatch: lans[1] WIFI subnet not balanced"
/routing table
add name=wanwatch-INET-UTAMA fib comment="wanwatch: wans[0] INET-UTAMA routing table"
add name=wanwatch-BACKUP-INET fib comment="wanwatch: wans[1] BACKUP-INET routing table"
/ip route
add dst-address=8.8.8.8/32 gateway=192.168.0.1 scope=10 comment="wanwatch: wans[0].probe.targets[0] pins 8.8.8.8 to INET-UTAMA"
add dst-address=1.1.1.1/32 gateway=192.168.0.1 scope=10 comment="wanwatch: wans[0].probe.targets[1] pins 1.1.1.1 to INET-UTAMA"
add dst-address=9.9.9.9/32 gateway=192.168.18.1 scope=10 comment="wanwatch: wans[1].probe.targets[0] pins 9.9.9.9 to BACKUP-INET"
add dst-address=8.8.4.4/32 gateway=192.168.18.1 scope=10 comment="wanwatch: wans[1].probe.targets[1] pins 8.8.4.4 to BACKUP-INET"
add dst-address=0.0.0.0/0 gateway=8.8.8.8 check-gateway=ping distance=1 target-scope=11 comment="wanwatch: wans[0] INET-UTAMA via 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=1.1.1.1 check-gateway=ping distance=2 target-scope=11 comment="wanwatch: wans[0] INET-UTAMA via 1.1.1.1"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=3 target-scope=11 comment="wanwatch: wans[1] BACKUP-INET via 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=8.8.4.4 check-gateway=ping distance=4 target-scope=11 comment="wanwatch: wans[1] BACKUP-INET via 8.8.4.4"
add dst-address=0.0.0.0/0 gateway=8.8.8.8@main check-gateway=ping distance=1 target-scope=11 routing-table=wanwatch-INET-UTAMA comment="wanwatch: wans[0] INET-UTAMA table via 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=1.1.1.1@main check-gateway=ping distance=2 target-scope=11 routing-table=wanwatch-INET-UTAMA comment="wanwatch: wans[0] INET-UTAMA table via 1.1.1.1"
add dst-address=0.0.0.0/0 gateway=9.9.9.9@main check-gateway=ping distance=3 target-scope=11 routing-table=wanwatch-INET-UTAMA comment="wanwatch: wans[0] INET-UTAMA table fallback via wans[1] BACKUP-INET 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=8.8.4.4@main check-gateway=ping distance=4 target-scope=11 routing-table=wanwatch-INET-UTAMA comment="wanwatch: wans[0] INET-UTAMA table fallback via wans[1] BACKUP-INET 8.8.4.4"
add dst-address=0.0.0.0/0 gateway=9.9.9.9@main check-gateway=ping distance=1 target-scope=11 routing-table=wanwatch-BACKUP-INET comment="wanwatch: wans[1] BACKUP-INET table via 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=8.8.4.4@main check-gateway=ping distance=2 target-scope=11 routing-table=wanwatch-BACKUP-INET comment="wanwatch: wans[1] BACKUP-INET table via 8.8.4.4"
add dst-address=0.0.0.0/0 gateway=8.8.8.8@main check-gateway=ping distance=3 target-scope=11 routing-table=wanwatch-BACKUP-INET comment="wanwatch: wans[1] BACKUP-INET table fallback via wans[0] INET-UTAMA 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=1.1.1.1@main check-gateway=ping distance=4 target-scope=11 routing-table=wanwatch-BACKUP-INET comment="wanwatch: wans[1] BACKUP-INET table fallback via wans[0] INET-UTAMA 1.1.1.1"
/ip firewall mangle
add chain=prerouting in-interface=ether1 connection-mark=no-mark action=mark-connection new-connection-mark=wanwatch-INET-UTAMA passthrough=yes comment="wanwatch: wans[0] INET-UTAMA inbound: replies leave through it"
add chain=prerouting in-interface=ether2 connection-mark=no-mark action=mark-connection new-connection-mark=wanwatch-BACKUP-INET passthrough=yes comment="wanwatch: wans[1] BACKUP-INET inbound: replies leave through it"
add chain=prerouting in-interface=ether3 connection-mark=no-mark connection-state=new dst-address-type=!local dst-address-list=!wanwatch-local per-connection-classifier=both-addresses:2/0 action=mark-connection new-connection-mark=wanwatch-INET-UTAMA passthrough=yes comment="wanwatch: policy.mode=loadbalance lans[0] ether3 bucket 0/2 -> wans[0] INET-UTAMA (weight 1)"
add chain=prerouting in-interface=ether3 connection-mark=no-mark connection-state=new dst-address-type=!local dst-address-list=!wanwatch-local per-connection-classifier=both-addresses:2/1 action=mark-connection new-connection-mark=wanwatch-BACKUP-INET passthrough=yes comment="wanwatch: policy.mode=loadbalance lans[0] ether3 bucket 1/2 -> wans[1] BACKUP-INET (weight 1)"
add chain=prerouting in-interface=ether3 connection-mark=wanwatch-INET-UTAMA dst-address-list=!wanwatch-local action=mark-routing new-routing-mark=wanwatch-INET-UTAMA passthrough=no comment="wanwatch: lans[0] ether3 -> wans[0] INET-UTAMA"
add chain=prerouting in-interface=ether3 connection-mark=wanwatch-BACKUP-INET dst-address-list=!wanwatch-local action=mark-routing new-routing-mark=wanwatch-BACKUP-INET passthrough=no comment="wanwatch: lans[0] ether3 -> wans[1] BACKUP-INET"
add chain=prerouting in-interface=wlan1 connection-mark=no-mark connection-state=new dst-address-type=!local dst-address-list=!wanwatch-local per-connection-classifier=both-addresses:2/0 action=mark-connection new-connection-mark=wanwatch-INET-UTAMA passthrough=yes comment="wanwatch: policy.mode=loadbalance lans[1] WIFI bucket 0/2 -> wans[0] INET-UTAMA (weight 1)"
add chain=prerouting in-interface=wlan1 connection-mark=no-mark connection-state=new dst-address-type=!local dst-address-list=!wanwatch-local per-connection-classifier=both-addresses:2/1 action=mark-connection new-connection-mark=wanwatch-BACKUP-INET passthrough=yes comment="wanwatch: policy.mode=loadbalance lans[1] WIFI bucket 1/2 -> wans[1] BACKUP-INET (weight 1)"
add chain=prerouting in-interface=wlan1 connection-mark=wanwatch-INET-UTAMA dst-address-list=!wanwatch-local action=mark-routing new-routing-mark=wanwatch-INET-UTAMA passthrough=no comment="wanwatch: lans[1] WIFI -> wans[0] INET-UTAMA"
add chain=prerouting in-interface=wlan1 connection-mark=wanwatch-BACKUP-INET dst-address-list=!wanwatch-local action=mark-routing new-routing-mark=wanwatch-BACKUP-INET passthrough=no comment="wanwatch: lans[1] WIFI -> wans[1] BACKUP-INET"
add chain=output connection-mark=wanwatch-INET-UTAMA dst-address-list=!wanwatch-local action=mark-routing new-routing-mark=wanwatch-INET-UTAMA passthrough=no comment="wanwatch: wans[0] INET-UTAMA router's own replies"
add chain=output connection-mark=wanwatch-BACKUP-INET dst-address-list=!wanwatch-local action=mark-routing new-routing-mark=wanwatch-BACKUP-INET passthrough=no comment="wanwatch: wans[1] BACKUP-INET router's own replies"
/tool netwatch
add host=8.8.8.8 type=icmp interval=500ms thr-avg=1s down-script=":log info \"wanwatch: uplink INET-UTAMA target 8.8.8.8 down (hook: logger -t wanwatch uplink INET-UTAMA is down)\"" up-script=":log info \"wanwatch: uplink INET-UTAMA target 8.8.8.8 up (hook: logger -t wanwatch uplink INET-UTAMA is up)\"" comment="wanwatch: wans[0].probe.targets[0] INET-UTAMA 8.8.8.8"
add host=1.1.1.1 type=icmp interval=500ms thr-avg=1s down-script=":log info \"wanwatch: uplink INET-UTAMA target 1.1.1.1 down (hook: logger -t wanwatch uplink INET-UTAMA is down)\"" up-script=":log info \"wanwatch: uplink INET-UTAMA target 1.1.1.1 up (hook: logger -t wanwatch uplink INET-UTAMA is up)\"" comment="wanwatch: wans[0].probe.targets[1] INET-UTAMA 1.1.1.1"
add host=9.9.9.9 type=icmp interval=500ms thr-avg=1s down-script=":log info \"wanwatch: uplink BACKUP-INET target 9.9.9.9 down (hook: logger -t wanwatch uplink BACKUP-INET is down)\"" up-script=":log info \"wanwatch: uplink BACKUP-INET target 9.9.9.9 up (hook: logger -t wanwatch uplink BACKUP-INET is up)\"" comment="wanwatch: wans[1].probe.targets[0] BACKUP-INET 9.9.9.9"
add host=8.8.4.4 type=icmp interval=500ms thr-avg=1s down-script=":log info \"wanwatch: uplink BACKUP-INET target 8.8.4.4 down (hook: logger -t wanwatch uplink BACKUP-INET is down)\"" up-script=":log info \"wanwatch: uplink BACKUP-INET target 8.8.4.4 up (hook: logger -t wanwatch uplink BACKUP-INET is up)\"" comment="wanwatch: wans[1].probe.targets[1] BACKUP-INET 8.8.4.4"
