#!/usr/bin/env bash
# `make demo-lab3`: lab 3's guests in long mode: the higher-half alias, a guest #PF handler, and an MMIO exit from a RAM hole.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_init "$@"


section "lab3/hello64: long mode on the VMM's page tables (identity + higher half)"
demo_run long lab3/hello64
grep -E '^cr0=' "$tmp/regs.txt" | sed 's/^/   /'
echo "   The line 'printed from a higher-half address' came through the test port by a"
echo "   guest-virtual address, 0xffffffff8...: the VMM walked the guest's page tables to find it."

section "lab3/pagefault: the guest maps pages on demand in its own #PF handler"
demo_run long lab3/pagefault
echo "   Three page faults, zero exits for them: the guest's IDT handles them inside the CPU."

section "lab3/mmio: gpa 0x400000 is mapped by the guest's page tables, but no memory slot is there"
demo_run long lab3/mmio
echo "   the exit it caused:"
grep '^MMIO' "$tmp/exits.txt" | sed 's/^/     /'
cat <<'TXT'

   Two translations: the guest's page tables (gva -> gpa) said yes, the VMM's
   memory slots (gpa -> host) said no, so KVM handed the access to the VMM as
   KVM_EXIT_MMIO. The lab 3 test mmio_exit_adds_slot answers it by adding a
   slot there (vm_mem_add) and resuming; after that the guest's next 2048
   accesses cause no exits at all.
   labs/lab3-paging/README.md is the handout; make grade LAB=3 grades it.
TXT

section "the exit-trace visualizer: mvm-top on lab3/pagefault"
./scripts/demo-viz.sh "$build" lab3/pagefault --mode long
