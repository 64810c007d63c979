/* The soft backend's IOAPIC (KVM's arch/x86/kvm/ioapic.c), as pure logic on struct kvm_ioapic_state. */
#include "soft_ioapic.h"

#include <string.h>

#include "soft_lapic.h"

#define PINS           KVM_IOAPIC_NUM_PINS
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_DELIV_STAT (1ull << 12)
#define RTE_LEVEL      (1ull << 15)
#define RTE_MASK       (1ull << 16)

void soft_ioapic_reset(struct soft_ioapic *io)
{
    memset(&io->s, 0, sizeof io->s);
    io->s.base_address = IOAPIC_DEFAULT_BASE;
    for (int i = 0; i < PINS; i++)
        io->s.redirtbl[i].bits = RTE_MASK;
}

static uint32_t read_indirect(struct soft_ioapic *io)
{
    uint32_t sel = io->s.ioregsel;
    switch (sel) {
    case 0x00:
        return (io->s.id & 0xf) << 24;
    case 0x01:
        return ((uint32_t)(PINS - 1) << 16) | IOAPIC_VERSION;
    case 0x02:
        return (io->s.id & 0xf) << 24;
    default:
        if (sel >= 0x10 && sel < 0x10 + 2 * PINS) {
            uint64_t e = io->s.redirtbl[(sel - 0x10) >> 1].bits;
            return (sel & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
        }
        return ~0u; /* KVM: reads of a missing register give all ones */
    }
}

/* Send pin's entry (ioapic_service): -1 masked or waiting for EOI; else what the APICs said. */
static int service(struct soft_ioapic *io, unsigned pin)
{
    uint64_t e = io->s.redirtbl[pin].bits;
    if ((e & RTE_MASK) || ((e & RTE_LEVEL) && (e & RTE_REMOTE_IRR)))
        return -1;
    struct soft_irq_msg m = {.dest = (uint32_t)(e >> 56),
                             .vector = (int)(e & 0xff),
                             .delivery_mode = (unsigned)(e >> 8) & 7,
                             .logical = (e >> 11) & 1,
                             .level_trig = (e & RTE_LEVEL) != 0};
    if (!m.level_trig)
        io->s.irr &= ~(1u << pin);
    int r = io->deliver ? io->deliver(io->ctx, &m) : -1;
    if (r > 0 && m.level_trig)
        io->s.redirtbl[pin].bits |= RTE_REMOTE_IRR;
    return r;
}

static void write_indirect(struct soft_ioapic *io, uint32_t val)
{
    uint32_t sel = io->s.ioregsel;
    if (sel == 0x00) {
        io->s.id = (val >> 24) & 0xf;
        return;
    }
    if (sel < 0x10 || sel >= 0x10 + 2 * PINS)
        return;
    unsigned pin = (sel - 0x10) >> 1;
    uint64_t e = io->s.redirtbl[pin].bits, keep = e & (RTE_REMOTE_IRR | RTE_DELIV_STAT);
    if (sel & 1)
        e = (e & 0xffffffffull) | ((uint64_t)val << 32);
    else
        e = (e & ~0xffffffffull) | val;
    e = (e & ~(RTE_REMOTE_IRR | RTE_DELIV_STAT)) | keep;
    /* Linux and Xen expect remote IRR to clear when an entry becomes edge-triggered (as KVM does). */
    if (!(e & RTE_LEVEL))
        e &= ~RTE_REMOTE_IRR;
    io->s.redirtbl[pin].bits = e;
    if ((e & RTE_LEVEL) && (io->s.irr & (1u << pin)) && !(e & RTE_MASK) && !(e & RTE_REMOTE_IRR))
        service(io, pin);
}

uint32_t soft_ioapic_read(struct soft_ioapic *io, uint32_t off)
{
    switch (off) {
    case IOAPIC_REG_SELECT:
        return io->s.ioregsel;
    case IOAPIC_REG_WINDOW:
        return read_indirect(io);
    default:
        return 0;
    }
}

void soft_ioapic_write(struct soft_ioapic *io, uint32_t off, uint32_t val)
{
    switch (off) {
    case IOAPIC_REG_SELECT:
        io->s.ioregsel = val & 0xff;
        break;
    case IOAPIC_REG_WINDOW:
        write_indirect(io, val);
        break;
    case IOAPIC_REG_EOI:
        soft_ioapic_eoi(io, (int)(val & 0xff), io->s.irr);
        break;
    default:
        break;
    }
}

int soft_ioapic_set_irq(struct soft_ioapic *io, unsigned pin, bool level, bool line_high)
{
    (void)level;
    if (pin >= PINS)
        return -1;
    uint32_t mask = 1u << pin;
    uint64_t e = io->s.redirtbl[pin].bits;
    bool edge = !(e & RTE_LEVEL);
    if (!line_high) {
        io->s.irr &= ~mask;
        return 1;
    }
    uint32_t old = io->s.irr;
    io->s.irr |= mask;
    if (edge && old == io->s.irr)
        return 0; /* coalesced: the previous edge is still waiting (masked) */
    return service(io, pin);
}

void soft_ioapic_eoi(struct soft_ioapic *io, int vector, uint32_t line_levels)
{
    (void)line_levels;
    for (unsigned pin = 0; pin < PINS; pin++) {
        uint64_t e = io->s.redirtbl[pin].bits;
        if ((int)(e & 0xff) != vector || !(e & RTE_LEVEL))
            continue;
        io->s.redirtbl[pin].bits &= ~RTE_REMOTE_IRR;
        if (!(e & RTE_MASK) && (io->s.irr & (1u << pin)))
            service(io, pin);
    }
}
