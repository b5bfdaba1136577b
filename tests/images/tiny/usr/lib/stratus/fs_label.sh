# shellcheck shell=sh
# fs_label DEVICE (busybox sh, sourced by stratus-metadata and blkid).
# The label of a filesystem on a block device, read from its first sectors:
# ISO9660 volume identifier (sector 16) or FAT volume label (boot sector).
fs_label() {
    dev=$1
    magic=$(dd if="$dev" bs=2048 skip=16 count=1 2>/dev/null | dd bs=1 skip=1 count=5 2>/dev/null)
    if [ "$magic" = "CD001" ]; then
        dd if="$dev" bs=2048 skip=16 count=1 2>/dev/null | dd bs=1 skip=40 count=32 2>/dev/null
        return
    fi
    boot=$(dd if="$dev" bs=512 count=1 2>/dev/null | dd bs=1 skip=82 count=5 2>/dev/null)
    if [ "$boot" = "FAT32" ]; then
        dd if="$dev" bs=512 count=1 2>/dev/null | dd bs=1 skip=71 count=11 2>/dev/null
        return
    fi
    boot=$(dd if="$dev" bs=512 count=1 2>/dev/null | dd bs=1 skip=54 count=3 2>/dev/null)
    if [ "$boot" = "FAT" ]; then
        dd if="$dev" bs=512 count=1 2>/dev/null | dd bs=1 skip=43 count=11 2>/dev/null
    fi
}
