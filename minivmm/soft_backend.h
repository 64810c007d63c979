/* The soft backend's extras beyond the KVM API (its backend.h optional members): last error, in-kernel counters. */
#ifndef MINIVMM_SOFT_BACKEND_H
#define MINIVMM_SOFT_BACKEND_H

#include "backend.h"

/*
 * The calling thread's last message from the soft backend: the unsupported
 * ioctl, or the instruction bytes and RIP of an emulation failure. Never NULL;
 * "" when nothing was recorded.
 */
const char *mvm_soft_last_error(void);
/* The guest's virtual time in deterministic mode (its instruction count, in ns); 0 otherwise. */
uint64_t mvm_soft_virtual_ns(void);

/* Copy vcpu_fd's counters into *out. 0, or -EBADF when vcpu_fd is not a soft vCPU fd. */
int mvm_soft_stats_get(int vcpu_fd, struct mvm_backend_stats *out);

#endif
