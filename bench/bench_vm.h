/* VMs for the bench guests: exits16 in real mode, exits64 and mem64 in long mode on page tables the host builds, and
 * the sample ring. */
#ifndef BENCH_VM_H
#define BENCH_VM_H

#include <stdint.h>

#include "bench.h"
#include "mvm.h"

struct bench_vm {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    uint64_t pio_exits;  /* OUTs and INs that reached the BENCH_PORT handler */
    uint64_t mmio_exits; /* loads and stores that reached the BENCH_MMIO_GPA handler */
    uint64_t syncs;      /* OUTs to BENCH_PORT_SYNC */
};

/*
 * Creates a VM with 640 KiB of RAM, exits16 loaded at 0x1000, the test port,
 * handlers on BENCH_PORT and BENCH_MMIO_GPA, and one vCPU in real mode with
 * %bx = kind and %ecx = iterations. 0 or -errno with a message.
 */
int bench_vm16_create(const struct mvm_backend *be, int kind, uint32_t iterations, struct bench_vm *bv);

/*
 * Creates a VM for mem64: BENCH_SYS_SIZE of RAM at 0 (image, stack, page
 * tables) and `data_size` bytes at BENCH_DATA_GPA, both identity-mapped, the
 * data with `page_size` pages (4 KiB or 2 MiB); one vCPU in long mode at the
 * image's first byte with mem64's arguments (mode, buffer, size, n) in
 * %rdi, %rsi, %rdx, %rcx. 0 or -errno with a message.
 */
int bench_vm64_create(const struct mvm_backend *be, uint64_t data_size, uint64_t page_size, int mode, uint64_t n,
                      struct bench_vm *bv);

/*
 * Creates a long-mode VM for exits64 (BENCH_SYS_SIZE of RAM, an unbacked
 * page mapped at BENCH_MMIO64_GPA with a handler, the BENCH_PORT handler)
 * with %rdi = kind and %rcx = iterations. 0 or -errno with a message.
 */
int bench_vm64_exits_create(const struct mvm_backend *be, int kind, uint32_t iterations, struct bench_vm *bv);

void bench_vm_destroy(struct bench_vm *bv);

/*
 * A lab's bench guest in long mode: 2 MiB of RAM at 0, the standard devices (the labs' plug-ins), `setup` (if not
 * NULL) on the VM, GUEST (e.g. "lab6/readcost") loaded at MVM_BOOT_LOAD_GPA, `len` bytes of `params` written at
 * params_gpa, and one vCPU. 0 or -errno with a message; on failure nothing is left.
 */
int bench_lab_vm_create(const struct mvm_backend *be, const char *guest, uint64_t params_gpa, const void *params,
                        size_t len, int (*setup)(struct mvm_vm *vm, void *ctx), void *ctx, struct mvm_vm **vm_out,
                        struct mvm_vcpu **vcpu_out);

/*
 * Reads the guest's sample ring after a run of `units` timed units (the ring
 * holds the last BENCH_SAMPLES_MAX) and hands each, divided by `per_sample`
 * (how many units one sample covers) and converted to ns, to
 * bench_sample_ns(). 0 or -errno with a message.
 */
int bench_samples_collect(struct bench_state *st, struct bench_vm *bv, uint64_t units, uint64_t per_sample);

/* Reads the guest's struct bench_result (bench_abi.h). 0 or -EFAULT. */
int bench_result_read(struct bench_vm *bv, void *res, size_t len);

#endif
