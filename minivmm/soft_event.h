/* The soft backend's exception rules: which vectors push an error code, which faults make a double fault. Pure. */
#ifndef MINIVMM_SOFT_EVENT_H
#define MINIVMM_SOFT_EVENT_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* True when the CPU pushes an error code for exception vec (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX). */
bool soft_vector_has_error(int vec);
/*
 * True when a fault `second` raised while delivering `first` becomes a
 * double fault (SDM vol. 3, table 6-5): contributory then contributory, or a
 * page fault then a contributory fault or a page fault.
 */
bool soft_event_double_fault(int first, int second);

/*
 * True for the MSRs KVM 6.1 on AMD reads and writes itself (x86.c kvm_get/set_msr_common, svm.c); RDMSR/WRMSR
 * of any other makes KVM inject #GP(0) when the VMM has not asked for KVM_CAP_X86_USER_SPACE_MSR exits.
 * The x2APIC range counts as known: whether it faults depends on the APIC's mode.
 */
bool soft_msr_kvm_knows(uint32_t idx);
/*
 * The CR4 bits KVM refuses for a vCPU with this CPUID table (kvm_is_valid_cr4: CR4_RESERVED_BITS plus the
 * features the table lacks): a guest MOV to CR4 that sets one gets #GP(0), KVM_SET_SREGS -EINVAL.
 */
uint64_t soft_cr4_reserved(const struct kvm_cpuid_entry2 *tab, int n);

#endif
