#!/usr/bin/env bash
# `make demo`: runs lab 1's guests on the best backend there is and shows what the VMM saw.
# Real KVM natively when /dev/kvm opens, else the soft backend (no QEMU needed);
# MINIVMM_DEMO_QEMU=1 runs it on real KVM inside QEMU instead.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_init "$@"

show_guest() { # show_guest GUEST BACKEND
    section "guest $1 on the $2 backend"
    echo "-- what the guest printed:"
    "$bin" run --backend "$2" --guest "$1" --exits "$tmp/exits.txt" 2>"$tmp/summary.txt" | sed 's/^/   | /'
    echo "-- how it ended:"
    sed 's/^minivmm: /   /' "$tmp/summary.txt"
    echo "-- exits by kind (from the exit dump, one line per exit):"
    awk '{ k = $1; if ($1 == "IO" || $1 == "MMIO") k = $1 " " $2 " " $3 " size=" substr($4, 6); n[k]++ }
         END { for (k in n) printf "   %6d  %s\n", n[k], k }' "$tmp/exits.txt" | sort -rn
    echo "-- the first exits:"
    head -n 4 "$tmp/exits.txt" | sed 's/^/   /'
}

if [ "${MINIVMM_DEMO_QEMU:-0}" = 1 ]; then
    section "real KVM inside QEMU (software-emulated AMD SVM CPU)"
    mkdir -p "$tmp/payload"
    cp -r "$build/bin" "$build/guests" "$tmp/payload/"
    exec ./tests/kvm-in-qemu/run.sh "$tmp/payload" -- ./bin/minivmm run --backend kvm --guest lab1/hello --exits -
fi

backend=$("$bin" run --backend auto --guest lab1/halt 2>&1 | sed -n 's/.* on \([a-z]*\): .*/\1/p')
if [ "$backend" = kvm ]; then
    echo "minivmm demo: /dev/kvm is here, so this runs on the kernel's real KVM."
else
    echo "minivmm demo: no /dev/kvm here, so this runs on the soft backend (Unicorn), with KVM's exit semantics."
    echo "              (MINIVMM_DEMO_QEMU=1 make demo runs it on real KVM inside QEMU instead.)"
fi

show_guest lab1/hello "$backend"
cat <<'TXT'

   Every OUT to the serial port stopped the vCPU and came back to the VMM as a
   KVM_EXIT_IO: 22 characters, 22 exits, plus one to report "done".
TXT
show_guest lab1/io "$backend"
cat <<'TXT'

   rep outsb still exits once per byte, but rep insb came back as ONE exit with
   count=4: KVM reads string input ahead into the run page.
TXT
section "the exit-trace visualizer: mvm-top"
./scripts/demo-viz.sh "$build" lab1/io --backend "$backend"
section "next"
echo "   minivmm run --help            run any guest, dump its exits"
echo "   labs/lab1-realmode/README.md  the lab 1 handout"
echo "   make test / make grade LAB=1  the tests, and the grader"
