/* Lab 1 (student file): a real-mode vCPU, and the run loop's port I/O and HLT exits. */
#include <errno.h>
#include <string.h>

#include "lab_parts.h"

/*
 * Set up a fresh vCPU to start executing 16-bit real-mode code at `entry_gpa`.
 *
 * A new KVM vCPU starts like a PC after reset: CS.selector = 0xf000 with
 * CS.base = 0xffff0000 and RIP = 0xfff0, i.e. at the top of the 4 GiB space
 * where there is no RAM in our VM. You must point it at the guest instead.
 *
 * TODO(lab1):
 *  1. Read the special registers with vcpu_sregs_get().
 *  2. In real mode an address is selector * 16 + offset, and KVM uses the
 *     hidden `base` of each struct kvm_segment, not the selector. Choose
 *     selector = (entry_gpa >> 4) & 0xf000, so the 64 KiB window starts at or
 *     below the entry; set base = selector << 4 and limit = 0xffff for CS, DS,
 *     ES, FS, GS and SS. Write them back with vcpu_sregs_set().
 *  3. Set the general registers (struct kvm_regs, vcpu_regs_set()):
 *     RIP = entry_gpa - CS.base, RSP = 0xfffe (top of the segment),
 *     RFLAGS = 0x2 (bit 1 is reserved and must be 1).
 *  Reject entry_gpa >= 1 MiB with mvm_fail(EINVAL, ...).
 */
int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_vcpu_setup_real() is not written yet: set CS/DS/ES/FS/GS/SS "
                    "(selector, base = selector << 4, limit 0xffff) and RIP for entry 0x%llx",
                    (unsigned long long)entry_gpa);
}

/*
 * Handle one KVM_EXIT_IO. Every IN and OUT the guest executes stops the vCPU
 * and lands here; that is the cost lab 1 makes visible.
 *
 * TODO(lab1):
 *  - The data is not in a register: KVM puts it inside the kvm_run mapping,
 *    at (uint8_t *)run + run->io.data_offset.
 *  - run->io.direction is KVM_EXIT_IO_OUT (guest wrote: data is filled) or
 *    KVM_EXIT_IO_IN (guest reads: you fill data before the next KVM_RUN).
 *  - A string instruction (rep outsb / rep insw) arrives as ONE exit with
 *    run->io.count elements of run->io.size bytes, back to back.
 *  - For each element call vm_pio_dispatch(vcpu, run->io.port, is_write,
 *    element, run->io.size). If it returns non-zero, return that value.
 *  Return 0 to keep the guest running.
 */
int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_exit_io() is not written yet: KVM_EXIT_IO %s port 0x%x size %u count %u "
                    "was not handed to vm_pio_dispatch()",
                    run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port, run->io.size, run->io.count);
}

/*
 * Handle one KVM_EXIT_HLT: the guest executed HLT.
 *
 * TODO(lab1): on a PC, HLT waits for the next interrupt. This VM has no
 * interrupt controller, so nothing will ever wake the vCPU: return
 * MVM_STOP_HLT to end the run loop.
 */
int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    (void)run;
    return mvm_fail(ENOSYS, "lab1: lab1_exit_hlt() is not written yet: the guest executed HLT (KVM_EXIT_HLT); "
                            "return MVM_STOP_HLT");
}
