#!/usr/bin/env bash
# The capstone's test: `minivmm boot` boots the stock Debian kernel (the one tests/kvm-in-qemu caches) with a
# busybox initramfs built now, on real KVM inside QEMU: the guest runs `uname -a; cat /proc/cpuinfo`, sends
# pings through Linux's virtio-net driver into lab 5's device (a pcap), prints a marker and powers off, and
# minivmm ends with status 0. With MINIVMM_LINUX_SOFT_MS (opt-in) the soft backend gets the same boot natively,
# with at most that many ms, and the same checks. Ends with "linux: N passed, N failed, N skipped".
#
#   tests/linux/test_linux.sh [BUILD]       (BUILD: build, or build/san)
# Environment: MINIVMM_LINUX_SOFT_MS (default 0: no soft boot, about 50 s wall and 25 s of CPU; 300000 is ample),
# MINIVMM_NO_QEMU=1 (skips the kvm boot), MINIVMM_LINUX_KEEP=1 (keeps the payload; the logs stay in BUILD/linux/).
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
BIN=$BUILD/bin/minivmm
KDIR=${MINIVMM_QEMU_CACHE:-build/kvm-in-qemu}/kernel
W=$BUILD/linux
SOFT_MS=${MINIVMM_LINUX_SOFT_MS:-0}
MARKER=MINIVMM-LINUX-MARKER
pass=0 fail=0 skip=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
skp() { echo "SKIP $*"; skip=$((skip + 1)); }
finish() {
    echo "linux: $pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
}
# check NAME LOG REGEX: one check that a line of LOG matches the extended regex
check() {
    if grep -aqE "$3" "$2"; then ok "$1"; else bad "$1 (no line matching /$3/ in $2)"; fi
}
# guest_checks BACKEND LOG PCAP_HEX: what the guest did, the same on both backends (LOG: minivmm's output with the
# console; PCAP_HEX: the --net-pcap file as hex)
guest_checks() {
    local b=$1 log=$2 hex=$3 out
    check "$b: the marker line on the console" "$log" "^$MARKER\$"
    check "$b: uname -a names the bzImage's release (${release:-?})" "$log" \
        "^Linux \\(none\\) ${release:-NO-RELEASE} .* x86_64 GNU/Linux\$"
    check "$b: /proc/cpuinfo: the hypervisor flag" "$log" '^flags[[:space:]]*:.* hypervisor'
    check "$b: kvmclock is the clocksource" "$log" 'Switched to clocksource kvm-clock'
    check "$b: the shell ran what arrived on COM1 (--serial-in, IRQ4 receive)" "$log" '^typed-42$'
    check "$b: COM1's IRQ4 was raised (interrupt-driven console)" "$log" '^minivmm: interrupts raised: IRQ4 \(COM1\) [1-9]'
    check "$b: virtio-net's IRQ5 was raised (used buffers)" "$log" 'IRQ5 \(virtio-net\) [1-9]'
    if grep -aq '^minivmm-linux: eth0 up' "$log"; then
        if out=$(python3 tests/linux/pcap_check.py "$hex" 10.0.2.15 10.0.2.2); then
            ok "$b: virtio-net: $out"
        else
            bad "$b: virtio-net: $out"
        fi
    else
        skp "$b: virtio-net: Linux found no eth0 ($(grep -a 'minivmm-linux: virtio' "$log" | tail -n1))"
    fi
}

