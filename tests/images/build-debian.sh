#!/bin/bash
# Build the Stratus Debian test guest: Debian 12 (bookworm) with real
# cloud-init, as a bootable qcow2, made with mmdebstrap from the Debian
# mirror this machine's apt is configured with (no loop devices, no nbd, no
# device-mapper, no chroot mounts on the host).
#
#   tests/images/build-debian.sh [OUTPUT_DIR]    (default: tests/images/cache)
#
# Prints the path of OUTPUT_DIR/debian.qcow2 on stdout (logs go to stderr).
# Also leaves OUTPUT_DIR/debian-vmlinuz and OUTPUT_DIR/debian-initrd.img for
# a direct kernel boot (append: see DEBIAN_CMDLINE below, also written to
# OUTPUT_DIR/debian-cmdline).
#
# Disk layout (MBR):
#   p1  FAT16, 160 MiB-ish, bootable: SYSLINUX + the kernel and initrd
#       (syslinux installs into a FAT image file through mtools: no mount)
#   p2  ext4 "stratus-root", the root filesystem, made with mkfs.ext4 -d
#       from the mmdebstrap tree; last partition so cloud-init's growpart
#       can grow it when the disk is resized.
#
# Cache: OUTPUT_DIR/debian.qcow2.inputs records a hash of this script, the
# mirror lines and the candidate versions of the main packages; when it
# matches, nothing is rebuilt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

OUT=${1:-$HERE/cache}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IMAGE=$OUT/debian.qcow2
SUITE=bookworm
ROOT_LABEL=stratus-root
DEBIAN_CMDLINE="root=LABEL=$ROOT_LABEL ro console=tty0 console=ttyS0,115200n8"

# Packages on top of the minbase variant.
INCLUDE=(
    systemd-sysv udev dbus linux-image-cloud-amd64
    cloud-init openssh-server e2fsprogs cloud-guest-utils
    ifupdown isc-dhcp-client iproute2 netbase sudo
)

exec 9> "$OUT/.debian.lock"
flock 9

ensure_tools apt-cache=apt apt-config=apt sha256sum=coreutils flock=util-linux

# The Debian mirror lines of this machine's apt configuration, as one-line
# "deb URI SUITE main" entries for $SUITE, $SUITE-updates, $SUITE-security.
host_mirror_lines() {
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    awk -v suite="$SUITE" '
        function wanted(s) { return s == suite || s == suite "-updates" || s == suite "-security" }
        function has_main(comps,    n, i, c) {
            n = split(comps, c, /[ \t]+/)
            for (i = 1; i <= n; i++) if (c[i] == "main") return 1
            return 0
        }
        function flush(    nu, ns, u, s, i, j) {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && has_main(comps)) {
                nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
                for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                    if (u[i] != "" && wanted(s[j])) print "deb " u[i] " " s[j] " main"
            }
            types = uris = suites = comps = enabled = ""
        }
        FILENAME ~ /\.sources$/ {
            if (FNR == 1) flush()
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            if ($0 ~ /^#/) next
            key = tolower($1); sub(/:$/, "", key)
            val = $0; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "components") comps = val
            else if (key == "enabled") enabled = tolower(val)
            next
        }
        {
            flush()
            line = $0; sub(/#.*/, "", line)
            n = split(line, w, /[ \t]+/)
            i = 1; if (w[1] == "") i = 2
            if (w[i] != "deb") next
            i++
            if (w[i] ~ /^\[/) { while (i <= n && w[i] !~ /\]$/) i++; i++ }
            uri = w[i]; s = w[i + 1]; comps = ""
            for (j = i + 2; j <= n; j++) comps = comps " " w[j]
            if (wanted(s) && has_main(comps)) print "deb " uri " " s " main"
            comps = ""
        }
        END { flush() }
    ' "${files[@]}" | awk '!seen[$0]++'
}

