/* The soft backend's local APIC (KVM's lapic.c): registers, TPR/PPR, IRR/ISR/TMR, EOI, the timer. Pure logic. */
#ifndef MINIVMM_SOFT_LAPIC_H
#define MINIVMM_SOFT_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

/* Register offsets in the APIC page (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16). */
#define APIC_REG_ID       0x20
#define APIC_REG_LVR      0x30
#define APIC_REG_TPR      0x80
#define APIC_REG_APR      0x90
#define APIC_REG_PPR      0xa0
#define APIC_REG_EOI      0xb0
#define APIC_REG_RRR      0xc0
#define APIC_REG_LDR      0xd0
#define APIC_REG_DFR      0xe0
#define APIC_REG_SPIV     0xf0
#define APIC_REG_ISR      0x100
#define APIC_REG_TMR      0x180
#define APIC_REG_IRR      0x200
#define APIC_REG_ESR      0x280
#define APIC_REG_ICR      0x300
#define APIC_REG_ICR2     0x310
#define APIC_REG_LVTT     0x320
#define APIC_REG_LVTTHMR  0x330
#define APIC_REG_LVTPC    0x340
#define APIC_REG_LVT0     0x350
#define APIC_REG_LVT1     0x360
#define APIC_REG_LVTERR   0x370
#define APIC_REG_TMICT    0x380
#define APIC_REG_TMCCT    0x390
#define APIC_REG_TDCR     0x3e0
#define APIC_REG_SELF_IPI 0x3f0
#define APIC_PAGE_SIZE    0x400 /* struct kvm_lapic_state's regs */

#define APIC_LVT_MASKED        (1u << 16)
#define APIC_LVT_LEVEL         (1u << 15)
#define APIC_LVT_REMOTE_IRR    (1u << 14)
#define APIC_LVT_TIMER_SHIFT   17
#define APIC_TIMER_ONESHOT     0
#define APIC_TIMER_PERIODIC    1
#define APIC_TIMER_TSCDEADLINE 2
#define APIC_SPIV_ENABLED      (1u << 8)
#define APIC_MODE_FIXED        0
#define APIC_MODE_LOWEST       1
#define APIC_MODE_SMI          2
#define APIC_MODE_NMI          4
#define APIC_MODE_INIT         5
#define APIC_MODE_STARTUP      6
#define APIC_MODE_EXTINT       7
#define APIC_VERSION_VALUE     0x50014 /* KVM: version 0x14, six LVT entries, no directed EOI */
#define APIC_BASE_MSR_BSP      (1ull << 8)
#define APIC_BASE_MSR_EXTD     (1ull << 10)
#define APIC_BASE_MSR_ENABLE   (1ull << 11)
#define APIC_DEFAULT_BASE      0xfee00000ull
/* KVM's floor on a periodic timer's period (kvm.min_timer_period_us = 200). */
#define APIC_MIN_PERIOD_NS 200000ull

struct soft_lapic {
    uint8_t regs[APIC_PAGE_SIZE]; /* the register page, as KVM_GET_LAPIC hands it out */
    uint64_t apic_base;           /* MSR_IA32_APICBASE */
    bool tsc_deadline_ok;         /* the guest's CPUID offers the TSC-deadline timer mode */
    /* The timer, in host monotonic ns: armed when expire_ns != 0. */
    uint64_t start_ns, expire_ns, period_ns;
    uint64_t tsc_deadline; /* MSR_IA32_TSC_DEADLINE (guest TSC); 0: none */
};

/* What a register write asks of the rest of the irqchip. */
struct soft_lapic_effect {
    int eoi_vector;     /* an EOI of a level-triggered vector: the IOAPIC's remote IRR; -1: none */
    bool ipi;           /* ICR was written: send the IPI it describes */
    uint32_t icr, icr2; /* the ICR then (icr2: destination in bits 24-31; x2APIC: all 32 bits) */
    bool timer_changed; /* the timer was armed, re-armed or stopped */
};

/* KVM's reset (kvm_lapic_reset): enabled at 0xfee00000, LVTs masked; for the boot processor (bsp: KVM_SET_BOOT_CPU_ID's
 * vCPU, 0 by default) the BSP bit and LVT0 = ExtINT. */
void soft_lapic_reset(struct soft_lapic *a, uint32_t vcpu_id, bool bsp);
/* A 32-bit register read at offset off (16-byte aligned), as KVM's kvm_lapic_reg_read; TMCCT from now_ns. */
uint32_t soft_lapic_read(struct soft_lapic *a, uint32_t off, uint64_t now_ns);
/* A 32-bit register write (KVM's kvm_lapic_reg_write); *eff says what else must happen. */
void soft_lapic_write(struct soft_lapic *a, uint32_t off, uint32_t val, uint64_t now_ns, struct soft_lapic_effect *eff);
/* An interrupt arrives (fixed delivery): into IRR, TMR as trigger. 1 accepted, 0 dropped (APIC disabled). */
int soft_lapic_accept(struct soft_lapic *a, int vector, bool level_trig);
/* The highest IRR vector whose class is above PPR, or -1. */
int soft_lapic_pending(const struct soft_lapic *a);
/* The CPU takes vector: IRR -> ISR, PPR updated. */
void soft_lapic_ack(struct soft_lapic *a, int vector);
/* True when the PIC's INTR reaches this CPU (KVM's kvm_apic_accept_pic_intr). */
bool soft_lapic_accepts_pic(const struct soft_lapic *a);
/* Fires the timer if due at now_ns (periodic re-arms). True when an interrupt went into IRR. */
bool soft_lapic_timer_poll(struct soft_lapic *a, uint64_t now_ns);
/*
 * WRMSR MSR_IA32_TSC_DEADLINE: deadline in guest TSC, guest_tsc its value now, tsc_khz its rate. Ignored
 * outside TSC-deadline mode, as KVM does. 0 disarms.
 */
void soft_lapic_set_tsc_deadline(struct soft_lapic *a, uint64_t deadline, uint64_t now_ns, uint64_t guest_tsc,
                                 uint64_t tsc_khz);
/* RDMSR MSR_IA32_TSC_DEADLINE: 0 outside TSC-deadline mode. */
uint64_t soft_lapic_get_tsc_deadline(const struct soft_lapic *a);
/* KVM_SET_LAPIC: a register page from the VMM; the timer restarts from its TMCCT. */
void soft_lapic_set_page(struct soft_lapic *a, const uint8_t *regs, uint64_t now_ns);
/* KVM_GET_LAPIC: the register page with TMCCT as it reads now. */
void soft_lapic_get_page(struct soft_lapic *a, uint8_t *regs, uint64_t now_ns);
/* True when the APIC is enabled in MSR_IA32_APICBASE and software-enabled in SPIV. */
bool soft_lapic_enabled(const struct soft_lapic *a);
/* KVM's kvm_apic_match_dest for a fixed/lowest-priority message: physical or logical (flat/cluster), 0xff broadcast. */
bool soft_lapic_match_dest(const struct soft_lapic *a, uint32_t dest, bool logical);
/* A register as stored (no side effects). */
uint32_t soft_lapic_reg(const struct soft_lapic *a, uint32_t off);

#endif
