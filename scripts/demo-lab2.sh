#!/usr/bin/env bash
# `make demo-lab2`: lab 2's guests in protected mode, entered two ways, with the descriptor cache and a #GP shown.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_init "$@"


section "lab2/hello32: the VMM wrote the segment registers (KVM_SET_SREGS) and a boot GDT"
demo_run protected lab2/hello32
echo "   segments after the run:"
grep -E '^(cr0|cs)=' "$tmp/regs.txt" | sed 's/^/     /'

section "lab2/switch: started in real mode, the guest switched itself (lgdt, CR0.PE, ljmp)"
demo_run real lab2/switch
echo "   segments after the run (the CPU filled CS's hidden part from the guest's GDT):"
grep -E '^(cr0|cs)=' "$tmp/regs.txt" | sed 's/^/     /'

section "lab2/desccache: a segment keeps its base until it is reloaded"
demo_run protected lab2/desccache

section "lab2/limitfault: one byte past a segment limit is a #GP, handled in the guest"
demo_run protected lab2/limitfault
cat <<'TXT'

   Not one of these exits is for the mode switch, the descriptor loads or the
   #GP: the CPU does all of that itself. Only OUTs (serial, and the test port)
   reach the VMM.
   labs/lab2-protected/README.md is the handout; make grade LAB=2 grades it.
TXT

section "the exit-trace visualizer: mvm-top on lab2/limitfault"
./scripts/demo-viz.sh "$build" lab2/limitfault --mode protected
