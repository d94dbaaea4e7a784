# may/02/2024 by RouterOS 6.49.10
/ip address
add address=10.111.0.2/24 interface=ether1
/ip route
add gateway=10.111.0.1 \
    distance=one
