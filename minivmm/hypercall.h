/* The per-VM hypercall table and its doorbell port: labs register hypercalls by number; one dispatcher decodes them. */
#ifndef MINIVMM_HYPERCALL_H
#define MINIVMM_HYPERCALL_H

#include "mvm.h"

#define MVM_MAX_HYPERCALLS 32

/*
 * One hypercall's service. `args` are RBX, RCX, RSI, RDI as the guest left
 * them (untrusted: every pointer and length is checked here); the answer for
 * the guest goes to *ret (>= 0, or -MVM_HC_E*, abi.h). Returns 0, a positive
 * MVM_STOP_* to stop the run, or -errno with a message when the VMM itself
 * failed. A guest's mistake is an answer in *ret, never a failure.
 */
typedef int (*mvm_hypercall_fn)(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);

/* A table entry. */
struct mvm_hypercall {
    uint64_t nr;      /* the number in RAX (abi.h: MVM_HC_*) */
    const char *name; /* "console_write", for messages */
    unsigned nargs;   /* how many of RBX, RCX, RSI, RDI it takes; the others must be 0 */
    mvm_hypercall_fn fn;
    void *opaque;
};

/*
 * The doorbell's decoder: called for each OUT to MVM_PORT_HYPERCALL, with the
 * OUT's width in bytes and value. It reads the number and arguments from the
 * vCPU's registers, finds the entry (vm_hypercall_find), checks, calls it and
 * puts the answer in RAX. Same return contract as a device accessor.
 */
typedef int (*mvm_hypercall_dispatch_fn)(struct mvm_vcpu *vcpu, uint32_t out_size, uint32_t out_value);

/*
 * Registers hypercall `nr` in the VM's table (a lab's vm_init does this; the
 * doorbell device at MVM_PORT_HYPERCALL appears with the first one). Returns
 * 0; -EINVAL for nr 0, nargs > MVM_HC_ARGS or no fn; -EEXIST for a number
 * taken (the message names its owner); -ENOSPC past MVM_MAX_HYPERCALLS; all
 * with a message.
 */
int vm_hypercall_register(struct mvm_vm *vm, uint64_t nr, const char *name, unsigned nargs, mvm_hypercall_fn fn,
                          void *opaque);

/* The entry for `nr`, or NULL (no such hypercall, or no table yet). */
const struct mvm_hypercall *vm_hypercall_find(struct mvm_vm *vm, uint64_t nr);

/*
 * Sets the doorbell's decoder (lab 4's lab4_hypercall_dispatch), adding the
 * doorbell device if need be. Until one is set, an OUT to the doorbell stops
 * the run with a message. 0 or -errno with a message.
 */
int vm_hypercall_dispatch_set(struct mvm_vm *vm, mvm_hypercall_dispatch_fn dispatch);

/*
 * For services that answer into guest memory: copies len bytes to guest-virtual gva as the vCPU sees it now
 * (vm_read_gva's twin: physical with paging off, the VMM's walk in long mode). All or nothing: every page is
 * translated and found to be RAM before the first byte is written, so a buffer that runs off RAM or into MMIO
 * gets nothing. 0, -EINVAL (paging outside long mode, a non-canonical gva) or -EFAULT, with a message. The
 * walk does not look at the pages' write permission: the VMM writes where the guest said, as a device's DMA would.
 */
int vm_write_gva(struct mvm_vcpu *vcpu, uint64_t gva, const void *src, size_t len);

#endif
