#!/bin/bash
# shellcheck disable=SC2086  # $MODULES and $dropbear_pkgs are word lists on purpose
# Build the Stratus tiny test guest: a ~20 MiB bootable qcow2 made offline
# from Debian packages only (no loop devices, no nbd, no device-mapper).
#
#   tests/images/build-tiny.sh [OUTPUT_DIR]      (default: tests/images/cache)
#
# Prints the path of OUTPUT_DIR/tiny.qcow2 on stdout (logs go to stderr).
# Also leaves OUTPUT_DIR/tiny-vmlinuz and OUTPUT_DIR/tiny-initrd.gz for a
# direct kernel boot (qemu -kernel/-initrd, libvirt <kernel>/<initrd>).
#
# The guest: Debian's cloud kernel, an initramfs that is the whole root
# filesystem (busybox-static, dropbear, util-linux's lsblk, a few kernel
# modules, and the init and metadata client from tests/images/tiny/), on a
# FAT partition booted by SYSLINUX. Kernel console on ttyS0. See
# tests/images/README.md.
#
# Cache: OUTPUT_DIR/tiny.qcow2.inputs records a hash of this script, the
# files in tiny/ and the exact package versions; when it matches, nothing is
# rebuilt. A second hash over the files and the apt package lists answers
# "up to date" in well under a second without asking apt. Downloaded .debs
# are kept in OUTPUT_DIR/debs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

OUT=${1:-$HERE/cache}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IMAGE=$OUT/tiny.qcow2

# One build at a time per output directory.
exec 9> "$OUT/.tiny.lock"
flock 9

ensure_tools apt-cache=apt dpkg-deb=dpkg sha256sum=coreutils flock=util-linux

# The modules the guest loads (their dependencies are added automatically).
MODULES="virtio_pci virtio_net failover net_failover virtio_blk virtio_scsi
scsi_mod sd_mod sr_mod cdrom ata_piix iso9660 vfat nls_cp437 nls_ascii nls_utf8 button evdev"

FAST=$(inputs_hash "$HERE/build-tiny.sh" "$HERE/common.sh" "$HERE/tiny" -- \
    "$(apt_lists_fingerprint)")
if fast_cache_hit "$IMAGE" "$FAST"; then
    log "up to date (same inputs and apt lists)"
    echo "$IMAGE"
    exit 0
fi

# The kernel package behind the linux-image-cloud-amd64 metapackage.
resolve_versions linux-image-cloud-amd64 > /dev/null
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_pkg" ] || die "cannot find the kernel package behind linux-image-cloud-amd64"
# dropbear-bin and, for util-linux's lsblk (Tempest's disk checks run `lsblk` over
# SSH), the libraries lsblk links, each with its dependencies; util-linux itself is
# only unpacked for its lsblk binary, so its own dependencies are not fetched.
dropbear_pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances dropbear-bin \
    libblkid1 libmount1 libsmartcols1 libudev1 \
    | grep -v '^ ' | grep -v '^<' | sort -u)
mapfile -t PACKAGES < <(resolve_versions "$kernel_pkg" busybox-static util-linux \
    $dropbear_pkgs)

HASH=$(inputs_hash "$HERE/build-tiny.sh" "$HERE/common.sh" "$HERE/tiny" -- \
    "${PACKAGES[@]}" $MODULES)
if cache_hit "$IMAGE" "$HASH"; then
    log "up to date ($HASH)"
    record_inputs "$IMAGE" "$HASH" "$FAST" "${PACKAGES[@]}"
    echo "$IMAGE"
    exit 0
fi

started=$(date +%s)
ensure_tools mkfs.vfat=dosfstools mcopy=mtools syslinux=syslinux \
    /usr/lib/syslinux/mbr/mbr.bin=syslinux-common qemu-img=qemu-utils \
    cpio=cpio depmod=kmod modprobe=kmod sfdisk=fdisk gzip=gzip

