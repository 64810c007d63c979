/* What a benchmark run needs to know about its machine: guest images, the TSC rate, the clock, and whether KVM is real,
 * nested or emulated. */
#ifndef BENCH_ENV_H
#define BENCH_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Reads the environment once: guest images from $MINIVMM_GUEST_DIR, else
 * <dir of argv0>/../guests; calibrates the TSC against CLOCK_MONOTONIC;
 * detects the hypervisor this process runs under. Returns 0 or -errno with
 * a message (mvm_error()).
 */
int bench_env_init(const char *argv0);
/* Path of bench guest `name` (e.g. "bench/exits16") into buf. */
void bench_guest_path(const char *name, char *buf, size_t len);
/* Nanoseconds per TSC cycle: guests and host read the same TSC rate on both backends. */
double bench_ns_per_cycle(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
/*
 * How timings of real KVM here should be read: "native", "nested (under
 * HYPERVISOR)", "kvm-pvm, ..." (KVM-PVM: no hardware virtualization), or
 * "emulated (QEMU TCG)" (also when $MINIVMM_BENCH_TIMING says "emulated",
 * as the QEMU runner does).
 */
const char *bench_kvm_timing(void);
/* True when `be` is the kvm backend and /dev/kvm is KVM-PVM (software virtualization without SVM/VMX). */
bool bench_kvm_is_pvm(const struct mvm_backend *be);
/* The label for results of backend `be`: "kvm native", "kvm nested ...", "kvm EMULATED ...", "soft CPU". */
const char *bench_backend_label(const struct mvm_backend *be);

/*
 * Picks backend `name` and checks that it runs a guest, in a child process
 * so that a crashing backend cannot take the benchmarks down. Returns 0 and
 * sets *out, or -errno with the reason in `why`.
 */
int bench_backend_probe(const char *name, const struct mvm_backend **out, char *why, size_t len);

#ifdef __cplusplus
}
#endif

#endif
