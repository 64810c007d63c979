/* The soft backend's irqchip state, shared by soft_irqchip.c (the chips' glue) and soft_irqchip_ioctl.c (ioctls, fds).
 */
#ifndef MINIVMM_SOFT_IRQCHIP_PRIV_H
#define MINIVMM_SOFT_IRQCHIP_PRIV_H

#include <pthread.h>

#include "soft_ioapic.h"
#include "soft_irqchip.h"
#include "soft_lapic.h"
#include "soft_pic.h"
#include "soft_pit.h"
#include "soft_priv.h"

#define SOFT_MAX_IRQ_ROUTES 4096 /* KVM_MAX_IRQ_ROUTES (kernel-internal): GSIs and table entries */
#define SOFT_GSIS           KVM_IOAPIC_NUM_PINS
#define SOFT_MAX_IOEVENTFD  64
#define SOFT_MAX_IRQFD      32
#define MSR_TSC_DEADLINE    0x6e0u
#define MSR_X2APIC_FIRST    0x800u
#define MSR_X2APIC_LAST     0x8ffu
#define CPUID_1_ECX_TSCDL   (1u << 24)

struct soft_ioeventfd {
    uint64_t addr, data;
    uint32_t len;
    bool pio, datamatch;
    int fd; /* our own dup of the VMM's eventfd, as KVM holds a reference */
};

struct soft_irqfd {
    uint32_t gsi;
    int fd;
};

struct soft_irqchip {
    pthread_mutex_t lock;
    bool have_chip; /* KVM_CREATE_IRQCHIP was done (else only ioeventfds) */
    struct soft_pic pic;
    struct soft_ioapic ioapic;
    struct soft_pit pit;
    bool have_pit, pit_speaker; /* KVM_CREATE_PIT2 was done; with KVM_PIT_SPEAKER_DUMMY (port 0x61) */
    /* KVM_SET_GSI_ROUTING's table (NULL: KVM's default routing, GSIs 0-15 to PIC and IOAPIC, 16-23 to the IOAPIC). */
    struct kvm_irq_routing_entry *routes;
    uint32_t nroutes;
    struct soft_lapic lapic[SOFT_MAX_VCPUS];
    struct soft_vcpu *vcpu[SOFT_MAX_VCPUS]; /* by vCPU id */
    int wake_fd[SOFT_MAX_VCPUS];            /* written when a halted vCPU may have an interrupt */
    struct soft_ioeventfd ioev[SOFT_MAX_IOEVENTFD];
    int nioev;
    struct soft_irqfd irqfd[SOFT_MAX_IRQFD];
    int nirqfd;
    pthread_t irqfd_thread;
    bool irqfd_running, irqfd_stop;
    int irqfd_ctl; /* wakes the irqfd thread when the list changes or the VM goes */
    /* Deassigned irqfds: closed by the irqfd thread between two polls, never under a poll that still uses them. */
    int dead_fd[4 * SOFT_MAX_IRQFD];
    int ndead;
};

/* Host monotonic time (CLOCK_MONOTONIC_RAW) in ns: the local APIC timers' time base. */
uint64_t soft_chip_now_ns(void);
/* The local APIC of vCPU id, brought up to date with the vCPU's APIC base MSR and CPUID. Lock held. */
struct soft_lapic *soft_chip_lapic_of(struct soft_irqchip *c, int id);
/* Every vCPU looks at its interrupts again (self: the caller's, which needs no wake-up). Lock held. */
void soft_chip_kick_all(struct soft_irqchip *c, const struct soft_vcpu *self);
/* After vCPU v wrote its local APIC (soft_lapic_write's effect): EOI, IPI, kick. Lock held. */
void soft_chip_apply_effect(struct soft_irqchip *c, struct soft_vcpu *v, const struct soft_lapic_effect *eff);
/* The IOAPIC's soft_irq_deliver_fn (ctx: the chip). */
int soft_chip_ioapic_deliver(void *ctx, const struct soft_irq_msg *m);
/* GSI gsi to level through KVM's default routing; KVM_IRQ_LINE_STATUS's status. Lock held. */
int soft_chip_set_gsi(struct soft_irqchip *c, uint32_t gsi, bool level, const struct soft_vcpu *self);
/* An MSI: >0 delivered, 0 refused by the APICs, -1 no destination. Lock held. */
int soft_chip_send_msi(struct soft_irqchip *c, uint64_t addr, uint32_t data);
/* v->irq_deadline from its APIC timer. Lock held. */
void soft_chip_update_deadline(struct soft_vcpu *v, const struct soft_lapic *a, uint64_t now);

#endif
