#!/usr/bin/env bash
# The kernel-side exit tracer: loads and attaches on this kernel's kvm tracepoints, degrades with a clear
# message without privilege, and inside the QEMU runner (real kvm_amd) counts at least as many kernel
# exits as the VMM saw exits to userspace.
#   tests/visualizer/test_bpf.sh [BUILD_DIR]      MINIVMM_NO_QEMU=1 skips the QEMU part
# Ends with: "bpf: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
vmm=$build/bin/minivmm
top=$build/bin/mvm-top
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     | /' <<<"$2"; fail=$((fail + 1)); }
skipped() { echo "skip $1"; skip=$((skip + 1)); }
check() { if [ "$2" = 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
finish() { echo "bpf: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit; }

# field FILE REGEX: the first number captured by the sed regex
field() { sed -n "s/$2/\1/p" "$1" | head -n1; }

if [ ! -x "$vmm" ] || [ ! -x "$top" ]; then
    bad "build: $vmm and $top exist (run make)"
    finish
fi
if strings "$vmm" | grep -q "built without the BPF tracer"; then
    skipped "this build has no BPF tracer (clang, bpftool, libbpf or /sys/kernel/btf/vmlinux missing at build time)"
    skip=$((skip + 3))
    finish
fi

# On this machine's KVM.
kvm_dev=${MINIVMM_KVM_DEVICE:-/dev/kvm}
if [ -r "$kvm_dev" ] && [ -w "$kvm_dev" ] && [ "$(id -u)" = 0 ]; then
    "$vmm" run --backend kvm --guest lab1/hello --trace "$tmp/n.trace" >/dev/null 2>"$tmp/n.err"
    rc=$?
    user=$(field "$tmp/n.err" '.* after \([0-9]*\) exits.*')
    kexit=$(field "$tmp/n.err" '.*kernel tracer: \([0-9]*\) kvm_exit.*')
    kuser=$(field "$tmp/n.err" '.*kvm_exit, \([0-9]*\) kvm_userspace_exit.*')
    [ "$rc" = 0 ] && [ -n "$kexit" ] && ! grep -q "not traced" "$tmp/n.err"
    check "the BPF program loads and attaches on this kernel ($(uname -r))" $? "$(cat "$tmp/n.err")"
    [ -n "$kuser" ] && [ "$kuser" = "$user" ]
    check "it saw every exit to userspace: kvm_userspace_exit $kuser = VMM exits $user" $? "$(cat "$tmp/n.err")"
    if [ "${kexit:-0}" -gt 0 ]; then
        [ "$kexit" -ge "$user" ]
        check "kvm_exit $kexit >= VMM exits $user" $? "$(cat "$tmp/n.err")"
    else
        skipped "kvm_exit >= VMM exits: this kernel's KVM fires no kvm:kvm_exit (checked inside QEMU below)"
    fi
    if command -v setpriv >/dev/null; then
        setpriv --bounding-set=-bpf,-perfmon,-sys_admin --inh-caps=-all \
            "$vmm" run --backend kvm --guest lab1/hello --trace "$tmp/p.trace" >/dev/null 2>"$tmp/p.err"
        rc=$?
        "$top" replay "$tmp/p.trace" --summary >"$tmp/p.sum" 2>&1
        [ "$rc" = 0 ] && grep -q "kernel-side exits are not traced: .*root" "$tmp/p.err" &&
            grep -q ": $user exits to userspace" "$tmp/p.sum"
        check "without CAP_BPF it says so and traces the $user userspace exits" $? "$(cat "$tmp/p.err" "$tmp/p.sum")"
    else
        skipped "the no-privilege path: setpriv is not installed"
    fi
else
    skipped "native BPF: needs root and /dev/kvm (uid $(id -u))"
    skip=$((skip + 3))
fi

# Inside QEMU: a Debian 6.1 kernel with kvm_amd, where kvm:kvm_exit fires.
if [ "${MINIVMM_NO_QEMU:-0}" = 1 ]; then
    skipped "QEMU: MINIVMM_NO_QEMU=1"
elif ! command -v qemu-system-x86_64 >/dev/null; then
    skipped "QEMU: qemu-system-x86_64 is not installed"
else
    mkdir -p "$tmp/payload"
    cp -r "$build/bin" "$build/guests" "$tmp/payload/"
    cat >"$tmp/payload/check.sh" <<'EOF'
for g in lab1/hello lab1/io; do
    ./bin/minivmm run --backend kvm --guest $g --trace /tmp/t.trace >/dev/null 2>/tmp/err
    echo "RUN $g rc=$?"
    cat /tmp/err
    ./bin/mvm-top replay /tmp/t.trace --summary | head -n 2
done
EOF
    ./tests/kvm-in-qemu/run.sh --timeout 240 "$tmp/payload" -- sh ./check.sh >"$tmp/q.out" 2>&1
    qrc=$?
    if [ "$qrc" = 2 ] || [ "$qrc" = 4 ]; then
        skipped "QEMU: the runner could not start KVM there (status $qrc): $(tail -n 1 "$tmp/q.out")"
    else
        for g in lab1/hello lab1/io; do
            sed -n "\|^RUN $g|,/^RUN /p" "$tmp/q.out" >"$tmp/g.out"
            user=$(field "$tmp/g.out" '.* after \([0-9]*\) exits.*')
            kexit=$(field "$tmp/g.out" '^kernel tracer: \([0-9]*\) kvm_exit.*')
            kuser=$(field "$tmp/g.out" '^kernel tracer: [0-9]* kvm_exit, \([0-9]*\) kvm_userspace_exit.*')
            [ -n "$user" ] && [ -n "$kexit" ] && [ "$kexit" -ge "$user" ] && [ "$kuser" = "$user" ] &&
                grep -q "rc=0" "$tmp/g.out"
            check "inside QEMU, $g: kvm_exit ${kexit:-?} >= VMM exits ${user:-?} (kvm_userspace_exit ${kuser:-?})" $? \
                "$(cat "$tmp/q.out")"
        done
    fi
fi
finish
