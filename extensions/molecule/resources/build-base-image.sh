#!/usr/bin/env bash
# Builds the molecule base image offline from Debian packages (no registry is reachable):
# mmdebstrap makes a Debian 12 root file system with systemd as init and an SSH server,
# and `podman import` turns it into a local image. Kept between runs (destroy leaves it);
# rebuilt only when missing. Usage: build-base-image.sh <image name>
set -euo pipefail
image="${1:?usage: build-base-image.sh <image>}"
if podman image exists "$image"; then
  echo "base image $image: cached"
  exit 0
fi
mirror="${STRATUS_MOLECULE_MIRROR:-http://deb.debian.org/debian}"
security="${STRATUS_MOLECULE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
mmdebstrap --variant=apt \
  --include=systemd-sysv,dbus,python3,python3-apt,make,git,ca-certificates,iproute2,sudo,openssh-server,openssh-client,procps,curl,iputils-ping \
  --customize-hook='chroot "$1" systemctl enable ssh' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='chroot "$1" systemctl mask systemd-resolved.service getty@tty1.service console-getty.service 2>/dev/null || true' \
  bookworm - \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main" \
  | podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image"
echo "base image $image: built"
