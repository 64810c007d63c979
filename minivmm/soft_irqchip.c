/*
 * The soft backend's in-kernel irqchip (KVM's irq_comm.c and the glue of lapic.c, ioapic.c, i8259.c): KVM's
 * default GSI routing (GSIs 0-15 to the PIC and the IOAPIC, 16-23 to the IOAPIC), MSIs, IPIs, the ioctls, the
 * xAPIC page and x2APIC MSRs, interrupt acknowledgement for the run loop, HLT waiting, ioeventfds and irqfds.
 * One lock guards all of the chips; vCPU threads, the VMM's threads and the irqfd thread take it.
 */
#include "soft_irqchip.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "soft_cpuid.h"
#include "soft_irqchip_priv.h"

uint64_t soft_chip_now_ns(void)
{
    /* The backend's own time base (the host TSC, or the instruction count in deterministic mode), in ns. */
    return (uint64_t)((unsigned __int128)soft_host_tsc() * 1000000u / soft_tsc_khz());
}

/* The local APIC of vCPU id, its base MSR taken from the vCPU (KVM_SET_SREGS and WRMSR keep it there). */
struct soft_lapic *soft_chip_lapic_of(struct soft_irqchip *c, int id)
{
    struct soft_lapic *a = &c->lapic[id];
    struct soft_vcpu *v = c->vcpu[id];
    if (!v)
        return a;
    if ((v->apic_base & APIC_BASE_MSR_EXTD) && !(a->apic_base & APIC_BASE_MSR_EXTD)) {
        /* Into x2APIC mode: the ID is the vCPU's, LDR is derived from it (kvm_apic_set_x2apic_id). */
        uint32_t x = (uint32_t)id, ldr = ((x >> 4) << 16) | (1u << (x & 0xf));
        memcpy(a->regs + APIC_REG_ID, &x, 4);
        memcpy(a->regs + APIC_REG_LDR, &ldr, 4);
    }
    a->apic_base = v->apic_base;
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, 1, 0);
    a->tsc_deadline_ok = e && (e->ecx & CPUID_1_ECX_TSCDL);
    return a;
}

bool soft_irqchip_in_kernel(const struct soft_vcpu *v)
{
    const struct soft_irqchip *c = v->vm->chip;
    return c && c->have_chip;
}

/* vCPU id's interrupt state changed: its next block boundary looks, and a halted one wakes. */
static void kick(struct soft_irqchip *c, int id, const struct soft_vcpu *self)
{
    struct soft_vcpu *v = c->vcpu[id];
    if (!v)
        return;
    __atomic_store_n(&v->irq_kick, 1, __ATOMIC_RELEASE);
    if (v != self && c->wake_fd[id] >= 0) {
        uint64_t one = 1;
        if (write(c->wake_fd[id], &one, sizeof one) < 0) {
            /* the counter is full: the vCPU has wake-ups queued anyway */
        }
    }
}

void soft_chip_kick_all(struct soft_irqchip *c, const struct soft_vcpu *self)
{
    for (int i = 0; i < SOFT_MAX_VCPUS; i++)
        kick(c, i, self);
}

/* A message to the local APICs (kvm_irq_delivery_to_apic): how many took it, -1 when none matched. */
static int deliver_msg(struct soft_irqchip *c, const struct soft_irq_msg *m, const struct soft_vcpu *self)
{
    int r = 0; /* KVM's fast path (the APIC map) answers 0, not -1, when no APIC matches */
    for (int i = 0; i < SOFT_MAX_VCPUS; i++) {
        if (!c->vcpu[i])
            continue;
        struct soft_lapic *a = soft_chip_lapic_of(c, i);
        if (!soft_lapic_match_dest(a, m->dest, m->logical))
            continue;
        if (m->delivery_mode == APIC_MODE_SMI) { /* __apic_accept_irq: KVM_REQ_SMI, accepted (soft_smm.c) */
            soft_smm_raise(c->vcpu[i]);
            kick(c, i, self);
            r++;
        } else if (m->delivery_mode == APIC_MODE_FIXED || m->delivery_mode == APIC_MODE_LOWEST) {
            r += soft_lapic_accept(a, m->vector, m->level_trig);
            kick(c, i, self);
            if (m->delivery_mode == APIC_MODE_LOWEST)
                break; /* one CPU takes a lowest-priority message */
        }
    }
    return r;
}

