# wanwatch 0.1.0: RouterOS 6 script for dual-stack-rules.yaml (policy: failover)
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
#   dns.upstream 8.8.8.8 (pinned to INET-UTAMA), 1.1.1.1 (pinned to DSL): a scope=10 host route sends a probe target through its uplink only, so the router's DNS loses it while that uplink is down
#   firewall: the filter rules are added after the router's own; an earlier drop (defconf's "drop all not coming from LAN") wins over the openings here: remove such rules or move these above them
#   rules[0] guest.when_down=block: RouterOS drops the traffic (lookup-only-in-table); wanwatch answers ICMP admin-prohibited
#   rules[2] bank.domains: RouterOS 6 resolves an address-list name itself and adds what it gets for bank.example only: no names under them, and a client may be given other addresses (a CDN) than the router's own lookup
#   rules[2] bank.when_down=block: RouterOS drops the traffic (lookup-only-in-table); wanwatch answers ICMP admin-prohibited
#   rules[3] partner6: proto icmpv6 is IPv6, and RouterOS 6 has no IPv6 policy routing (its /ipv6 route has no routing-mark): not compiled
#   rules[4] bulk.sticky by src: a connection keeps its mark for its life (connection marks are sticky by nature), not its uplink: PCC on src-address sends a source to the same bucket while the rule's uplinks stay up, and back to it after a failback; timeout=10m has no equivalent
#   rules (IPv6): RouterOS 6 has no IPv6 policy routing (its /ipv6 route has no routing-mark): the IPv6 connections of rules[0] guest, rules[1] voip, rules[2] bank, rules[4] bulk follow the IPv6 main table, wherever the rule sends their IPv4 (RouterOS 7 routes them by the rule)
#   rules: when no uplink at all is up wanwatch keeps each rule's last path; RouterOS has nothing to keep (block drops, default finds no route in main)
#   rules: a FastTrack rule (RouterOS defconf) skips mangle for established connections, so their routing mark is lost; exempt marked ones (connection-mark=no-mark on it)
#   /ipv6 nd: RouterOS's default entry (interface=all) also advertises on the uplinks; set it to the LANs or disable it
#   /ipv6 nd advertise-dns=yes (v6): RouterOS 6 advertises the IPv6 servers of /ip dns only, not itself: with IPv4 upstreams the LANs learn DNS over IPv4
#   wans[0] INET-UTAMA address6: auto: its IPv6 default is the one RouterOS learns from router advertisements (accept-router-advertisements=yes): no check-gateway, and its IPv6 probe targets cannot be pinned to it (the router's link-local address is not known in advance), so no route or Netwatch entry uses them; while the RAs go on, a silent blackhole keeps IPv6 on it. The static IPv6 routes after it start at distance 2: check that the learned route's distance (/ipv6 route print) is below theirs
#   nat.masquerade: RouterOS 6 has no IPv6 NAT: the LANs' ULAs do not reach the internet over IPv6 (RouterOS 7 has /ipv6 firewall nat)
#   firewall (IPv6): the /ipv6 firewall filter rules are added after the router's own; an earlier drop wins over the openings here
#   IPv6 probe targets: RouterOS 6 Netwatch pings IPv4 hosts only
/tool netwatch remove [find where comment~"^wanwatch: "]
/ip firewall filter remove [find where comment~"^wanwatch: "]
/ip firewall mangle remove [find where comment~"^wanwatch: "]
/ip firewall address-list remove [find where comment~"^wanwatch: "]
/ip firewall nat remove [find where comment~"^wanwatch: "]
/ipv6 firewall filter remove [find where comment~"^wanwatch: "]
/ipv6 firewall nat remove [find where comment~"^wanwatch: "]
/ipv6 route remove [find where comment~"^wanwatch: "]
/ipv6 nd remove [find where comment~"^wanwatch: "]
/ipv6 address remove [find where comment~"^wanwatch: "]
/ipv6 dhcp-client remove [find where comment~"^wanwatch: "]
/interface list member remove [find where comment~"^wanwatch: "]
/interface list remove [find where comment~"^wanwatch: "]
/ip route remove [find where comment~"^wanwatch: "]
/ip route rule remove [find where comment~"^wanwatch: "]
/ip dhcp-server lease remove [find where comment~"^wanwatch: "]
/ip dhcp-server network remove [find where comment~"^wanwatch: "]
/ip dhcp-server remove [find where comment~"^wanwatch: "]
/ip pool remove [find where comment~"^wanwatch: "]
/ip address remove [find where comment~"^wanwatch: "]
/ip address
add address=192.168.0.2/24 interface=ether1 comment="wanwatch: wans[0] INET-UTAMA address"
add address=192.168.18.2/24 interface=ether2 comment="wanwatch: wans[1] BACKUP-INET address"
add address=192.168.30.2/24 interface=ether4 comment="wanwatch: wans[2] DSL address"
add address=192.168.19.1/24 interface=ether3 comment="wanwatch: lans[0] ether3 address"
add address=192.168.20.1/24 interface=wlan1 comment="wanwatch: lans[1] WIFI address"
/ip pool
add name=wanwatch-ether3 ranges=192.168.19.2-192.168.19.254 comment="wanwatch: lans[0].dhcp.range ether3"
add name=wanwatch-WIFI ranges=192.168.20.2-192.168.20.254 comment="wanwatch: lans[1].dhcp.range WIFI"
/ip dhcp-server
add name=wanwatch-ether3 interface=ether3 address-pool=wanwatch-ether3 lease-time=12h disabled=no comment="wanwatch: lans[0].dhcp ether3"
add name=wanwatch-WIFI interface=wlan1 address-pool=wanwatch-WIFI lease-time=12h disabled=no comment="wanwatch: lans[1].dhcp WIFI"
/ip dhcp-server network
add address=192.168.19.0/24 gateway=192.168.19.1 dns-server=192.168.19.1 comment="wanwatch: lans[0].dhcp ether3 network"
add address=192.168.20.0/24 gateway=192.168.20.1 dns-server=192.168.20.1 comment="wanwatch: lans[1].dhcp WIFI network"
/ip dns set servers=8.8.8.8,1.1.1.1 allow-remote-requests=yes
/ip firewall nat
add chain=srcnat out-interface=ether1 action=masquerade comment="wanwatch: nat.masquerade wans[0] INET-UTAMA"
add chain=srcnat out-interface=ether2 action=masquerade comment="wanwatch: nat.masquerade wans[1] BACKUP-INET"
add chain=srcnat out-interface=ether4 action=masquerade comment="wanwatch: nat.masquerade wans[2] DSL"
/interface list
add name=wanwatch-wans comment="wanwatch: firewall: the uplinks"
/interface list member
add list=wanwatch-wans interface=ether1 comment="wanwatch: wans[0] INET-UTAMA is an uplink"
add list=wanwatch-wans interface=ether2 comment="wanwatch: wans[1] BACKUP-INET is an uplink"
add list=wanwatch-wans interface=ether4 comment="wanwatch: wans[2] DSL is an uplink"
/ip firewall filter
add chain=input action=accept connection-state=established,related,untracked comment="wanwatch: firewall: established, related"
add chain=input action=drop connection-state=invalid comment="wanwatch: firewall: invalid"
add chain=input action=accept protocol=icmp icmp-options=3:4 comment="wanwatch: firewall: path MTU discovery"
add chain=input action=accept protocol=icmp icmp-options=8:0 limit=10,20 comment="wanwatch: firewall: echo requests, rate-limited"
add chain=input action=drop in-interface-list=wanwatch-wans comment="wanwatch: firewall: nothing else from the uplinks"
add chain=forward action=accept connection-state=established,related,untracked comment="wanwatch: firewall: established, related"
add chain=forward action=drop connection-state=invalid comment="wanwatch: firewall: invalid"
add chain=forward action=drop connection-state=new connection-nat-state=!dstnat in-interface-list=wanwatch-wans comment="wanwatch: firewall: nothing new from the uplinks but a forward"
/interface list
add name=wanwatch-lans comment="wanwatch: rules: the LANs"
/interface list member
add list=wanwatch-lans interface=ether3 comment="wanwatch: lans[0] ether3 is a LAN (rules)"
add list=wanwatch-lans interface=wlan1 comment="wanwatch: lans[1] WIFI is a LAN (rules)"
/ip firewall address-list
add list=wanwatch-rule-guest-from address=192.168.20.0/24 comment="wanwatch: rules[0] guest from lan WIFI"
add list=wanwatch-rule-voip-from address=192.168.19.0/24 comment="wanwatch: rules[1] voip from lan ether3"
add list=wanwatch-rule-bank-to address=bank.example comment="wanwatch: rules[2] bank domain bank.example"
add list=wanwatch-rule-bulk-from address=192.168.19.0/24 comment="wanwatch: rules[4] bulk from lan ether3"
add list=wanwatch-local address=192.168.0.0/24 comment="wanwatch: wans[0] INET-UTAMA subnet stays local"
add list=wanwatch-local address=192.168.18.0/24 comment="wanwatch: wans[1] BACKUP-INET subnet stays local"
add list=wanwatch-local address=192.168.30.0/24 comment="wanwatch: wans[2] DSL subnet stays local"
add list=wanwatch-local address=192.168.19.0/24 comment="wanwatch: lans[0] ether3 subnet stays local"
add list=wanwatch-local address=192.168.20.0/24 comment="wanwatch: lans[1] WIFI subnet stays local"
/ip route
add dst-address=8.8.8.8/32 gateway=192.168.0.1 scope=10 comment="wanwatch: wans[0].probe.targets[0] pins 8.8.8.8 to INET-UTAMA"
add dst-address=9.9.9.9/32 gateway=192.168.18.1 scope=10 comment="wanwatch: wans[1].probe.targets[0] pins 9.9.9.9 to BACKUP-INET"
add dst-address=1.1.1.1/32 gateway=192.168.30.1 scope=10 comment="wanwatch: wans[2].probe.targets[0] pins 1.1.1.1 to DSL"
add dst-address=0.0.0.0/0 gateway=8.8.8.8 check-gateway=ping distance=1 target-scope=11 comment="wanwatch: wans[0] INET-UTAMA via 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=2 target-scope=11 comment="wanwatch: wans[1] BACKUP-INET via 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=1.1.1.1 check-gateway=ping distance=3 target-scope=11 comment="wanwatch: wans[2] DSL via 1.1.1.1"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=1 target-scope=11 routing-mark=wanwatch-rule-guest comment="wanwatch: rules[0] guest table via wans[1] BACKUP-INET 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=1.1.1.1 check-gateway=ping distance=1 target-scope=11 routing-mark=wanwatch-rule-voip comment="wanwatch: rules[1] voip table via wans[2] DSL 1.1.1.1"
add dst-address=0.0.0.0/0 gateway=8.8.8.8 check-gateway=ping distance=2 target-scope=11 routing-mark=wanwatch-rule-voip comment="wanwatch: rules[1] voip table via wans[0] INET-UTAMA 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=1 target-scope=11 routing-mark=wanwatch-rule-bank comment="wanwatch: rules[2] bank table via wans[1] BACKUP-INET 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=8.8.8.8 check-gateway=ping distance=1 target-scope=11 routing-mark=wanwatch-rule-bulk-INET-UTAMA comment="wanwatch: rules[4] bulk via INET-UTAMA table via wans[0] INET-UTAMA 8.8.8.8"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=2 target-scope=11 routing-mark=wanwatch-rule-bulk-INET-UTAMA comment="wanwatch: rules[4] bulk via INET-UTAMA table via wans[1] BACKUP-INET 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=9.9.9.9 check-gateway=ping distance=1 target-scope=11 routing-mark=wanwatch-rule-bulk-BACKUP-INET comment="wanwatch: rules[4] bulk via BACKUP-INET table via wans[1] BACKUP-INET 9.9.9.9"
add dst-address=0.0.0.0/0 gateway=8.8.8.8 check-gateway=ping distance=2 target-scope=11 routing-mark=wanwatch-rule-bulk-BACKUP-INET comment="wanwatch: rules[4] bulk via BACKUP-INET table via wans[0] INET-UTAMA 8.8.8.8"
/ip firewall mangle
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local src-address-list=wanwatch-rule-guest-from dst-address-list=!wanwatch-local action=mark-connection new-connection-mark=wanwatch-rule-guest passthrough=yes comment="wanwatch: rules[0] guest: mark"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=wanwatch-rule-guest action=mark-routing new-routing-mark=wanwatch-rule-guest passthrough=no comment="wanwatch: rules[0] guest: route by table wanwatch-rule-guest"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local src-address-list=wanwatch-rule-voip-from dst-address-list=!wanwatch-local protocol=udp dst-port=5060-5061 action=mark-connection new-connection-mark=wanwatch-rule-voip passthrough=yes comment="wanwatch: rules[1] voip udp: mark"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=wanwatch-rule-voip action=mark-routing new-routing-mark=wanwatch-rule-voip passthrough=no comment="wanwatch: rules[1] voip: route by table wanwatch-rule-voip"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local dst-address-list=wanwatch-rule-bank-to action=mark-connection new-connection-mark=wanwatch-rule-bank passthrough=yes comment="wanwatch: rules[2] bank: mark"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=wanwatch-rule-bank action=mark-routing new-routing-mark=wanwatch-rule-bank passthrough=no comment="wanwatch: rules[2] bank: route by table wanwatch-rule-bank"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local src-address-list=wanwatch-rule-bulk-from dst-address-list=!wanwatch-local protocol=tcp dst-port=22 per-connection-classifier=src-address:4/0 action=mark-connection new-connection-mark=wanwatch-rule-bulk-BACKUP-INET passthrough=yes comment="wanwatch: rules[4] bulk tcp: bucket 0/4 -> BACKUP-INET"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local src-address-list=wanwatch-rule-bulk-from dst-address-list=!wanwatch-local protocol=tcp dst-port=22 per-connection-classifier=src-address:4/1 action=mark-connection new-connection-mark=wanwatch-rule-bulk-INET-UTAMA passthrough=yes comment="wanwatch: rules[4] bulk tcp: bucket 1/4 -> INET-UTAMA"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local src-address-list=wanwatch-rule-bulk-from dst-address-list=!wanwatch-local protocol=tcp dst-port=22 per-connection-classifier=src-address:4/2 action=mark-connection new-connection-mark=wanwatch-rule-bulk-BACKUP-INET passthrough=yes comment="wanwatch: rules[4] bulk tcp: bucket 2/4 -> BACKUP-INET"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=no-mark connection-state=new dst-address-type=!local src-address-list=wanwatch-rule-bulk-from dst-address-list=!wanwatch-local protocol=tcp dst-port=22 per-connection-classifier=src-address:4/3 action=mark-connection new-connection-mark=wanwatch-rule-bulk-BACKUP-INET passthrough=yes comment="wanwatch: rules[4] bulk tcp: bucket 3/4 -> BACKUP-INET"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=wanwatch-rule-bulk-INET-UTAMA action=mark-routing new-routing-mark=wanwatch-rule-bulk-INET-UTAMA passthrough=no comment="wanwatch: rules[4] bulk via INET-UTAMA: route by table wanwatch-rule-bulk-INET-UTAMA"
add chain=prerouting in-interface-list=wanwatch-lans connection-mark=wanwatch-rule-bulk-BACKUP-INET action=mark-routing new-routing-mark=wanwatch-rule-bulk-BACKUP-INET passthrough=no comment="wanwatch: rules[4] bulk via BACKUP-INET: route by table wanwatch-rule-bulk-BACKUP-INET"
/ip route rule
add routing-mark=wanwatch-rule-guest action=lookup-only-in-table table=wanwatch-rule-guest comment="wanwatch: rules[0] guest when_down: block: never the main table"
add routing-mark=wanwatch-rule-voip action=lookup table=wanwatch-rule-voip comment="wanwatch: rules[1] voip when_down: default: then the main table"
add routing-mark=wanwatch-rule-bank action=lookup-only-in-table table=wanwatch-rule-bank comment="wanwatch: rules[2] bank when_down: block: never the main table"
add routing-mark=wanwatch-rule-bulk-INET-UTAMA action=lookup table=wanwatch-rule-bulk-INET-UTAMA comment="wanwatch: rules[4] bulk via INET-UTAMA when_down: default: then the main table"
add routing-mark=wanwatch-rule-bulk-BACKUP-INET action=lookup table=wanwatch-rule-bulk-BACKUP-INET comment="wanwatch: rules[4] bulk via BACKUP-INET when_down: default: then the main table"
/tool netwatch
add host=8.8.8.8 interval=500ms down-script=":log info \"wanwatch: uplink INET-UTAMA target 8.8.8.8 down\"" up-script=":log info \"wanwatch: uplink INET-UTAMA target 8.8.8.8 up\"" comment="wanwatch: wans[0].probe.targets[0] INET-UTAMA 8.8.8.8"
add host=9.9.9.9 interval=500ms down-script=":log info \"wanwatch: uplink BACKUP-INET target 9.9.9.9 down\"" up-script=":log info \"wanwatch: uplink BACKUP-INET target 9.9.9.9 up\"" comment="wanwatch: wans[1].probe.targets[0] BACKUP-INET 9.9.9.9"
add host=1.1.1.1 interval=500ms down-script=":log info \"wanwatch: uplink DSL target 1.1.1.1 down\"" up-script=":log info \"wanwatch: uplink DSL target 1.1.1.1 up\"" comment="wanwatch: wans[2].probe.targets[0] DSL 1.1.1.1"
/ipv6 address
add address=2001:db8:18::2/64 interface=ether2 advertise=no comment="wanwatch: wans[1] BACKUP-INET address6"
add address=fd82:1b29:265d::1/64 interface=ether3 advertise=yes comment="wanwatch: lans[0] ether3 address6"
add address=fd19:2019:2020:20::1/64 interface=wlan1 advertise=yes comment="wanwatch: lans[1] WIFI address6"
/ipv6 settings set accept-router-advertisements=yes
/ipv6 nd
add interface=ether3 advertise-dns=yes comment="wanwatch: lans[0] ether3 router advertisements"
add interface=wlan1 advertise-dns=yes comment="wanwatch: lans[1] WIFI router advertisements"
/ipv6 firewall filter
add chain=input action=accept protocol=icmpv6 icmp-options=133:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 133 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=134:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 134 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=135:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 135 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=136:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 136 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=141:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 141 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=142:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 142 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=148:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 148 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=149:0-255 hop-limit=equal:255 comment="wanwatch: firewall6: neighbour discovery 149 from the link"
add chain=input action=accept protocol=icmpv6 icmp-options=130:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 130 from link-local"
add chain=input action=accept protocol=icmpv6 icmp-options=131:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 131 from link-local"
add chain=input action=accept protocol=icmpv6 icmp-options=132:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 132 from link-local"
add chain=input action=accept protocol=icmpv6 icmp-options=143:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 143 from link-local"
add chain=input action=accept protocol=icmpv6 icmp-options=151:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 151 from link-local"
add chain=input action=accept protocol=icmpv6 icmp-options=152:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 152 from link-local"
add chain=input action=accept protocol=icmpv6 icmp-options=153:0-255 src-address=fe80::/10 comment="wanwatch: firewall6: multicast listeners 153 from link-local"
add chain=input action=accept connection-state=established,related,untracked comment="wanwatch: firewall6: established, related"
add chain=input action=accept protocol=icmpv6 icmp-options=2:0-255 comment="wanwatch: firewall6: packet too big"
add chain=input action=drop connection-state=invalid comment="wanwatch: firewall6: invalid"
add chain=input action=accept protocol=icmpv6 icmp-options=128:0 limit=10,20 comment="wanwatch: firewall6: echo requests, rate-limited"
add chain=input action=accept protocol=udp src-address=fe80::/10 src-port=547 dst-port=546 comment="wanwatch: firewall6: DHCPv6 client"
add chain=input action=drop in-interface-list=wanwatch-wans comment="wanwatch: firewall6: nothing else from the uplinks"
add chain=forward action=accept connection-state=established,related,untracked comment="wanwatch: firewall6: established, related"
add chain=forward action=accept protocol=icmpv6 icmp-options=2:0-255 comment="wanwatch: firewall6: packet too big"
add chain=forward action=drop connection-state=invalid comment="wanwatch: firewall6: invalid"
add chain=forward action=accept protocol=icmpv6 icmp-options=128:0 limit=10,20 comment="wanwatch: firewall6: echo requests, rate-limited"
add chain=forward action=drop connection-state=new in-interface-list=wanwatch-wans comment="wanwatch: firewall6: nothing new from the uplinks"
/ipv6 route
add dst-address=2620:fe::fe/128 gateway=fe80::1%ether2 scope=10 comment="wanwatch: wans[1].probe.targets[1] pins 2620:fe::fe to BACKUP-INET"
add dst-address=::/0 gateway=2620:fe::fe check-gateway=ping distance=2 target-scope=11 comment="wanwatch: wans[1] BACKUP-INET IPv6 via 2620:fe::fe"