[ -x "$BIN" ] || { bad "no $BIN (make all)"; finish; }
# expect_usage NAME TEXT ARGS...: `minivmm boot ARGS` refuses with status 2 and a message holding TEXT
expect_usage() {
    local name=$1 text=$2 out rc
    shift 2
    out=$("$BIN" boot "$@" 2>&1 </dev/null)
    rc=$?
    if [ "$rc" = 2 ] && grep -qF -- "$text" <<<"$out"; then ok "cli: $name"; else bad "cli: $name (status $rc: $out)"; fi
}
expect_usage "no --kernel" "no kernel: give --kernel" --initrd /dev/null
expect_usage "not a bzImage" "boot_flag at 0x1fe" --kernel "$0"
expect_usage "a device as the kernel" "not a regular file" --kernel /dev/zero
expect_usage "--mem too small" "--mem: '16M' is not a size of 64M" --kernel "$0" --mem 16M
expect_usage "--mem over the virtio window" "below the virtio-mmio" --kernel "$0" --mem 1G
expect_usage "an unknown option" "unknown option '--bogus'" --kernel "$0" --bogus
rm -rf "$W"
mkdir -p "$W/payload"
if ! tests/kvm-in-qemu/run.sh --fetch-only >"$W/fetch.log" 2>&1 || [ ! -f "$KDIR/vmlinuz" ]; then
    skp "linux boot: no cached Debian kernel and none could be fetched ($(tail -n1 "$W/fetch.log"))"
    finish
fi
# Linux's virtio modules (Debian builds virtio, virtio_mmio and virtio_net as modules), from the same package.
mods=""
if tests/linux/fetch-modules.sh >"$W/modules.log" 2>&1; then
    mods=$(tail -n1 "$W/modules.log")
else
    echo "linux: no virtio modules: $(tail -n1 "$W/modules.log")"
fi
if ! tests/linux/mkinitramfs.sh "$W/payload/initrd.gz" $mods >"$W/initramfs.log" 2>&1; then
    skp "linux boot: the initramfs could not be built: $(tail -n1 "$W/initramfs.log")"
    finish
fi
cp "$BIN" "$KDIR/vmlinuz" "$W/payload/"
expect_usage "RAM smaller than the kernel's init_size" "but RAM ends at 0x4000000" --kernel "$KDIR/vmlinuz" --mem 64M \
    --backend soft
# What the bzImage's header says its release is: uname -r in the guest must agree.
release=$(strings "$KDIR/vmlinuz" | sed -n 's/^\([0-9][0-9.]*-[0-9]*-amd64\) (.*/\1/p' | head -n1)
CMD="uname -a; cat /proc/cpuinfo; ping -c 3 -i 0.2 -w 2 10.0.2.2; echo $MARKER"
cat >"$W/payload/boot.sh" <<EOF
#!/bin/sh
# Inside the QEMU VM: one boot on real KVM, then what the host-side checks read.
t0=\$(cut -d' ' -f1 /proc/uptime)
# After mvm_cmd a shell reads what arrives on COM1 (--serial-in): what a user would type.
printf 'echo typed-\$((6 * 7))\nexit\n' >/tmp/typed.txt
./minivmm boot --backend kvm --kernel vmlinuz --initrd initrd.gz --timeout 150000 --exits /tmp/exits.txt \\
    --net-pcap /tmp/net.pcap --marker $MARKER --serial-in /tmp/typed.txt \\
    --cmdline 'console=ttyS0 pci=off mvm_shell=1 mvm_cmd="$CMD"'
rc=\$?
echo "MVM-BOOT-RC=\$rc wall \$t0..\$(cut -d' ' -f1 /proc/uptime) s"
echo "=== exits by port or address"
awk '\$1 == "IO" { k = \$1 " " \$2 " " \$3 } \$1 == "MMIO" { k = \$1 " " \$2 " " \$3 } \$1 != "IO" && \$1 != "MMIO" { k = \$1 }
     { c[k]++ } END { for (k in c) print c[k], k }' /tmp/exits.txt | sort -rn | head -n 12
echo "PCAP-HEX=\$(xxd -p /tmp/net.pcap 2>/dev/null | tr -d '\n')"
exit 0 # minivmm's status is in MVM-BOOT-RC; the runner's own 4 means "no KVM"
EOF
chmod +x "$W/payload/boot.sh"

if [ "${MINIVMM_NO_QEMU:-0}" = 1 ]; then
    skp "linux boot on kvm inside QEMU: MINIVMM_NO_QEMU=1"