int soft_chip_ioapic_deliver(void *ctx, const struct soft_irq_msg *m)
{
    return deliver_msg(ctx, m, NULL);
}

/* An IPI from vCPU src's ICR (kvm_apic_send_ipi). */
static void send_ipi(struct soft_irqchip *c, int src, uint32_t icr, uint32_t icr2, const struct soft_vcpu *self)
{
    struct soft_lapic *sa = &c->lapic[src];
    bool x2 = (sa->apic_base & APIC_BASE_MSR_EXTD) != 0;
    struct soft_irq_msg m = {.dest = x2 ? icr2 : icr2 >> 24,
                             .vector = (int)(icr & 0xff),
                             .delivery_mode = (icr >> 8) & 7,
                             .logical = (icr >> 11) & 1,
                             .level_trig = (icr >> 15) & 1};
    unsigned shorthand = (icr >> 18) & 3;
    if (shorthand == 0) {
        deliver_msg(c, &m, self);
        return;
    }
    for (int i = 0; i < SOFT_MAX_VCPUS; i++) {
        if (!c->vcpu[i] || (shorthand == 1 && i != src) || (shorthand == 3 && i == src))
            continue;
        if (m.delivery_mode == APIC_MODE_SMI) {
            soft_smm_raise(c->vcpu[i]);
            kick(c, i, self);
        } else if (m.delivery_mode == APIC_MODE_FIXED || m.delivery_mode == APIC_MODE_LOWEST) {
            soft_lapic_accept(soft_chip_lapic_of(c, i), m.vector, m.level_trig);
            kick(c, i, self);
        }
    }
}

/* GSI gsi's line goes to level through KVM's default routing (kvm_set_irq): the sum of the chips' answers, or -1. */
/* One route (kvm_set_pic_irq, kvm_set_ioapic_irq, kvm_set_msi): that chip's answer. */
static int route_set(struct soft_irqchip *c, const struct kvm_irq_routing_entry *e, bool level)
{
    if (e->type == KVM_IRQ_ROUTING_MSI) /* an MSI is sent on the rising level only */
        return level ? soft_chip_send_msi(c, ((uint64_t)e->u.msi.address_hi << 32) | e->u.msi.address_lo, e->u.msi.data)
                     : -1;
    if (e->u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC)
        return soft_ioapic_set_irq(&c->ioapic, e->u.irqchip.pin, level, level);
    return soft_pic_set_irq(&c->pic, e->u.irqchip.pin + (e->u.irqchip.irqchip == KVM_IRQCHIP_PIC_SLAVE ? 8 : 0), level);
}

int soft_chip_set_gsi(struct soft_irqchip *c, uint32_t gsi, bool level, const struct soft_vcpu *self)
{
    int ret = -1, r;
    if (c->routes) {
        for (uint32_t i = 0; i < c->nroutes; i++) {
            if (c->routes[i].gsi != gsi)
                continue;
            r = route_set(c, &c->routes[i], level);
            if (r >= 0)
                ret = r + (ret < 0 ? 0 : ret);
        }
    } else if (gsi < SOFT_GSIS) {
        if (gsi < 16 && (r = soft_pic_set_irq(&c->pic, gsi, level)) >= 0)
            ret = r;
        r = soft_ioapic_set_irq(&c->ioapic, gsi, level, level);
        if (r >= 0)
            ret = r + (ret < 0 ? 0 : ret);
    }
    soft_chip_kick_all(c, self);
    return ret; /* KVM's kvm_set_irq: the sum of the chips' answers, -1 when none took it */
}

/* An MSI (kvm_set_msi_irq): address 0xfeeXXXXX names the destination, data the vector and mode. */
int soft_chip_send_msi(struct soft_irqchip *c, uint64_t addr, uint32_t data)
{
    struct soft_irq_msg m = {.dest = (uint32_t)(addr >> 12) & 0xff,
                             .vector = (int)(data & 0xff),
                             .delivery_mode = (data >> 8) & 7,
                             .logical = (addr >> 2) & 1,
                             .level_trig = (data >> 15) & 1};
    return deliver_msg(c, &m, NULL);
}

