/* Benchmarks in C: the case table each bench_*.c exports and the state API that bench/shim.cc implements on Google
 * Benchmark. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One run of one benchmark: Google Benchmark's State, seen from C. */
struct bench_state;

/*
 * A benchmark body. It runs bench_iterations() iterations inside
 * bench_keep_running()/bench_keep_running_batch(), or calls bench_fail() or
 * bench_skip(); `arg` is the case's argument (0 when it has none).
 */
typedef void (*bench_fn)(struct bench_state *st, const struct mvm_backend *be, int64_t arg);

/* Flags of a case. */
#define BENCH_MANUAL_TIME 1u /* the body reports each iteration's time with bench_set_iteration_time() */
#define BENCH_FIXED_ITERS 2u /* `arg` iterations in one run (at most $MINIVMM_BENCH_FIXED_MAX where it is set) */

/*
 * One line of a case table, like kvm-unit-tests' vmexit.c. Registered once
 * per working backend as NAME/BACKEND, or NAME/ARG UNIT/BACKEND for each
 * value in `args` (a list ending in 0). `valid` (may be NULL) returns NULL
 * when the case can run on `be`, else a reason, and the case is reported as
 * skipped with it. A table ends with an entry whose name is NULL.
 */
struct bench_case {
    const char *name;
    bench_fn fn;
    const char *(*valid)(const struct mvm_backend *be);
    int64_t arg;
    const int64_t *args;
    const char *arg_unit;
    unsigned flags;
};

/* The tables of bench_exits.c, bench_lifecycle.c and bench_labs.c; bench_tables lists them, NULL-terminated. */
extern const struct bench_case bench_exit_cases[];
extern const struct bench_case bench_lifecycle_cases[];
extern const struct bench_case bench_lab_cases[];
extern const struct bench_case bench_load_cases[]; /* bench_load.c */
extern const struct bench_case bench_lab4_cases[]; /* bench_lab4.c: bytes out through the UART, a hypercall, VMCALL */
extern const struct bench_case bench_lab5_cases[]; /* bench_lab5.c: frames through virtio-net by batch size */
extern const struct bench_case bench_lab6_cases[]; /* bench_lab6.c: a time read: pvclock page, RDTSC, MMIO, hypercall */
extern const struct bench_case *const bench_tables[];

/* The iteration count Google Benchmark asks of this run. */
uint64_t bench_iterations(struct bench_state *st);
/* True while one more iteration should run (the timer runs between the first call and the last). */
bool bench_keep_running(struct bench_state *st);
/* Same for n iterations at once: a body that runs all bench_iterations() in one go passes that. */
bool bench_keep_running_batch(struct bench_state *st, uint64_t n);
void bench_pause_timing(struct bench_state *st);
void bench_resume_timing(struct bench_state *st);
/* BENCH_MANUAL_TIME cases: the time of the iteration just run, in seconds. */
void bench_set_iteration_time(struct bench_state *st, double seconds);
/* A number reported with the result (JSON field and table column), e.g. "exits_per_iter". */
void bench_set_counter(struct bench_state *st, const char *name, double value);
/* A short text reported with the result: how it was timed, on what. */
void bench_set_label(struct bench_state *st, const char *label);
/*
 * One per-iteration timing in nanoseconds; the shim reports min_ns,
 * median_ns, p99_ns and samples over the run's samples.
 */
void bench_sample_ns(struct bench_state *st, double ns);
/* Ends the run as an error (a wrong exit count, a failed VM set-up): the JSON carries the message. */
void bench_fail(struct bench_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the run as skipped, with the reason ("skipped: ..." in the JSON). */
void bench_skip(struct bench_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
