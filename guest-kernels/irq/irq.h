/*
 * The interrupt probes' helpers (32-bit, paging off: the APIC pages are plain physical addresses): a 256-vector
 * IDT, the local APIC, the IOAPIC, the 8259 pair, and the VMM's interrupt-request port (abi.h MVM_PORT_IRQ).
 * Every probe's exits and output are the same whatever the timing: timer ticks are counted, never timed.
 */
#ifndef GUEST_IRQ_H
#define GUEST_IRQ_H

#include "runtime/runtime.h"

#define LAPIC_BASE  0xfee00000u
#define IOAPIC_BASE 0xfec00000u

#define LAPIC_ID     0x20
#define LAPIC_VER    0x30
#define LAPIC_TPR    0x80
#define LAPIC_PPR    0xa0
#define LAPIC_EOI    0xb0
#define LAPIC_LDR    0xd0
#define LAPIC_DFR    0xe0
#define LAPIC_SPIV   0xf0
#define LAPIC_ISR    0x100
#define LAPIC_TMR    0x180
#define LAPIC_IRR    0x200
#define LAPIC_ICR    0x300
#define LAPIC_ICR2   0x310
#define LAPIC_LVTT   0x320
#define LAPIC_LVT0   0x350
#define LAPIC_TMICT  0x380
#define LAPIC_TMCCT  0x390
#define LAPIC_TDCR   0x3e0
#define LVT_MASKED   (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define LVT_TSCDL    (2u << 17)
#define MSR_APICBASE 0x1bu
#define MSR_TSCDL    0x6e0u

struct irq_gate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
};
_Static_assert(sizeof(struct irq_gate) == 8, "32-bit IDT gate");

static struct irq_gate irq_idt[256] __attribute__((aligned(16)));

/* IDT entry vec -> handler (an interrupt gate: IF clear inside), and the 256-entry IDT loaded. */
static inline void irq_handler_set(unsigned vec, void *handler)
{
    uint32_t off = (uint32_t)(uintptr_t)handler;
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) p = {sizeof irq_idt - 1, (uint32_t)(uintptr_t)irq_idt};
    irq_idt[vec & 0xff] = (struct irq_gate){(uint16_t)off, cs_read(), 0, 0x8e, (uint16_t)(off >> 16)};
    __asm__ volatile("lidt %0" : : "m"(p));
}

static inline uint32_t lapic_read(uint32_t reg)
{
    return *(volatile uint32_t *)addr_ptr(LAPIC_BASE + reg);
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)addr_ptr(LAPIC_BASE + reg) = v;
}

/* Bit vec of a 256-bit APIC register (ISR, TMR, IRR). */
static inline int lapic_bit(uint32_t base, unsigned vec)
{
    return (lapic_read(base + 0x10 * (vec / 32)) >> (vec % 32)) & 1;
}

static inline uint32_t ioapic_read(uint32_t index)
{
    *(volatile uint32_t *)addr_ptr(IOAPIC_BASE) = index;
    return *(volatile uint32_t *)addr_ptr(IOAPIC_BASE + 0x10);
}

static inline void ioapic_write(uint32_t index, uint32_t v)
{
    *(volatile uint32_t *)addr_ptr(IOAPIC_BASE) = index;
    *(volatile uint32_t *)addr_ptr(IOAPIC_BASE + 0x10) = v;
}

static inline void wrmsr64(uint32_t idx, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline uint64_t rdtsc64(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid4(uint32_t leaf, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

/* Wait for an interrupt with interrupts on (the STI shadow covers the HLT: no wake-up is lost), then off again. */
static inline void sti_hlt_cli(void)
{
    __asm__ volatile("sti; hlt; cli" : : : "memory");
}

/*
 * Let pending interrupts in: STI, a short loop, CLI. KVM and the soft backend take them right after the STI's
 * shadow (irq/exact proves where): before the CLI.
 */
static inline void irq_window(void)
{
    __asm__ volatile("sti" : : : "memory");
    for (volatile int i = 0; i < 16; i++)
        __asm__ volatile("pause" : : : "memory");
    __asm__ volatile("cli" : : : "memory");
}

/* The VMM drives GSI gsi (MVM_IRQ_OP_*) through KVM_IRQ_LINE_STATUS. */
static inline void irq_request(unsigned gsi, unsigned op)
{
    outl(MVM_PORT_IRQ, gsi | op << 8);
}

/* The last status of an interrupt request (KVM's answer). */
static inline int32_t irq_status(void)
{
    return (int32_t)inl(MVM_PORT_IRQ);
}

/* KVM_SIGNAL_MSI with this address and data. */
static inline void msi_send(uint32_t addr, uint32_t data)
{
    outl(MVM_PORT_IRQ_MSI_ADDR, addr);
    outl(MVM_PORT_IRQ_MSI, data);
}

/* The local APIC software-enabled (SPIV bit 8), spurious vector 0xff. */
static inline void lapic_enable(void)
{
    lapic_write(LAPIC_SPIV, 0x1ff);
}

#endif