/* After the guest wrote its local APIC: the IOAPIC's EOI, an IPI, the timer's deadline. */
static void apply_effect(struct soft_irqchip *c, struct soft_vcpu *v, const struct soft_lapic_effect *eff)
{
    if (eff->eoi_vector >= 0)
        soft_ioapic_eoi(&c->ioapic, eff->eoi_vector, 0);
    if (eff->ipi)
        send_ipi(c, v->id, eff->icr, eff->icr2, v);
    __atomic_store_n(&v->irq_kick, 1, __ATOMIC_RELEASE); /* TPR, EOI and timer writes change what is deliverable */
}

void soft_chip_apply_effect(struct soft_irqchip *c, struct soft_vcpu *v, const struct soft_lapic_effect *eff)
{
    apply_effect(c, v, eff);
}

/* The host TSC at which vCPU v's timer is due (the block hook compares), 0 for none. */
void soft_chip_update_deadline(struct soft_vcpu *v, const struct soft_lapic *a, uint64_t now)
{
    struct soft_irqchip *c = v->vm->chip;
    uint64_t due = a->expire_ns;
    if (c->have_pit && c->pit.expire_ns && (!due || c->pit.expire_ns < due))
        due = c->pit.expire_ns; /* the PIT is the VM's: any vCPU's loop fires it */
    if (!due) {
        v->irq_deadline = 0;
        return;
    }
    uint64_t ns = due > now ? due - now : 0;
    uint64_t t = soft_host_tsc() + (uint64_t)((unsigned __int128)ns * soft_tsc_khz() / 1000000u);
    v->irq_deadline = t ? t : 1;
}

static bool ioeventfd_hit(struct soft_irqchip *c, bool pio, uint64_t addr, unsigned size, uint64_t val)
{
    for (int i = 0; i < c->nioev; i++) {
        struct soft_ioeventfd *e = &c->ioev[i];
        if (e->pio != pio || e->addr != addr || (e->len && e->len != size))
            continue;
        uint64_t mask = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
        if (e->datamatch && (val & mask) != (e->data & mask))
            continue;
        uint64_t one = 1;
        if (write(e->fd, &one, sizeof one) < 0) {
            /* a full counter stays signalled: nothing is lost */
        }
        return true;
    }
    return false;
}

bool soft_irqchip_pio(struct soft_vcpu *v, uint16_t port, unsigned size, bool write, uint32_t *val)
{
    struct soft_irqchip *c = v->vm->chip;
    if (!c)
        return false;
    pthread_mutex_lock(&c->lock);
    bool done = write && c->nioev && ioeventfd_hit(c, true, port, size, *val);
    if (!done && c->have_chip && soft_pic_port(port)) {
        done = true;
        if (write) {
            if (size == 1) /* KVM's PIC ignores wider accesses */
                soft_pic_write(&c->pic, port, (uint8_t)*val);
            soft_chip_kick_all(c, v);
        } else {
            *val = size == 1 ? soft_pic_read(&c->pic, port) : 0;
            soft_chip_kick_all(c, v); /* a poll-mode read acknowledges */
        }
    } else if (!done && c->have_pit && soft_pit_port(port) && (port != 0x61 || c->pit_speaker)) {
        /* KVM's PIT takes the low byte of any width, and answers one byte zero-extended. */
        uint64_t now = soft_chip_now_ns();
        done = true;
        if (write)
            soft_pit_write(&c->pit, port, (uint8_t)*val, now);
        else
            *val = soft_pit_read(&c->pit, port, now);
        soft_chip_update_deadline(v, soft_chip_lapic_of(c, v->id), now);
    }
    pthread_mutex_unlock(&c->lock);
    return done;
}

static void lapic_mmio(struct soft_irqchip *c, struct soft_vcpu *v, uint32_t off, unsigned size, bool write,
                       uint64_t *val)
{
    struct soft_lapic *a = soft_chip_lapic_of(c, v->id);
    uint64_t now = soft_chip_now_ns();
    if (write) {
        if (size != 4 || (off & 0xf) || off >= APIC_PAGE_SIZE)
            return; /* KVM ignores them */
        struct soft_lapic_effect eff;
        soft_lapic_write(a, off, (uint32_t)*val, now, &eff);
        if (eff.timer_changed) /* KVM starts the timer in the write: a count already run out fires in it */
            soft_lapic_timer_poll(a, now);
        apply_effect(c, v, &eff);
        soft_chip_update_deadline(v, a, now);
        return;
    }
    *val = 0;
    unsigned align = off & 0xf;
    if (align + size > 4 || off >= APIC_PAGE_SIZE)
        return;
    uint32_t x = soft_lapic_read(a, off & ~0xfu, now);
    memcpy(val, (uint8_t *)&x + align, size);
}

