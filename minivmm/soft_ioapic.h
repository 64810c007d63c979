/* The soft backend's IOAPIC (KVM's arch/x86/kvm/ioapic.c): 24 pins, the redirection table, remote IRR. Pure logic. */
#ifndef MINIVMM_SOFT_IOAPIC_H
#define MINIVMM_SOFT_IOAPIC_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_DEFAULT_BASE 0xfec00000ull
#define IOAPIC_MMIO_LEN     0x100
#define IOAPIC_REG_SELECT   0x00
#define IOAPIC_REG_WINDOW   0x10
#define IOAPIC_REG_EOI      0x40
#define IOAPIC_VERSION      0x11 /* with (pins - 1) << 16 */

/* An interrupt message, as an IOAPIC entry or an MSI describes it (KVM's struct kvm_lapic_irq). */
struct soft_irq_msg {
    uint32_t dest;
    int vector;
    unsigned delivery_mode; /* APIC_MODE_* */
    bool logical, level_trig;
};

/* Sends a message to the local APICs: the number that took it, or -1 when none matched. */
typedef int (*soft_irq_deliver_fn)(void *ctx, const struct soft_irq_msg *m);

struct soft_ioapic {
    struct kvm_ioapic_state s; /* as KVM_GET_IRQCHIP hands it out */
    soft_irq_deliver_fn deliver;
    void *ctx;
};

/* KVM's kvm_ioapic_reset: every pin masked, base 0xfec00000. */
void soft_ioapic_reset(struct soft_ioapic *io);
/* A 32-bit MMIO access at offset off from the base (IOREGSEL 0x00, IOWIN 0x10, EOI 0x40). */
uint32_t soft_ioapic_read(struct soft_ioapic *io, uint32_t off);
void soft_ioapic_write(struct soft_ioapic *io, uint32_t off, uint32_t val);
/*
 * Pin pin's line is now line_high (KVM's ioapic_set_irq): 1 delivered (or a line going low), 0 coalesced, -1 masked
 * or not delivered. `level` is unused (kept for the caller's symmetry with the PIC).
 */
int soft_ioapic_set_irq(struct soft_ioapic *io, unsigned pin, bool level, bool line_high);
/* A local APIC's EOI of a level-triggered vector: clears remote IRR and re-delivers a line still high. */
void soft_ioapic_eoi(struct soft_ioapic *io, int vector, uint32_t line_levels);

#endif
