/* The functions students write, lab by lab. The core calls them; solutions/ and student trees define them. */
#ifndef MINIVMM_LAB_PARTS_H
#define MINIVMM_LAB_PARTS_H

#include "mvm.h"

/*
 * Lab 1. Puts a fresh vCPU in real mode at the 20-bit guest-physical address
 * `entry_gpa` (below 1 MiB): CS:IP points at it with CS.base == CS.selector << 4,
 * DS/ES/FS/GS/SS equal CS, SP at the top of that 64 KiB segment, RFLAGS = 0x2.
 * Returns 0 or -errno with a message (mvm_fail).
 */
int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa);

/*
 * Lab 1. Handles one KVM_EXIT_IO: hands each of run->io.count elements of
 * run->io.size bytes, found at run->io.data_offset inside the run page, to
 * vm_pio_dispatch(). The core has checked that they lie inside the run page.
 * Returns 0 to keep running, a positive MVM_STOP_* to stop, or -errno.
 */
int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run);

/*
 * Lab 1. Handles one KVM_EXIT_HLT. This VM has no interrupt controller, so
 * nothing can wake a halted vCPU. Returns MVM_STOP_HLT, 0 or -errno.
 */
int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run);

#endif
