/* The soft backend's 8259 PIC pair (KVM's arch/x86/kvm/i8259.c), as pure logic on struct kvm_pic_state. */
#include "soft_pic.h"

#include <string.h>

bool soft_pic_port(uint16_t port)
{
    return port == 0x20 || port == 0x21 || port == 0xa0 || port == 0xa1 || port == 0x4d0 || port == 0x4d1;
}

void soft_pic_init(struct soft_pic *p)
{
    memset(p, 0, sizeof *p);
    p->pics[0].elcr_mask = 0xf8;
    p->pics[1].elcr_mask = 0xde;
}

static int set_irq1(struct kvm_pic_state *s, int irq, bool level)
{
    int mask = 1 << irq, ret = 1;
    if (s->elcr & mask) {
        if (level) {
            ret = !(s->irr & mask);
            s->irr |= mask;
            s->last_irr |= mask;
        } else {
            s->irr &= ~mask;
            s->last_irr &= ~mask;
        }
    } else if (level) {
        if ((s->last_irr & mask) == 0) {
            ret = !(s->irr & mask);
            s->irr |= mask;
        }
        s->last_irr |= mask;
    } else {
        s->last_irr &= ~mask;
    }
    return (s->imr & mask) ? -1 : ret;
}

/* The number of steps from the highest priority to the first set bit of mask; 8 for none. */
static int get_priority(const struct kvm_pic_state *s, int mask)
{
    if (mask == 0)
        return 8;
    int pr = 0;
    while ((mask & (1 << ((pr + s->priority_add) & 7))) == 0)
        pr++;
    return pr;
}

static int get_irq(const struct soft_pic *p, const struct kvm_pic_state *s)
{
    int pr = get_priority(s, s->irr & ~s->imr);
    if (pr == 8)
        return -1;
    int mask = s->isr;
    if (s->special_fully_nested_mode && s == &p->pics[0])
        mask &= ~(1 << 2); /* the slave's own priorities decide */
    return pr < get_priority(s, mask) ? (pr + s->priority_add) & 7 : -1;
}

void soft_pic_update(struct soft_pic *p)
{
    if (get_irq(p, &p->pics[1]) >= 0) {
        set_irq1(&p->pics[0], 2, true);
        set_irq1(&p->pics[0], 2, false);
    }
    p->output = get_irq(p, &p->pics[0]) >= 0;
}

int soft_pic_set_irq(struct soft_pic *p, unsigned irq, bool level)
{
    if (irq >= 16)
        return -1;
    int r = set_irq1(&p->pics[irq >> 3], (int)(irq & 7), level);
    soft_pic_update(p);
    return r;
}

static void clear_isr(struct kvm_pic_state *s, int irq)
{
    s->isr &= (uint8_t) ~(1 << irq);
}

static void intack(struct kvm_pic_state *s, int irq)
{
    s->isr |= (uint8_t)(1 << irq);
    if (!(s->elcr & (1 << irq)))
        s->irr &= (uint8_t) ~(1 << irq); /* a level-triggered line stays requested */
    if (s->auto_eoi) {
        if (s->rotate_on_auto_eoi)
            s->priority_add = (uint8_t)((irq + 1) & 7);
        clear_isr(s, irq);
    }
}

int soft_pic_ack(struct soft_pic *p)
{
    int irq = get_irq(p, &p->pics[0]), vec;
    p->output = false;
    if (irq >= 0) {
        intack(&p->pics[0], irq);
        if (irq == 2) {
            int irq2 = get_irq(p, &p->pics[1]);
            if (irq2 >= 0)
                intack(&p->pics[1], irq2);
            else
                irq2 = 7; /* spurious on the slave */
            vec = p->pics[1].irq_base + irq2;
        } else {
            vec = p->pics[0].irq_base + irq;
        }
    } else {
        vec = p->pics[0].irq_base + 7; /* spurious on the master */
    }
    soft_pic_update(p);
    return vec;
}

/* ICW1 (kvm_pic_reset): initialisation starts; edge requests in service are dropped. */
static void pic_reset(struct kvm_pic_state *s)
{
    uint8_t edge_irr = s->irr & ~s->elcr;
    s->last_irr = 0;
    s->irr &= s->elcr;
    s->imr = 0;
    s->priority_add = 0;
    s->special_mask = 0;
    s->read_reg_select = 0;
    if (!s->init4) {
        s->special_fully_nested_mode = 0;
        s->auto_eoi = 0;
    }
    s->init_state = 1;
    for (int irq = 0; irq < 8; irq++)
        if (edge_irr & (1 << irq))
            clear_isr(s, irq);
}

