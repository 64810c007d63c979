#!/usr/bin/env bash
# `make demo-linux`: the capstone. `minivmm boot` boots Debian's kernel with a busybox initramfs on real KVM
# (inside QEMU, tests/kvm-in-qemu, about a minute), with every exit traced; then the exits by reason
# (the kernel's own too, through the BPF tracer), the hottest ports and addresses, and what they say about
# emulated versus paravirtual devices.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
# shellcheck source=scripts/demo-lib.sh
. scripts/demo-lib.sh
bin=$build/bin/minivmm
top=$build/bin/mvm-top
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kdir=${MINIVMM_QEMU_CACHE:-build/kvm-in-qemu}/kernel

section "Linux on minivmm: the kernel, the initramfs, the VM"
tests/kvm-in-qemu/run.sh --fetch-only >/dev/null || { echo "   no Debian kernel (tests/kvm-in-qemu)"; exit 1; }
mods=$(tests/linux/fetch-modules.sh 2>/dev/null | tail -n1) || mods=""
tests/linux/mkinitramfs.sh "$tmp/initrd.gz" $mods
mkdir -p "$tmp/p"
cp "$bin" "$top" "$kdir/vmlinuz" "$tmp/initrd.gz" "$tmp/p/"
cat >"$tmp/p/demo.sh" <<'EOF'
#!/bin/sh
./minivmm boot --backend kvm --kernel vmlinuz --initrd initrd.gz --trace /tmp/boot.trace --exits /tmp/exits.txt \
    --net-pcap /tmp/net.pcap --marker MINIVMM-LINUX-MARKER \
    --cmdline 'console=ttyS0 pci=off mvm_cmd="uname -a; grep -m1 model.name /proc/cpuinfo; ping -c 3 -i 0.2 -w 2 10.0.2.2; echo MINIVMM-LINUX-MARKER"' \
    >/tmp/console.txt 2>/tmp/summary.txt
rc=$?
echo "=== console"; cat /tmp/console.txt
echo "=== summary"; cat /tmp/summary.txt
echo "=== top"; ./mvm-top replay /tmp/boot.trace --summary 2>&1
echo "=== ports"
awk '$1 == "IO" { k = "port " substr($3, 6) " " $2 } $1 == "MMIO" { k = "mmio " substr($3, 5) " " $2 }
     $1 != "IO" && $1 != "MMIO" { k = $1 } { c[k]++ } END { for (k in c) print c[k], k }' /tmp/exits.txt |
    sort -rn | head -n 8
exit $rc
EOF
chmod +x "$tmp/p/demo.sh"
cat <<TXT
   kernel:    $(file -b "$kdir/vmlinuz" 2>/dev/null | cut -c1-60)
   initramfs: static busybox, /init runs the command line's mvm_cmd, then
              powers off through ACPI S5 ($(stat -c %s "$tmp/initrd.gz") bytes)
   the VM:    256 MiB, one vCPU, KVM's in-kernel PIC/IOAPIC/LAPIC and PIT,
              lab 4's UART on COM1 (IRQ4), lab 5's virtio-net (IRQ5), ACPI
              tables naming both. Booting on real KVM inside QEMU...
TXT

tests/kvm-in-qemu/run.sh --timeout 300 "$tmp/p" -- ./demo.sh 2>&1 | tr -d '\r' >"$tmp/log" || true
part() { sed -n "/^=== $1\$/,/^=== /p" "$tmp/log" | sed '1d;/^=== /d;/^MINIVMM-QEMU-RC/d'; }

section "The guest's console (lab 4's UART, interrupt-driven)"
part console | grep -v '^\[' | sed 's/^/   | /'
part summary | sed 's/^minivmm: /   /'

section "Exits by reason during the boot (mvm-top replay --summary)"
part top | sed 's/^/   /'

section "The hottest ports and addresses (exits to minivmm)"
part ports | sed 's/^/   /'
cat <<'TXT'

   Nearly every exit to the VMM is the UART: each byte of the console is an
   OUT to 0x3f8 and an IN from 0x3fd (LSR: "may I send the next one?"), an
   exit each, tens of microseconds each under nested KVM. The virtio-net
   device moved its frames with a few dozen MMIO exits in all: the driver
   fills a ring in shared memory and kicks once per batch. That is why
   clouds give guests paravirtual devices (lab 5) and clocks (lab 6), and
   keep trapped-and-emulated ones (lab 4) for the boot console.
TXT