bool soft_irqchip_mmio(struct soft_vcpu *v, uint64_t gpa, unsigned size, bool write, uint64_t *val)
{
    struct soft_irqchip *c = v->vm->chip;
    if (!c)
        return false;
    bool done = false;
    pthread_mutex_lock(&c->lock);
    if (write && c->nioev && ioeventfd_hit(c, false, gpa, size, *val)) {
        done = true;
    } else if (c->have_chip) {
        uint64_t base = v->apic_base & ~0xfffull;
        if (gpa - base < 0x1000 && (!(v->apic_base & APIC_BASE_MSR_ENABLE) || (v->apic_base & APIC_BASE_MSR_EXTD))) {
            /* KVM_X86_QUIRK_APIC_MMIO_HOLE: a disabled or x2APIC-mode APIC's page reads all ones, takes no writes. */
            if (!write)
                *val = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
            done = true;
        } else if (gpa - base < 0x1000) {
            lapic_mmio(c, v, (uint32_t)(gpa - base), size, write, val);
            done = true;
        } else if (gpa - c->ioapic.s.base_address < IOAPIC_MMIO_LEN) {
            uint32_t off = (uint32_t)(gpa - c->ioapic.s.base_address);
            if (write) {
                soft_ioapic_write(&c->ioapic, off, (uint32_t)*val);
                soft_chip_kick_all(c, v);
            } else {
                uint32_t x = soft_ioapic_read(&c->ioapic, off);
                *val = 0;
                memcpy(val, &x, size < 4 ? size : 4);
            }
            done = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return done;
}

bool soft_irqchip_msr(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write)
{
    struct soft_irqchip *c = v->vm->chip;
    if (!c || !c->have_chip)
        return false;
    if (idx != MSR_TSC_DEADLINE && (idx < MSR_X2APIC_FIRST || idx > MSR_X2APIC_LAST))
        return false;
    pthread_mutex_lock(&c->lock);
    struct soft_lapic *a = soft_chip_lapic_of(c, v->id);
    uint64_t now = soft_chip_now_ns();
    bool done = true;
    if (idx == MSR_TSC_DEADLINE) {
        if (write) {
            soft_lapic_set_tsc_deadline(a, *val, now, soft_guest_tsc(v), v->tsc_khz);
            soft_lapic_timer_poll(a, now); /* a deadline already passed fires in the WRMSR */
            __atomic_store_n(&v->irq_kick, 1, __ATOMIC_RELEASE);
        } else {
            *val = soft_lapic_get_tsc_deadline(a);
        }
    } else if (!(a->apic_base & APIC_BASE_MSR_EXTD) || idx - MSR_X2APIC_FIRST >= APIC_PAGE_SIZE / 16) {
        done = false; /* x2APIC MSRs exist only in x2APIC mode, and only for the page's 64 registers */
    } else {
        uint32_t off = (idx - MSR_X2APIC_FIRST) << 4;
        if (write) {
            struct soft_lapic_effect eff;
            if (off == APIC_REG_ICR) {
                uint32_t hi = (uint32_t)(*val >> 32);
                memcpy(a->regs + APIC_REG_ICR2, &hi, 4);
            }
            soft_lapic_write(a, off, (uint32_t)*val, now, &eff);
            if (eff.timer_changed)
                soft_lapic_timer_poll(a, now);
            apply_effect(c, v, &eff);
        } else {
            *val = soft_lapic_read(a, off, now);
            if (off == APIC_REG_ICR)
                *val |= (uint64_t)soft_lapic_reg(a, APIC_REG_ICR2) << 32;
        }
    }
    soft_chip_update_deadline(v, a, now);
    pthread_mutex_unlock(&c->lock);
    return done;
}

/* The PIT's channel 0, when due: an edge on GSI 0 (KVM's pit_do_work, without its re-injection of lost ticks). */
static void pit_poll(struct soft_irqchip *c, uint64_t now, const struct soft_vcpu *self)
{
    if (c->have_pit && soft_pit_poll(&c->pit, now)) {
        soft_chip_set_gsi(c, 0, true, self);
        soft_chip_set_gsi(c, 0, false, self);
    }
}

/*
 * A level-triggered line is high on a masked pin, or waits for its EOI: an IOAPIC write (unmask, EOI register) may
 * let an interrupt in. (An edge latched on a masked pin stays there: unmasking sends nothing, as on KVM.)
 */
static bool ioapic_holds_line(const struct soft_ioapic *io)
{
    for (unsigned pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++) {
        const struct kvm_ioapic_state *s = &io->s;
        if (s->redirtbl[pin].fields.remote_irr ||
            (((s->irr >> pin) & 1) && s->redirtbl[pin].fields.mask && s->redirtbl[pin].fields.trig_mode))
            return true;
    }
    return false;
}

int soft_irqchip_take(struct soft_vcpu *v, bool window_open, bool if_set)
{
    struct soft_irqchip *c = v->vm->chip;
    __atomic_store_n(&v->irq_kick, 0, __ATOMIC_RELAXED);
    if (!c || !c->have_chip)
        return -1;
    pthread_mutex_lock(&c->lock);
    struct soft_lapic *a = soft_chip_lapic_of(c, v->id);
    uint64_t now = soft_chip_now_ns();
    soft_lapic_timer_poll(a, now);
    pit_poll(c, now, v);
    int vec = -1;
    bool pending = false;
    if (c->pic.output && soft_lapic_accepts_pic(a)) {
        pending = true;
        if (window_open)
            vec = soft_pic_ack(&c->pic);
    } else {
        int p = soft_lapic_pending(a);
        if (p >= 0) {
            pending = true;
            if (window_open) {
                soft_lapic_ack(a, p);
                vec = p;
            }
        }
    }
    /* A software-disabled APIC accepts no fixed interrupt and keeps its LVTs masked: its page's writes let none in. */
    bool cut_mem = (soft_lapic_enabled(a) && !(a->apic_base & APIC_BASE_MSR_EXTD)) || ioapic_holds_line(&c->ioapic);
    if (cut_mem != v->tb_cut_mem) { /* blocks translated the other way are dropped */
        v->tb_cut_mem = cut_mem;
        uc_ctl_flush_tb(v->uc);
    }
    v->irq_want = pending && vec < 0;
    if (v->irq_want && if_set) /* only the STI/MOV SS shadow holds it back: look again at the next block */
        __atomic_store_n(&v->irq_kick, 1, __ATOMIC_RELAXED);
    soft_chip_update_deadline(v, a, now);
    pthread_mutex_unlock(&c->lock);
    return vec;
}

int soft_irqchip_halt_wait(struct soft_vcpu *v)
{
    struct soft_irqchip *c = v->vm->chip;
    int fd = c->wake_fd[v->id];
    for (;;) {
        if (__atomic_load_n(&v->run->immediate_exit, __ATOMIC_RELAXED))
            return -EINTR;
        uint64_t junk;
        while (read(fd, &junk, sizeof junk) == sizeof junk) {
        }
        pthread_mutex_lock(&c->lock);
        struct soft_lapic *a = soft_chip_lapic_of(c, v->id);
        uint64_t now = soft_chip_now_ns();
        soft_lapic_timer_poll(a, now);
        pit_poll(c, now, v);
        bool pending = (c->pic.output && soft_lapic_accepts_pic(a)) || soft_lapic_pending(a) >= 0;
        uint64_t due = a->expire_ns;
        if (c->have_pit && c->pit.expire_ns && (!due || c->pit.expire_ns < due))
            due = c->pit.expire_ns;
        uint64_t wait = 50000000; /* ns: immediate_exit set without a signal is seen within this */
        if (due && (due <= now || due - now < wait))
            wait = due > now ? due - now : 0;
        pthread_mutex_unlock(&c->lock);
        if (__atomic_load_n(&v->smm.pending, __ATOMIC_ACQUIRE) && !v->smm.in_smm)
            return 0; /* an SMI wakes it (kvm_vcpu_has_events) */
        /* A halted vCPU wakes for an interrupt it can take (KVM: kvm_arch_interrupt_allowed). */
        if (pending && (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_IF))
            return 0;
        if (due && soft_deterministic()) { /* guest time only moves when the guest runs: jump to the timer */
            soft_icount_warp((uint64_t)((unsigned __int128)due * soft_tsc_khz() / 1000000u));
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u), .tv_nsec = (long)(wait % 1000000000u)};
        if (ppoll(&p, 1, &ts, NULL) < 0 && errno == EINTR)
            return -EINTR;
    }
}
