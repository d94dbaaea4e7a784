#!/usr/bin/env bash
# Install everything wanwatch, its lab and its tests need on a Debian machine, as root.
# Idempotent: safe to run again. Creates .venv/ in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
packages=(
  python3 python3-venv python3-dev gcc     # Python 3.11 (Debian 12) and a compiler for NetfilterQueue
  iproute2 nftables iptables conntrack     # the dataplane wanwatch drives, and the lab's fault injection
  dnsmasq-base                             # DHCP/DNS server binary only (no system service)
  keepalived conntrackd                    # a router pair: VRRP and connection-state sync
  busybox                                  # udhcpc and nslookup for the lab's LAN clients
  dhcpcd-base                              # DHCPv6 prefix delegation client (binary only)
  isc-dhcp-server                          # dhcpd -6: the lab ISPs' prefix delegation server
  libnetfilter-queue-dev                   # delay/jitter emulation in the lab (no netem here)
  faketime                                 # libfaketime: the lab moves the daemon's wall clock, not the host's
  iputils-ping procps
  chromium chromium-driver                 # headless browser for the status page's lab test
  systemd                                  # systemd-analyze verify for the shipped unit
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The lab runs dhcpd -6 per ISP namespace; the package's own service has no place here.
for unit in isc-dhcp-server isc-dhcp-server6; do
  if command -v systemctl >/dev/null && systemctl is-enabled -q "$unit" 2>/dev/null; then
    systemctl disable --now -q "$unit"
  fi
done

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,lab]'
echo "wanwatch installed in $(pwd)/.venv"
