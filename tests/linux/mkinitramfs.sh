#!/usr/bin/env bash
# Builds the busybox initramfs `minivmm boot` gives Linux: static busybox and an /init that mounts proc, sysfs
# and devtmpfs, brings up eth0 (virtio-net) with 10.0.2.15/24 when there is one, runs the command in the
# kernel command line's mvm_cmd="..." (the kernel hands it to init as an environment variable), then a
# shell on the console when there is no mvm_cmd or mvm_shell=1 is given, and powers off (ACPI S5; without ACPI it reboots: a PC kernel cannot power off then).
# MODULES_DIR (tests/linux/fetch-modules.sh's cache): kernel modules and their load order, loaded first.
#
#   tests/linux/mkinitramfs.sh OUT.cpio.gz [MODULES_DIR]
set -euo pipefail
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: tests/linux/mkinitramfs.sh OUT.cpio.gz [MODULES_DIR]" >&2; exit 2; }
OUT=$1
MODS=${2:-}
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || { echo "mkinitramfs: no static busybox; run scripts/install-deps.sh (busybox-static)" >&2; exit 2; }
command -v cpio >/dev/null || { echo "mkinitramfs: no cpio; run scripts/install-deps.sh" >&2; exit 2; }
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/mvm-initramfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root}
cp "$BUSYBOX" "$ROOT/bin/busybox"
"$BUSYBOX" --list-full | while IFS= read -r applet; do
    case $applet in bin/busybox|'') continue ;; esac
    ln -sf /bin/busybox "$ROOT/$applet" 2>/dev/null || true
done
mkdir -p "$ROOT/lib/modules"
if [ -n "$MODS" ]; then
    while IFS= read -r m; do cp "$MODS/$m.ko" "$ROOT/lib/modules/"; done <"$MODS/order"
    cp "$MODS/order" "$ROOT/lib/modules/order"
fi
cat >"$ROOT/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=vt100
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "minivmm-linux: init up after $(cut -d' ' -f1 /proc/uptime) s of guest uptime"
if [ -f /lib/modules/order ]; then
    while read -r m; do insmod "/lib/modules/$m.ko" || echo "minivmm-linux: insmod $m failed"; done </lib/modules/order
    echo "minivmm-linux: virtio modules loaded: $(ls /sys/bus/virtio/devices 2>/dev/null | wc -l) virtio devices"
fi
if [ -e /sys/class/net/eth0 ]; then
    # A peer that never answers: its address is set by hand, so the frames go out without ARP.
    ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
        arp -i eth0 -s 10.0.2.2 52:54:00:12:34:57 &&
        echo "minivmm-linux: eth0 up: $(cat /sys/class/net/eth0/address) driver $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
fi
[ -n "${mvm_cmd:-}" ] && eval "$mvm_cmd"
if [ -z "${mvm_cmd:-}" ] || [ "${mvm_shell:-0}" = 1 ]; then
    echo "minivmm-linux: a shell on the console; 'exit' powers off"
    setsid cttyhack sh
fi
# With ACPI (minivmm's tables) a power-off is S5; without it Linux cannot power off and init must reboot.
if [ -d /sys/firmware/acpi/tables ]; then
    echo "minivmm-linux: powering off"
    poweroff -f
else
    echo "minivmm-linux: no ACPI: rebooting"
    reboot -f
fi
sleep 5
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$OUT"
