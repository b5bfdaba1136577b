#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (Debian 12, as root):
# PostgreSQL for the identity tests against a real database, supervisor for
# the all-in-one deploy, and the toolchain to build the Python dependencies.
set -euo pipefail

packages=(
  python3 python3-venv python3-dev python3-apt build-essential libpq-dev
  postgresql postgresql-client supervisor
  git ca-certificates curl
  openvswitch-switch dnsmasq-base dnsmasq-utils nftables iproute2 iputils-ping busybox conntrack iperf3
  radvd isc-dhcp-client  # IPv6: router advertisements, a DHCPv6 client (test_agent_network_ipv6.py)
  procps util-linux ethtool
  qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients genisoimage
  tgt qemu-block-extra fuse3
  openssh-client dosfstools mtools
  chromium chromium-driver
  libnss3-tools  # certutil: Chromium trusts the e2e cloud's CA through an NSS db (test_dashboard_aio.py)
  novnc  # the noVNC client stratus-novncproxy serves (tests/integration/test_novncproxy_console.py)
  podman runc netavark mmdebstrap  # molecule's systemd hosts (extensions/molecule, docs/molecule.md)
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all Debian packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-test-deps: installing ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
