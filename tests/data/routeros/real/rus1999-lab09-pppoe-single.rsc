# oct/12/2022 11:43:15 by RouterOS 7.4
# software id = REDACTED
#
# model = RouterBOARD 941-2nD
# serial number = REDACTED
/interface wireless
set [ find default-name=wlan1 ] ssid=MikroTik
/interface pppoe-client
add add-default-route=yes disabled=no interface=ether1 keepalive-timeout=20 \
    name=pppoe-out1 use-peer-dns=yes user=ppp01@isp01
/interface wireless security-profiles
set [ find default=yes ] supplicant-identity=MikroTik
/ip ipsec proposal
set [ find default=yes ] enc-algorithms=aes-256-cbc lifetime=0s
/ip pool
add name=dhcp_pool0 ranges=192.168.3.2-192.168.3.254
add name=PPTP_pools ranges=172.21.12.2-172.21.12.254
add name=L2TP-pools ranges=172.16.61.2-172.16.61.254
/ip dhcp-server
add address-pool=dhcp_pool0 interface=ether3 lease-time=1d10m name=dhcp1
/ppp profile
add local-address=172.21.12.1 name=PPTP-profile remote-address=PPTP_pools \
    use-encryption=yes
add local-address=172.16.61.1 name=L2TP_profile remote-address=L2TP-pools \
    use-encryption=required
/interface l2tp-server server
set enabled=yes use-ipsec=yes
/interface pptp-server server
# PPTP connections are considered unsafe, it is suggested to use a more modern VPN protocol instead
set enabled=yes
/ip address
add address=192.168.3.1/24 interface=ether3 network=192.168.3.0
/ip dhcp-server network
add address=192.168.3.0/24 gateway=192.168.3.1
/ip dns
set allow-remote-requests=yes
/ip firewall filter
add action=accept chain=input dst-port=500,4500,1701 protocol=udp
add action=accept chain=input protocol=ipsec-ah
add action=accept chain=input protocol=ipsec-esp
/ip firewall nat
add action=masquerade chain=srcnat out-interface=pppoe-out1
/ppp secret
add name=pptp01 profile=PPTP-profile service=pptp
add name=pptp02 profile=PPTP-profile service=pptp
add name=l2tp01 profile=L2TP_profile service=l2tp
add name=l2tp02 profile=L2TP_profile service=l2tp
/system clock
set time-zone-name=Asia/Bangkok
/system identity
set name=24-HQ
/tool romon
set enabled=yes