WORK=$(mktemp -d /tmp/stratus-tiny.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PKGS=$WORK/pkgs      # every package unpacked together
ROOT=$WORK/root      # the initramfs tree

download_debs "$OUT/debs" "${PACKAGES[@]}"
mkdir -p "$PKGS"
for spec in "${PACKAGES[@]}"; do
    deb=$(deb_file "$OUT/debs" "${spec%%=*}")
    dpkg-deb -x "$deb" "$PKGS"
done
KVER=${kernel_pkg#linux-image-}
[ -f "$PKGS/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER in $kernel_pkg"

log "assembling the root filesystem"
mkdir -p "$ROOT"
for d in bin sbin usr/bin usr/sbin lib lib64 etc proc sys dev run tmp mnt \
    root var/log var/empty "lib/modules/$KVER"; do
    mkdir -p "$ROOT/$d"
done
ln -s ../run "$ROOT/var/run"
chmod 1777 "$ROOT/tmp"
chmod 700 "$ROOT/root"

# busybox and a symlink per applet; /init is busybox init.
install -m 755 "$PKGS/bin/busybox" "$ROOT/bin/busybox"
"$ROOT/bin/busybox" --list-full | while read -r applet; do
    [ -e "$ROOT/$applet" ] || [ -L "$ROOT/$applet" ] && continue
    depth=$(echo "$applet" | tr -cd '/' | wc -c)
    up=$(for _ in $(seq "$depth"); do printf '../'; done)
    ln -s "${up}bin/busybox" "$ROOT/$applet"
done
ln -s bin/busybox "$ROOT/init"

# dropbear and lsblk, and exactly the shared libraries they need, resolved by
# the packaged dynamic loader against the unpacked packages only. (util-linux
# has lsblk in /bin before Debian 13, in /usr/bin from it; busybox has none.)
install -m 755 "$PKGS/usr/sbin/dropbear" "$ROOT/usr/sbin/dropbear"
install -m 755 "$PKGS/usr/bin/dropbearkey" "$ROOT/usr/bin/dropbearkey"
lsblk_src=$PKGS/usr/bin/lsblk
[ -f "$lsblk_src" ] || lsblk_src=$PKGS/bin/lsblk
[ -f "$lsblk_src" ] || die "util-linux has no lsblk (neither /usr/bin nor /bin)"
rm -f "$ROOT/usr/bin/lsblk" "$ROOT/bin/lsblk"
install -m 755 "$lsblk_src" "$ROOT/usr/bin/lsblk"
LDSO=$PKGS/lib64/ld-linux-x86-64.so.2
LIBPATH=$PKGS/lib/x86_64-linux-gnu:$PKGS/usr/lib/x86_64-linux-gnu
for bin in usr/sbin/dropbear usr/bin/dropbearkey usr/bin/lsblk; do
    listing=$("$LDSO" --library-path "$LIBPATH" --list "$ROOT/$bin")
    if echo "$listing" | grep -q 'not found'; then
        die "unresolved libraries for $bin: $listing"
    fi
    echo "$listing" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
        case "$lib" in
            "$PKGS"/*) ;;
            *) die "$bin resolved $lib outside the unpacked packages" ;;
        esac
        rel=${lib#"$PKGS"/}
        mkdir -p "$ROOT/$(dirname "$rel")"
        cp -L "$lib" "$ROOT/$rel"
    done
done
cp -L "$LDSO" "$ROOT/lib64/ld-linux-x86-64.so.2"

# Kernel modules in load order (dependencies first), listed for rcS.
log "resolving kernel modules"
depmod -b "$PKGS" "$KVER"
: > "$ROOT/lib/modules/stratus-modules.list"
for module in $MODULES; do
    modprobe -d "$PKGS" -S "$KVER" --show-depends "$module" \
        || die "kernel $KVER has no module $module"
done | while read -r kind path _; do
    [ "$kind" = insmod ] || continue     # "builtin <name>" needs nothing
    rel=${path#"$PKGS/lib/modules/$KVER/"}
    grep -qxF "${rel%.xz}" "$ROOT/lib/modules/stratus-modules.list" && continue
    mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$rel")"
    cp "$path" "$ROOT/lib/modules/$KVER/$rel"
    case "$rel" in
        *.xz) xz -d "$ROOT/lib/modules/$KVER/$rel"; rel=${rel%.xz} ;;
    esac
    echo "$rel" >> "$ROOT/lib/modules/stratus-modules.list"
done
cp "$PKGS/lib/modules/$KVER/modules.order" "$PKGS/lib/modules/$KVER/modules.builtin"* \
    "$ROOT/lib/modules/$KVER/"
depmod -b "$ROOT" "$KVER"

# The init, metadata client and configuration from tiny/.
cp -a "$HERE/tiny/." "$ROOT/"
chmod 600 "$ROOT/etc/shadow"
chmod 755 "$ROOT/etc/init.d/rcS" "$ROOT/etc/init.d/rcK" "$ROOT/usr/sbin/stratus-metadata" \
    "$ROOT/usr/share/udhcpc/default.script" "$ROOT/etc/acpi/PWRF/00000080" \
    "$ROOT/usr/bin/curl" "$ROOT/usr/bin/sudo" "$ROOT/usr/bin/blkid"
echo localhost > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n' > "$ROOT/etc/hosts"
mknod -m 600 "$ROOT/dev/console" c 5 1
mknod -m 666 "$ROOT/dev/null" c 1 3

log "packing the initramfs"
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
    | gzip -n -9 > "$WORK/initrd.gz"

log "making the disk"
cat > "$WORK/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT stratus
PROMPT 0
TIMEOUT 0
LABEL stratus
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200n8
EOF
cp "$PKGS/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
payload_kib=$(du -k -c "$WORK/vmlinuz" "$WORK/initrd.gz" | tail -n 1 | cut -f 1)
part_mib=$(( payload_kib / 1024 + 8 ))
# -h 2048: the partition starts at sector 2048 (SYSLINUX reads "hidden sectors").
mkfs.vfat -C -n STRATUS -h 2048 "$WORK/part.img" $(( part_mib * 1024 )) > /dev/null
mcopy -i "$WORK/part.img" "$WORK/vmlinuz" "$WORK/initrd.gz" "$WORK/syslinux.cfg" ::/
syslinux --install "$WORK/part.img"
truncate -s $(( (part_mib + 1) * 1024 * 1024 )) "$WORK/disk.raw"
echo 'start=2048, type=e, bootable' | sfdisk --quiet --label dos "$WORK/disk.raw"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$WORK/part.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/tiny.qcow2"

mv "$WORK/vmlinuz" "$OUT/tiny-vmlinuz"
mv "$WORK/initrd.gz" "$OUT/tiny-initrd.gz"
mv "$WORK/tiny.qcow2" "$IMAGE"
record_inputs "$IMAGE" "$HASH" "$FAST" "${PACKAGES[@]}"
log "built $IMAGE ($(du -h "$IMAGE" | cut -f 1)) in $(( $(date +%s) - started )) s"
echo "$IMAGE"