mapfile -t MIRRORS < <(host_mirror_lines)
[ ${#MIRRORS[@]} -gt 0 ] || die "no Debian $SUITE mirror with 'main' in /etc/apt/sources.list*"

# apt settings of this machine that matter for reaching its mirror.
APTOPTS=()
while read -r key value; do
    APTOPTS+=("--aptopt=$key $value")
done < <(apt-config dump | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date) ' || true)

FAST=$(inputs_hash "$HERE/build-debian.sh" "$HERE/common.sh" -- \
    "${MIRRORS[@]}" "${APTOPTS[@]}" "$(apt_lists_fingerprint)")
if fast_cache_hit "$IMAGE" "$FAST"; then
    log "up to date (same inputs and apt lists)"
    echo "$IMAGE"
    exit 0
fi

mapfile -t VERSIONS < <(resolve_versions linux-image-cloud-amd64 cloud-init openssh-server systemd)
HASH=$(inputs_hash "$HERE/build-debian.sh" "$HERE/common.sh" -- \
    "${MIRRORS[@]}" "${APTOPTS[@]}" "${VERSIONS[@]}" "${INCLUDE[@]}")
if cache_hit "$IMAGE" "$HASH"; then
    log "up to date ($HASH)"
    record_inputs "$IMAGE" "$HASH" "$FAST" "${MIRRORS[@]}" "${VERSIONS[@]}"
    echo "$IMAGE"
    exit 0
fi

started=$(date +%s)
ensure_tools mmdebstrap=mmdebstrap mkfs.ext4=e2fsprogs mkfs.vfat=dosfstools \
    mcopy=mtools syslinux=syslinux /usr/lib/syslinux/mbr/mbr.bin=syslinux-common \
    qemu-img=qemu-utils sfdisk=fdisk

WORK=$(mktemp -d /tmp/stratus-debian.XXXXXX)
# --one-file-system: never descend into anything mounted below WORK.
trap 'rm -rf --one-file-system "$WORK"' EXIT
ROOT=$WORK/root

log "mmdebstrap $SUITE from: ${MIRRORS[*]}"
# Tar output: mmdebstrap keeps its chroot (and any mounts) in its own
# temporary directory and cleans it up itself.
mmdebstrap --mode=root --format=tar --variant=minbase \
    --include="$(IFS=,; echo "${INCLUDE[*]}")" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "${APTOPTS[@]}" \
    "$SUITE" "$WORK/rootfs.tar" "${MIRRORS[@]}" >&2
mkdir -p "$ROOT"
tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf "$WORK/rootfs.tar"
rm -f "$WORK/rootfs.tar"

log "configuring the image"
cat > "$ROOT/etc/cloud/cloud.cfg.d/90_stratus.cfg" <<'EOF'
# Stratus test image: metadata from a config drive or from the OpenStack
# metadata service at 169.254.169.254 (what stratus-metadata answers).
datasource_list: [ConfigDrive, OpenStack]
datasource:
  OpenStack:
    max_wait: 120
    timeout: 10
    retries: 5
# Under TCG an RSA host key takes seconds to generate: ed25519 and ecdsa only.
ssh_genkeytypes: [ed25519, ecdsa]
# The image has no "locales" package: keep the built-in C.UTF-8, which
# /etc/default/locale already names, so cc_locale has nothing to do (its
# default, en_US.UTF-8, would fail in update-locale).
locale: C.UTF-8
EOF
echo 'LANG=C.UTF-8' > "$ROOT/etc/default/locale"
cat > "$ROOT/etc/fstab" <<EOF
LABEL=$ROOT_LABEL / ext4 rw,discard,errors=remount-ro 0 1
EOF
# Per-instance state is created at first boot, never shipped in the image.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT/etc/hostname"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/cloud/*
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' \
    > "$ROOT/etc/network/interfaces"

KERNEL=$(cd "$ROOT/boot" && printf '%s\n' vmlinuz-* | sort -V | tail -n 1)
INITRD=initrd.img-${KERNEL#vmlinuz-}
[ -f "$ROOT/boot/$INITRD" ] || die "no /boot/$INITRD in the image"

log "making the root filesystem"
# 20 % + 256 MiB of room: the virtual disk stays under 1 GiB, so the image
# fits a 1 GB flavor disk; growpart/resizefs take whatever the flavor gives.
root_mib=$(du -s -m --one-file-system "$ROOT" | cut -f 1)
root_mib=$(( (root_mib * 12 / 10 + 256 + 63) / 64 * 64 ))
# Initialise inode tables and journal now, so the guest's first boot does
# not spend TCG time zeroing them (ext4lazyinit).
mkfs.ext4 -q -F -L "$ROOT_LABEL" -d "$ROOT" \
    -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/root.img" "${root_mib}M"

log "making the boot partition"
cat > "$WORK/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $DEBIAN_CMDLINE
EOF
cp "$ROOT/boot/$KERNEL" "$WORK/vmlinuz"
cp "$ROOT/boot/$INITRD" "$WORK/initrd.img"
boot_kib=$(du -k -c "$WORK/vmlinuz" "$WORK/initrd.img" | tail -n 1 | cut -f 1)
boot_mib=$(( boot_kib / 1024 + 32 ))
mkfs.vfat -C -n STRATUSBOOT -h 2048 "$WORK/boot.img" $(( boot_mib * 1024 )) > /dev/null
mcopy -i "$WORK/boot.img" "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/syslinux.cfg" ::/
syslinux --install "$WORK/boot.img"

log "making the disk"
boot_start=2048
root_start=$(( boot_start + boot_mib * 2048 ))
disk_mib=$(( 1 + boot_mib + root_mib ))
truncate -s "${disk_mib}M" "$WORK/disk.raw"
sfdisk --quiet --label dos "$WORK/disk.raw" <<EOF
start=$boot_start, size=$(( boot_mib * 2048 )), type=e, bootable
start=$root_start, size=$(( root_mib * 2048 )), type=83
EOF
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/boot.img" of="$WORK/disk.raw" bs=512 seek=$boot_start conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$WORK/disk.raw" bs=1M seek=$(( root_start / 2048 )) conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/debian.qcow2"

mv "$WORK/vmlinuz" "$OUT/debian-vmlinuz"
mv "$WORK/initrd.img" "$OUT/debian-initrd.img"
echo "$DEBIAN_CMDLINE" > "$OUT/debian-cmdline"
mv "$WORK/debian.qcow2" "$IMAGE"
record_inputs "$IMAGE" "$HASH" "$FAST" "${MIRRORS[@]}" "${VERSIONS[@]}"
log "built $IMAGE ($(du -h "$IMAGE" | cut -f 1), virtual ${disk_mib} MiB) in $(( $(date +%s) - started )) s"
echo "$IMAGE"
