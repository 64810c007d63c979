/* Bench guest for the exit-cost table, 64-bit: n iterations of the instruction that `kind` (BENCH_KIND_*) names, then
 * GUEST_DONE. */
#include <stdint.h>

#include "abi.h"
#include "bench/bench_abi.h"

static struct mvm_ucall done_call = {.cmd = MVM_UCALL_DONE, .msg = "done"};

static inline uint32_t rdtsc32(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return lo;
}

/*
 * One function per kind: bare, the body n times (for the host's clock); or
 * timed, RDTSC around each body with the delta stored in the sample ring.
 */
#define KIND_LOOP(name, ...)                                                                                           \
    static void name(uint64_t n, int timed)                                                                            \
    {                                                                                                                  \
        volatile uint32_t *ring = (volatile uint32_t *)BENCH_SAMPLES_GPA;                                              \
                                                                                                                       \
        if (!timed) {                                                                                                  \
            for (uint64_t i = 0; i < n; i++) {                                                                         \
                __VA_ARGS__;                                                                                           \
            }                                                                                                          \
            return;                                                                                                    \
        }                                                                                                              \
        for (uint64_t i = 0; i < n; i++) {                                                                             \
            uint32_t t0 = rdtsc32();                                                                                   \
            __VA_ARGS__;                                                                                               \
            ring[i % BENCH_SAMPLES_MAX] = rdtsc32() - t0;                                                              \
        }                                                                                                              \
    }

static uint64_t hc_ret;

KIND_LOOP(loop_none, __asm__ volatile("" : : : "memory"))
KIND_LOOP(loop_out, __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(BENCH_PORT)))
KIND_LOOP(loop_in, uint8_t v; __asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"(BENCH_PORT)))
KIND_LOOP(loop_mmio_read, (void)*(volatile uint8_t *)BENCH_MMIO64_GPA)
KIND_LOOP(loop_mmio_write, *(volatile uint8_t *)BENCH_MMIO64_GPA = 0)
KIND_LOOP(loop_hlt, __asm__ volatile("hlt"))
KIND_LOOP(loop_cpuid, uint32_t a = 0, b, c = 0, d; __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)))
KIND_LOOP(loop_vmmcall, uint64_t r = BENCH_HC_NR; __asm__ volatile("vmmcall" : "+a"(r) : : "memory"); hc_ret = r)
KIND_LOOP(loop_vmcall, uint64_t r = BENCH_HC_NR; __asm__ volatile("vmcall" : "+a"(r) : : "memory"); hc_ret = r)

/* VMMCALL is AMD's hypercall instruction, VMCALL Intel's: KVM would patch the other one in guest memory. */
static int cpu_is_amd(void)
{
    uint32_t a = 0, b, c = 0, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return b == 0x68747541 /* "Auth" */ || b == 0x6f677948 /* "Hygo" */;
}

static void hypercalls(uint64_t n, int timed)
{
    struct bench_result *res = (struct bench_result *)BENCH_RESULT_GPA;

    if (cpu_is_amd()) {
        res->hc_insn = BENCH_HC_VMMCALL;
        loop_vmmcall(n, timed);
    } else {
        res->hc_insn = BENCH_HC_VMCALL;
        loop_vmcall(n, timed);
    }
    res->hc_ret = (uint32_t)hc_ret;
}

static void (*const kinds[BENCH_KIND_COUNT])(uint64_t n, int timed) = {
    [BENCH_KIND_NONE] = loop_none,
    [BENCH_KIND_OUT] = loop_out,
    [BENCH_KIND_IN] = loop_in,
    [BENCH_KIND_MMIO_READ] = loop_mmio_read,
    [BENCH_KIND_MMIO_WRITE] = loop_mmio_write,
    [BENCH_KIND_HLT] = loop_hlt,
    [BENCH_KIND_CPUID] = loop_cpuid,
    [BENCH_KIND_HYPERCALL] = hypercalls,
};

/* Entered with the mem64 register convention: %rdi kind (| BENCH_KIND_TIMED), %rcx iterations. */
__attribute__((section(".text.start"), noreturn, used)) void _start(uint64_t kind, uint64_t unused_gva,
                                                                    uint64_t unused_size, uint64_t n)
{
    (void)unused_gva;
    (void)unused_size;
    if ((kind & ~(uint64_t)BENCH_KIND_TIMED) < BENCH_KIND_COUNT)
        kinds[kind & ~(uint64_t)BENCH_KIND_TIMED](n, (kind & BENCH_KIND_TIMED) != 0);
    else
        for (;;)
            __asm__ volatile("hlt"); /* a kind this guest does not know: HLT, not DONE */
    __asm__ volatile("outl %0, %1" : : "a"((uint32_t)(uintptr_t)&done_call), "Nd"(MVM_PORT_UCALL) : "memory");
    for (;;)
        __asm__ volatile("hlt");
}
