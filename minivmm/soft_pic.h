/* The soft backend's 8259 PIC pair (KVM's arch/x86/kvm/i8259.c): ICWs, OCWs, IRR/ISR/IMR, ELCR. Pure logic. */
#ifndef MINIVMM_SOFT_PIC_H
#define MINIVMM_SOFT_PIC_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* Master at 0x20, slave at 0xa0 (cascaded on the master's IRQ 2), ELCR at 0x4d0/0x4d1. */
struct soft_pic {
    struct kvm_pic_state pics[2]; /* as KVM_GET_IRQCHIP hands them out */
    bool output;                  /* the master's INTR line */
};

/* The state of a new VM's PICs (all zero, ELCR masks as the PIIX's). */
void soft_pic_init(struct soft_pic *p);
/* Line irq (0-15) goes to level: 1 delivered, 0 coalesced, -1 masked (pic_set_irq1). */
int soft_pic_set_irq(struct soft_pic *p, unsigned irq, bool level);
/* One byte to or from port 0x20, 0x21, 0xa0, 0xa1, 0x4d0 or 0x4d1. */
void soft_pic_write(struct soft_pic *p, uint16_t port, uint8_t val);
uint8_t soft_pic_read(struct soft_pic *p, uint16_t port);
/* The CPU acknowledges INTR: the vector (spurious IRQ 7 when nothing is pending). */
int soft_pic_ack(struct soft_pic *p);
/* After KVM_SET_IRQCHIP: recompute the output. */
void soft_pic_update(struct soft_pic *p);
/* True for the ports the PIC pair answers. */
bool soft_pic_port(uint16_t port);

#endif