static void cmd_write(struct soft_pic *p, struct kvm_pic_state *s, uint8_t val)
{
    if (val & 0x10) { /* ICW1 */
        s->init4 = val & 1;
        pic_reset(s);
        return;
    }
    if (val & 0x08) { /* OCW3 */
        if (val & 0x04)
            s->poll = 1;
        if (val & 0x02)
            s->read_reg_select = val & 1;
        if (val & 0x40)
            s->special_mask = (val >> 5) & 1;
        return;
    }
    int cmd = val >> 5, irq, pr; /* OCW2 */
    switch (cmd) {
    case 0:
    case 4:
        s->rotate_on_auto_eoi = (uint8_t)(cmd >> 2);
        break;
    case 1: /* non-specific EOI */
    case 5: /* ... with rotation */
        pr = get_priority(s, s->isr);
        if (pr != 8) {
            irq = (pr + s->priority_add) & 7;
            if (cmd == 5)
                s->priority_add = (uint8_t)((irq + 1) & 7);
            clear_isr(s, irq);
            soft_pic_update(p);
        }
        break;
    case 3: /* specific EOI */
        clear_isr(s, val & 7);
        soft_pic_update(p);
        break;
    case 6: /* set priority */
        s->priority_add = (uint8_t)((val + 1) & 7);
        soft_pic_update(p);
        break;
    case 7: /* rotate on specific EOI */
        irq = val & 7;
        s->priority_add = (uint8_t)((irq + 1) & 7);
        clear_isr(s, irq);
        soft_pic_update(p);
        break;
    default:
        break;
    }
}

static void data_write(struct soft_pic *p, struct kvm_pic_state *s, uint8_t val)
{
    switch (s->init_state) {
    case 0: /* OCW1: the mask */
        s->imr = val;
        soft_pic_update(p);
        break;
    case 1: /* ICW2: the vector base */
        s->irq_base = val & 0xf8;
        s->init_state = 2;
        break;
    case 2: /* ICW3: cascade wiring, kept as the PC's */
        s->init_state = s->init4 ? 3 : 0;
        break;
    case 3: /* ICW4 */
        s->special_fully_nested_mode = (val >> 4) & 1;
        s->auto_eoi = (val >> 1) & 1;
        s->init_state = 0;
        break;
    default:
        break;
    }
}

void soft_pic_write(struct soft_pic *p, uint16_t port, uint8_t val)
{
    if (port == 0x4d0 || port == 0x4d1) {
        struct kvm_pic_state *s = &p->pics[port & 1];
        s->elcr = val & s->elcr_mask;
        return;
    }
    struct kvm_pic_state *s = &p->pics[port >= 0xa0];
    if (port & 1)
        data_write(p, s, val);
    else
        cmd_write(p, s, val);
}

static uint8_t poll_read(struct soft_pic *p, struct kvm_pic_state *s, bool slave)
{
    int irq = get_irq(p, s);
    if (irq < 0) {
        soft_pic_update(p);
        return 0x07;
    }
    if (slave) {
        p->pics[0].isr &= (uint8_t) ~(1 << 2);
        p->pics[0].irr &= (uint8_t) ~(1 << 2);
    }
    s->irr &= (uint8_t) ~(1 << irq);
    clear_isr(s, irq);
    if (slave || irq != 2)
        soft_pic_update(p);
    return (uint8_t)irq; /* KVM answers the IRQ alone (no bit 7, unlike the 8259A datasheet) */
}

uint8_t soft_pic_read(struct soft_pic *p, uint16_t port)
{
    if (port == 0x4d0 || port == 0x4d1)
        return p->pics[port & 1].elcr;
    struct kvm_pic_state *s = &p->pics[port >= 0xa0];
    if (s->poll) {
        uint8_t r = poll_read(p, s, port >= 0xa0);
        s->poll = 0;
        return r;
    }
    if (port & 1)
        return s->imr;
    return s->read_reg_select ? s->isr : s->irr;
}
