/* The soft backend's extras beyond the KVM API: its last error message and its in-kernel event counters. */
#ifndef MINIVMM_SOFT_BACKEND_H
#define MINIVMM_SOFT_BACKEND_H

#include <stdint.h>

/*
 * Work the soft backend did itself, with no userspace exit, as real KVM does in
 * the kernel. A trace shows these as "in-kernel" events.
 */
struct mvm_soft_stats {
    uint64_t cpuid;      /* CPUID instructions answered from the vCPU's CPUID table */
    uint64_t hypercall;  /* VMCALL/VMMCALL answered (RAX = -KVM_ENOSYS for unknown numbers) */
    uint64_t rdtsc;      /* RDTSC/RDTSCP executed (guest TSC = host TSC + offset) */
    uint64_t msr;        /* RDMSR/WRMSR executed by the guest */
    uint64_t exceptions; /* exceptions and interrupts delivered through the guest IDT/IVT */
};

/*
 * The calling thread's last message from the soft backend: the unsupported
 * ioctl, or the instruction bytes and RIP of an emulation failure. Never NULL;
 * "" when nothing was recorded.
 */
const char *mvm_soft_last_error(void);

/* Copy vcpu_fd's counters into *out. 0, or -EBADF when vcpu_fd is not a soft vCPU fd. */
int mvm_soft_stats_get(int vcpu_fd, struct mvm_soft_stats *out);

#endif
