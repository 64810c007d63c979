/* The case tables the shim registers, in the order they run. */
#include <stddef.h>

#include "bench.h"

const struct bench_case *const bench_tables[] = {
    bench_exit_cases, bench_lifecycle_cases, bench_lab_cases,  bench_load_cases,
    bench_lab4_cases, bench_lab5_cases,      bench_lab6_cases, NULL,
};
