#!/usr/bin/env bash
# `make bench-linux`: time to the marker line (init ran its command) for the same kernel and initramfs booted
#   1. by QEMU's TCG directly (no KVM: QEMU emulates the whole PC),
#   2. by minivmm on real KVM inside QEMU (nested: tests/kvm-in-qemu),
#   3. by minivmm on the soft backend, natively (bounded by MINIVMM_LINUX_SOFT_MS, default 300000),
# with minivmm's exits by reason. Wall times, so they move with the machine's load (printed). Writes the
# table to build/bench/linux.txt too.
#
#   tests/linux/bench_linux.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
BIN=$BUILD/bin/minivmm
KDIR=${MINIVMM_QEMU_CACHE:-build/kvm-in-qemu}/kernel
SOFT_MS=${MINIVMM_LINUX_SOFT_MS:-300000}
MARKER=MINIVMM-LINUX-MARKER
CMD="uname -a; echo $MARKER"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tests/kvm-in-qemu/run.sh --fetch-only >/dev/null
mods=$(tests/linux/fetch-modules.sh 2>/dev/null | tail -n1) || mods=""
tests/linux/mkinitramfs.sh "$tmp/initrd.gz" $mods
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rows=()

# 1. QEMU TCG, the kernel and initramfs directly: the host's clock when the marker line arrives.
t0=$(now)
t_marker=""
while IFS= read -r line; do
    case ${line%$'\r'} in "$MARKER") t_marker=$(now) ;; esac
done < <(timeout 300 qemu-system-x86_64 -accel tcg -cpu max -m 256 -smp 1 -nographic -no-reboot -nic none \
    -monitor none -serial stdio -kernel "$KDIR/vmlinuz" -initrd "$tmp/initrd.gz" \
    -append "console=ttyS0 pci=off mvm_cmd=\"$CMD\"" </dev/null 2>/dev/null)
rows+=("QEMU TCG, directly (from its start)|${t_marker:+$(secs "$t0" "$t_marker") s}|-")

# 2. minivmm on real KVM inside QEMU: minivmm's own --marker time and its exit counts.
mkdir -p "$tmp/p"
cp "$BIN" "$KDIR/vmlinuz" "$tmp/initrd.gz" "$tmp/p/"
cat >"$tmp/p/b.sh" <<EOF
#!/bin/sh
./minivmm boot --backend kvm --kernel vmlinuz --initrd initrd.gz --timeout 200000 --marker $MARKER \\
    --cmdline 'console=ttyS0 pci=off mvm_cmd="$CMD"' >/dev/null
exit 0
EOF
chmod +x "$tmp/p/b.sh"
tests/kvm-in-qemu/run.sh --timeout 300 "$tmp/p" -- ./b.sh 2>&1 | tr -d '\r' >"$tmp/kvm.log" || true
kvm_t=$(sed -n 's/^minivmm: marker .* after \([0-9.]*\) s$/\1/p' "$tmp/kvm.log")
kvm_x=$(sed -n 's/^minivmm: boot on kvm: .* and \([0-9]* exits ([^)]*)\)$/\1/p' "$tmp/kvm.log")
rows+=("minivmm, KVM inside QEMU (from KVM_RUN)|${kvm_t:+$kvm_t s}|${kvm_x:--}")

# 3. minivmm on soft, natively.
if [ "$SOFT_MS" != 0 ]; then
    "$BIN" boot --backend soft --kernel "$KDIR/vmlinuz" --initrd "$tmp/initrd.gz" --timeout "$SOFT_MS" \
        --marker "$MARKER" --cmdline "console=ttyS0 pci=off mvm_cmd=\"$CMD\"" </dev/null >"$tmp/soft.log" 2>&1 || true
    soft_t=$(sed -n 's/^minivmm: marker .* after \([0-9.]*\) s$/\1/p' "$tmp/soft.log")
    soft_x=$(sed -n 's/^minivmm: boot on soft: \(.*\)$/\1/p' "$tmp/soft.log")
    rows+=("minivmm, soft (from KVM_RUN)|${soft_t:+$soft_t s}|${soft_x:--}")
fi

mkdir -p "$BUILD/bench"
{
    echo "Linux $(strings "$KDIR/vmlinuz" | sed -n 's/^\([0-9][0-9.]*-[0-9]*-amd64\) (.*/\1/p' | head -n1), 256 MiB," \
        "busybox initramfs; load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
    printf '%-40s %-14s %s\n' "boot" "to the marker" "exits to the VMM"
    for r in "${rows[@]}"; do
        IFS='|' read -r a b c <<<"$r"
        printf '%-40s %-14s %s\n' "$a" "${b:-not reached}" "$c"
    done
} | tee "$BUILD/bench/linux.txt"
