/* A backend that runs nothing, for fuzz targets that drive the core's checks without a CPU. */
#ifndef TESTS_FUZZ_BACKEND_H
#define TESTS_FUZZ_BACKEND_H

#include <linux/kvm.h>

#include "backend.h"

/*
 * Speaks just enough of the KVM API for vm_create, vm_mem_add and vcpu_create (it hands out real fds,
 * dups of one /dev/null), and keeps one vCPU's registers: KVM_SET_(S)REGS store them, KVM_GET_(S)REGS
 * read them back. KVM_RUN is refused. One VM at a time.
 */
extern const struct mvm_backend fuzz_backend_null;

/* The registers the last KVM_SET_REGS / KVM_SET_SREGS stored. */
extern struct kvm_regs fuzz_backend_regs;
extern struct kvm_sregs fuzz_backend_sregs;

#endif
