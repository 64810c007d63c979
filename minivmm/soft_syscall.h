/* The soft backend's SYSCALL: the architecture's transition into the kernel, pure logic, unit-tested. */
#ifndef MINIVMM_SOFT_SYSCALL_H
#define MINIVMM_SOFT_SYSCALL_H

#include <stdbool.h>
#include <stdint.h>

#include "soft_seg.h"

/* What SYSCALL reads: EFER, the MSRs it takes its targets from, the mode, RFLAGS and the next RIP. */
struct soft_syscall_in {
    uint64_t efer, star, lstar, cstar, sfmask;
    uint64_t rflags;
    uint64_t next_rip; /* the address after the SYSCALL instruction */
    bool pe;           /* CR0.PE */
    bool lma;          /* EFER.LMA: long mode */
    bool cs64;         /* CS.L in long mode: 64-bit code (else compatibility mode) */
};

/* What it does: a fault, or the new RIP, RFLAGS, RCX, R11 and the CS and SS caches (CPL 0). */
struct soft_syscall_out {
    int vector; /* -1: the transition below; else the fault it raises instead (X86_VEC_UD) */
    uint64_t rip, rflags, rcx, r11;
    bool set_r11; /* long mode only: legacy mode leaves R11 alone */
    struct soft_seg cs, ss;
};

/*
 * SYSCALL as the Intel SDM and AMD APM define it (and KVM's em_syscall): #UD when EFER.SCE is 0 or in real or
 * virtual-8086 mode; in long mode RCX = next RIP, R11 = RFLAGS (RF clear), RFLAGS &= ~(SFMASK | RF),
 * CS = STAR[47:32] & ~3 (flat 64-bit code, DPL 0), SS = that + 8 (flat data, DPL 0), RIP = LSTAR (CSTAR from
 * compatibility mode); in legacy mode (AMD) ECX = next EIP, IF, RF and VM clear, 32-bit flat CS and SS,
 * EIP = STAR[31:0].
 */
void soft_syscall_compute(const struct soft_syscall_in *in, struct soft_syscall_out *out);

#endif
