# 2024-05-02 by RouterOS 7.14
/ip route
add gateway=10.111.0.1 comment="primary
add gateway=10.112.0.1 distance=2