else
    t0=$(date +%s)
    tests/kvm-in-qemu/run.sh --timeout 240 "$W/payload" -- ./boot.sh 2>&1 | tr -d '\r' >"$W/kvm.log"
    qrc=${PIPESTATUS[0]}
    echo "linux boot on kvm inside QEMU: $(($(date +%s) - t0)) s in all (QEMU's boot, the nested boot, QEMU's end)"
    grep -a '^minivmm:\|^MVM-BOOT-RC\|^minivmm-linux' "$W/kvm.log" | sed 's/^/  | /'
    if [ "$qrc" = 4 ]; then
        skp "linux boot on kvm: KVM did not come up inside QEMU (tests/kvm-in-qemu)"
    elif [ "$qrc" = 2 ]; then
        skp "linux boot on kvm: tests/kvm-in-qemu could not start: $(grep -a 'error' "$W/kvm.log" | tail -n1)"
    elif [ "$qrc" != 0 ]; then
        bad "linux boot on kvm: the QEMU VM ended with status $qrc (124: timed out, 3: crashed); see $W/kvm.log"
        grep -a -v '^flags\|^bugs' "$W/kvm.log" | tail -n 15 | sed 's/^/  | /'
    else
        check "kvm: minivmm ends with status 0 when the guest powers off" "$W/kvm.log" '^MVM-BOOT-RC=0 '
        check "kvm: the guest powered off through ACPI S5" "$W/kvm.log" '^minivmm: boot on kvm: the guest powered off \(ACPI S5\)'
        guest_checks kvm "$W/kvm.log" "$(sed -n 's/^PCAP-HEX=//p' "$W/kvm.log" | tail -n1)"
    fi
fi

if [ "$SOFT_MS" = 0 ]; then
    skp "linux boot on soft: not run (opt-in: about 50 s wall and 25 s of CPU to the marker;" \
        "MINIVMM_LINUX_SOFT_MS=300000 runs it)"
else
    # shellcheck disable=SC2016 # what the guest's shell gets, unexpanded: it computes 6 * 7 itself
    printf 'echo typed-$((6 * 7))\nexit\n' >"$W/typed.txt"
    t0=$(date +%s)
    "$BIN" boot --backend soft --kernel "$KDIR/vmlinuz" --initrd "$W/payload/initrd.gz" --timeout "$SOFT_MS" \
        --exits "$W/soft-exits.txt" --net-pcap "$W/soft.pcap" --marker "$MARKER" --serial-in "$W/typed.txt" \
        --cmdline "console=ttyS0 pci=off mvm_shell=1 mvm_cmd=\"$CMD\"" </dev/null >"$W/soft.log" 2>&1
    src=$?
    echo "linux boot on soft: status $src after $(($(date +%s) - t0)) s"
    tr -d '\r' <"$W/soft.log" >"$W/soft.txt" # the console's lines end in CR LF
    grep -a '^minivmm:\|Run /init' "$W/soft.txt" | sed 's/^/  | /'
    if grep -aq "^$MARKER\$" "$W/soft.txt"; then
        if [ "$src" = 0 ]; then ok "soft: minivmm ends with status 0 when the guest powers off"; else
            bad "soft: minivmm ended with status $src after the marker"
        fi
        check "soft: the guest powered off through ACPI S5" "$W/soft.txt" \
            '^minivmm: boot on soft: the guest powered off \(ACPI S5\)'
        guest_checks soft "$W/soft.txt" "$(xxd -p "$W/soft.pcap" 2>/dev/null | tr -d '\n')"
    else
        last=$(grep -a '^\[' "$W/soft.txt" | tail -n1 | cut -c1-150)
        where=$(grep -a 'segfault at\|Kernel panic\|^minivmm: KVM_EXIT\|^minivmm: stopped\|^minivmm: .*timed out\|timeout' \
            "$W/soft.txt" | head -n1 | cut -c1-160)
        bad "soft: the boot did not reach the marker (status $src; ${where:-no fault line}; last kernel line:" \
            "${last:-none}; $W/soft.txt)"
    fi
fi
[ "${MINIVMM_LINUX_KEEP:-0}" = 1 ] || rm -rf "$W/payload"
finish
