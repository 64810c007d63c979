/* Bench guests <-> benchmark host (bench/): ports, exit kinds, memory modes and the guest memory layout they share. */
#ifndef GUEST_BENCH_ABI_H
#define GUEST_BENCH_ABI_H

/*
 * Both bench guests time themselves with RDTSC and store the deltas, as
 * 32-bit cycle counts, in a ring of BENCH_SAMPLES_MAX entries at
 * BENCH_SAMPLES_GPA; when a run does more iterations than that, the ring
 * holds the last BENCH_SAMPLES_MAX. The host reads it after the run.
 */
#define BENCH_SAMPLES_GPA 0x10000
#define BENCH_SAMPLES_MAX 16384 /* 64 KiB of 4-byte samples: one real-mode segment, so %di wraps it */
#define BENCH_RESULT_GPA 0x20000 /* struct bench_result, written by the guest */

/* exits16: OUT and IN go to this port (the host registers a handler); the loads and stores of MMIO to the VGA hole. */
#define BENCH_PORT 0x530
#define BENCH_RAM16_SIZE 0xa0000 /* 640 KiB of RAM, so [0xa0000, 1 MiB) is unbacked: MMIO */
#define BENCH_MMIO_GPA 0xa0000
/* The hypercall number the guest passes: unknown to KVM, so it answers -KVM_ENOSYS in the kernel. */
#define BENCH_HC_NR 0x100

/*
 * exits16: %bx says which instruction each iteration executes, %ecx how many
 * iterations. With BENCH_KIND_TIMED added, each iteration is bracketed by
 * RDTSC and the delta goes to the sample ring; without it the loop is bare,
 * for the host's clock (RDTSC can itself trap, under nested virtualization).
 */
#define BENCH_KIND_NONE 0       /* nothing: the floor (the loop and its own RDTSCs) */
#define BENCH_KIND_OUT 1        /* outb to BENCH_PORT: an exit to userspace */
#define BENCH_KIND_IN 2         /* inb from BENCH_PORT: an exit to userspace, the VMM supplies the byte */
#define BENCH_KIND_MMIO_READ 3  /* a 1-byte load from BENCH_MMIO_GPA: an exit to userspace */
#define BENCH_KIND_MMIO_WRITE 4 /* a 1-byte store to BENCH_MMIO_GPA: an exit to userspace */
#define BENCH_KIND_HLT 5        /* hlt: an exit to userspace (no in-kernel interrupt controller) */
#define BENCH_KIND_CPUID 6      /* cpuid leaf 0: answered inside KVM, no userspace exit */
#define BENCH_KIND_HYPERCALL 7  /* vmmcall (AMD) or vmcall (Intel), by CPUID vendor, in 16-bit protected mode: answered inside KVM */
#define BENCH_KIND_COUNT 8
#define BENCH_KIND_TIMED 8

/* The struct bench_result fields exits16 writes, as byte offsets (16-bit asm has no structs). */
#define BENCH_RESULT_HC_INSN 0 /* 1: the guest used vmmcall, 2: vmcall */
#define BENCH_RESULT_HC_RET 4  /* EAX after the last hypercall */
#define BENCH_HC_VMMCALL 1
#define BENCH_HC_VMCALL 2

/*
 * mem64: a 64-bit guest entered in long mode with the paging the host set
 * up; arguments in the SysV registers: %rdi mode, %rsi buffer gva (identity
 * mapped), %rdx buffer size (a power of two), %rcx accesses.
 */
#define BENCH_MEM_TOUCH 0 /* write one byte per 4 KiB page of the buffer, once */
#define BENCH_MEM_SEQ 1   /* warm the buffer, sync, then dependent 8-byte loads 64 bytes apart */
#define BENCH_MEM_RAND 2  /* warm the buffer, sync, then dependent 8-byte loads at random 64-byte lines */
#define BENCH_MEM_BATCH 256 /* mem64 stores one sample per this many loads */
/* mem64: an OUT here says "warm-up done": the host starts its clock and resumes the guest. */
#define BENCH_PORT_SYNC 0x531

/* mem64's layout: image at 0x1000 (below the sample ring), stack below 0x80000, page tables from 1 MiB. */
#define BENCH_LOAD_GPA 0x1000
#define BENCH_STACK_TOP 0x80000
#define BENCH_PT_POOL_GPA 0x100000
#define BENCH_PT_POOL_SIZE 0x300000
#define BENCH_SYS_SIZE 0x400000    /* the first memory slot: everything above, up to 4 MiB */
#define BENCH_DATA_GPA 0x40000000  /* the second slot, the measured buffer, at 1 GiB */
/* exits64: the same exit kinds in long mode; its MMIO goes to the mapped, unbacked page at 1 GiB. */
#define BENCH_MMIO64_GPA BENCH_DATA_GPA

#ifndef __ASSEMBLER__
#include <stdint.h>

struct bench_result {
    uint32_t hc_insn;
    uint32_t hc_ret;
    uint64_t batches;  /* mem64: samples it wrote (full batches of BENCH_MEM_BATCH loads) */
    uint64_t checksum; /* mem64: the sum of what it loaded, so no load is dead */
};
_Static_assert(__builtin_offsetof(struct bench_result, hc_insn) == BENCH_RESULT_HC_INSN, "bench_result layout");
_Static_assert(__builtin_offsetof(struct bench_result, hc_ret) == BENCH_RESULT_HC_RET, "bench_result layout");
#endif

#endif
