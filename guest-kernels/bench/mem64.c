/* Bench guest, 64-bit: touches a buffer once, or loads from it sequentially or at random, timing batches with RDTSC. */
#include <stdint.h>

#include "abi.h"
#include "bench/bench_abi.h"

#define LINE 64
/* Knuth's MMIX linear congruential generator. */
#define LCG_MUL 6364136223846793005ull
#define LCG_ADD 1442695040888963407ull

static struct mvm_ucall done_call = {.cmd = MVM_UCALL_DONE, .msg = "done"};

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static void touch(uint64_t base, uint64_t size, uint8_t v)
{
    for (uint64_t p = base; p < base + size; p += 4096)
        *(volatile uint8_t *)p = v;
}

/*
 * Each load's address depends on the value loaded before it (always 0, but
 * the CPU cannot know), so loads do not overlap: a TLB miss costs its whole
 * page walk, which is what 4 KiB vs 2 MiB pages change.
 */
static void loads(int mode, uint64_t base, uint64_t size, uint64_t n, struct bench_result *res)
{
    volatile uint32_t *ring = (volatile uint32_t *)BENCH_SAMPLES_GPA;
    uint64_t mask = (size - 1) & ~(uint64_t)(LINE - 1), off = 0, x = 1, sum = 0, batches = 0;

    while (n) {
        uint64_t batch = n < BENCH_MEM_BATCH ? n : BENCH_MEM_BATCH;
        uint64_t t0 = rdtsc();

        for (uint64_t i = 0; i < batch; i++) {
            uint64_t v = *(volatile uint64_t *)(base + off);

            sum += v;
            if (mode == BENCH_MEM_RAND) {
                x = x * LCG_MUL + LCG_ADD + v;
                off = (x >> 16) & mask;
            } else {
                off = (off + LINE + v) & mask;
            }
        }
        uint64_t t1 = rdtsc();
        if (batch == BENCH_MEM_BATCH)
            ring[batches++ % BENCH_SAMPLES_MAX] = (uint32_t)(t1 - t0);
        n -= batch;
    }
    res->batches = batches;
    res->checksum = sum;
}

__attribute__((section(".text.start"), noreturn, used)) void _start(uint64_t mode, uint64_t base, uint64_t size,
                                                                    uint64_t n)
{
    struct bench_result *res = (struct bench_result *)BENCH_RESULT_GPA;

    if (mode == BENCH_MEM_TOUCH) {
        touch(base, size, 1);
    } else {
        touch(base, size, 0);
        outl(BENCH_PORT_SYNC, 0);
        loads((int)mode, base, size, n, res);
    }
    outl(MVM_PORT_UCALL, (uint32_t)(uintptr_t)&done_call);
    for (;;)
        __asm__ volatile("hlt");
}
