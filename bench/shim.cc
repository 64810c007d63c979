// The only C++ in the kit: registers each C case (bench.h) with Google Benchmark once per working backend, and runs
// them.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_env.h"

struct bench_state {
    benchmark::State &gb;
    std::vector<double> samples;
    bool failed = false;
};

extern "C" {

uint64_t bench_iterations(struct bench_state *st)
{
    return (uint64_t)st->gb.max_iterations;
}

bool bench_keep_running(struct bench_state *st)
{
    return st->gb.KeepRunning();
}

bool bench_keep_running_batch(struct bench_state *st, uint64_t n)
{
    return st->gb.KeepRunningBatch((benchmark::IterationCount)n);
}

void bench_pause_timing(struct bench_state *st)
{
    st->gb.PauseTiming();
}

void bench_resume_timing(struct bench_state *st)
{
    st->gb.ResumeTiming();
}

void bench_set_iteration_time(struct bench_state *st, double seconds)
{
    st->gb.SetIterationTime(seconds);
}

void bench_set_counter(struct bench_state *st, const char *name, double value)
{
    st->gb.counters[name] = benchmark::Counter(value);
}

void bench_set_label(struct bench_state *st, const char *label)
{
    st->gb.SetLabel(label);
}

void bench_sample_ns(struct bench_state *st, double ns)
{
    st->samples.push_back(ns);
}

static void end_with(struct bench_state *st, const char *prefix, const char *fmt, va_list ap)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "%s", prefix);

    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    if (!st->failed)
        st->gb.SkipWithError(msg);
    st->failed = true;
}

void bench_fail(struct bench_state *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    end_with(st, "", fmt, ap);
    va_end(ap);
}

void bench_skip(struct bench_state *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    end_with(st, "skipped: ", fmt, ap);
    va_end(ap);
}

} // extern "C"

namespace
{

// min, median and p99 (nearest rank) of the run's per-iteration samples.
void report_samples(bench_state &st)
{
    std::vector<double> &s = st.samples;

    if (s.empty())
        return;
    std::sort(s.begin(), s.end());
    size_t p99 = (size_t)std::ceil(0.99 * (double)s.size()) - 1;
    st.gb.counters["min_ns"] = s.front();
    st.gb.counters["median_ns"] = s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
    st.gb.counters["p99_ns"] = s[p99];
    st.gb.counters["samples"] = (double)s.size();
}

void run_case(benchmark::State &gb, const bench_case *c, const mvm_backend *be, int64_t arg)
{
    bench_state st{gb, {}, false};
    const char *why = c->valid ? c->valid(be) : nullptr;

    if (why) {
        bench_skip(&st, "%s", why);
        return;
    }
    gb.SetLabel(bench_backend_label(be));
    c->fn(&st, be, arg);
    // A body that returned without finishing its iterations is a bug; say so instead of letting the library abort.
    if (!st.failed && gb.iterations() < gb.max_iterations)
        bench_fail(&st, "%s returned before running its %lld iterations", c->name, (long long)gb.max_iterations);
    if (!st.failed)
        report_samples(st);
}

void register_case(const bench_case *c, const mvm_backend *be, int64_t arg)
{
    std::string name = c->name;

    if (c->args)
        name += "/" + std::to_string(arg) + (c->arg_unit ? c->arg_unit : "");
    name += std::string("/") + be->name;
    auto *b = benchmark::RegisterBenchmark(name.c_str(), run_case, c, be, arg);
    if (c->flags & BENCH_MANUAL_TIME)
        b->UseManualTime();
    if (c->flags & BENCH_FIXED_ITERS) {
        // bench/run.sh --smoke caps the count (MINIVMM_BENCH_FIXED_MAX): the same checks on fewer iterations.
        const char *cap = getenv("MINIVMM_BENCH_FIXED_MAX");
        long long n = arg, m = cap ? atoll(cap) : 0;

        b->Iterations((benchmark::IterationCount)(m > 0 && m < n ? m : n));
    }
    b->Unit(benchmark::kNanosecond);
}

} // namespace

int main(int argc, char **argv)
{
    std::string skipped;

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 2;
    bench_env_init(argv[0]);
    benchmark::AddCustomContext("kvm_timing", bench_kvm_timing());
    benchmark::AddCustomContext("tsc_ghz", std::to_string(1.0 / bench_ns_per_cycle()));
    for (const char *name : {"kvm", "soft"}) {
        const mvm_backend *be = nullptr;
        char why[512];

        if (bench_backend_probe(name, &be, why, sizeof(why)) < 0) {
            fprintf(stderr, "bench: backend %s skipped: %s\n", name, why);
            skipped += std::string(skipped.empty() ? "" : "; ") + name + ": " + why;
            continue;
        }
        for (const bench_case *const *t = bench_tables; *t; t++)
            for (const bench_case *c = *t; c->name; c++) {
                if (!c->args)
                    register_case(c, be, c->arg);
                for (const int64_t *a = c->args; a && *a; a++)
                    register_case(c, be, *a);
            }
    }
    benchmark::AddCustomContext("backends_skipped", skipped.empty() ? "none" : skipped);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
