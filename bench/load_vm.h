/* Load checks: a tiny real-mode guest whose code and answer are both VM-specific, run many times and on many threads.
 */
#ifndef BENCH_LOAD_VM_H
#define BENCH_LOAD_VM_H

#include <stdint.h>

#include "mvm.h"

/* The port the load guest writes its answer to (16 bits, one OUT), then it halts. */
#define LOAD_PORT 0x500

/* What the load guest for `seed` must answer: its loop count times its seed, modulo 2^16. */
uint16_t load_expected(uint32_t seed);

/*
 * Creates a VM with 64 KiB of RAM and one real-mode vCPU at 0x1000 running the
 * load guest for `seed`: it stores the seed (its %cx) in RAM, then adds it up
 * (seed % 61) + 1 times, a count baked into its code bytes, OUTs the sum to
 * LOAD_PORT and halts. A stale translation, RAM or register from another VM
 * gives a different answer. 0 and *out, or -errno with a message.
 */
int load_vm_create(const struct mvm_backend *be, uint32_t seed, struct mvm_vm **out, struct mvm_vcpu **vcpu_out);

/*
 * Creates, runs and destroys one load VM for `seed`. Returns 1 when the guest
 * answered load_expected(seed) once and halted, 0 when it ended any other way
 * (the reason in `why`, when not NULL), or -errno when the VMM failed.
 */
int load_vm_cycle(const struct mvm_backend *be, uint32_t seed, char *why, size_t why_len);

/* What load_vms_at_once saw. */
struct load_at_once {
    int created;      /* VMs created; all of them existed at once before any ran */
    int right;        /* of those, how many answered load_expected(seed) once and halted */
    uint64_t rss_kib; /* resident set size with all of them created (load_rss_kib) */
    char why[200];    /* the first problem, or empty */
};

/*
 * Runs `n` load VMs at once, one a thread, seeds first_seed, first_seed + 37, ...:
 * every thread creates its VM and waits until all exist, runs it, waits until
 * all have run, and destroys it. Returns 0 with *out filled (also when some VMs
 * failed: see created and right), or -errno when it could not start.
 */
int load_vms_at_once(const struct mvm_backend *be, int n, uint32_t first_seed, struct load_at_once *out);

/* The process's resident set size in KiB (from /proc/self/statm), or 0 when unknown. */
uint64_t load_rss_kib(void);

#endif
