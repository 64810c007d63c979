/* The soft backend's irqchip ioctls (KVM's irqchip, irqfd and ioeventfd ioctls), vCPU set-up, and teardown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "soft_irqchip_priv.h"

static void *irqfd_main(void *arg)
{
    struct soft_irqchip *c = arg;
    for (;;) {
        struct pollfd p[SOFT_MAX_IRQFD + 1];
        uint32_t gsi[SOFT_MAX_IRQFD + 1];
        int n = 0;
        pthread_mutex_lock(&c->lock);
        if (c->irqfd_stop) {
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
        while (c->ndead)
            close(c->dead_fd[--c->ndead]);
        p[n++] = (struct pollfd){.fd = c->irqfd_ctl, .events = POLLIN};
        for (int i = 0; i < c->nirqfd; i++) {
            gsi[n] = c->irqfd[i].gsi;
            p[n++] = (struct pollfd){.fd = c->irqfd[i].fd, .events = POLLIN};
        }
        pthread_mutex_unlock(&c->lock);
        if (poll(p, (nfds_t)n, -1) < 0)
            continue;
        uint64_t x;
        if (p[0].revents & POLLIN) {
            if (read(c->irqfd_ctl, &x, sizeof x) < 0) {
                /* drained */
            }
        }
        for (int i = 1; i < n; i++) {
            if (!(p[i].revents & POLLIN) || read(p[i].fd, &x, sizeof x) != sizeof x)
                continue;
            pthread_mutex_lock(&c->lock);
            soft_chip_set_gsi(c, gsi[i], true, NULL); /* irqfd_inject: an edge */
            soft_chip_set_gsi(c, gsi[i], false, NULL);
            pthread_mutex_unlock(&c->lock);
        }
    }
}

/* Our own reference to the VMM's eventfd, as KVM takes one (eventfd_ctx_fdget): -EBADF when fd is no eventfd. */
static int dup_eventfd(int fd)
{
    char path[64], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(path, target, sizeof target - 1) : -1;
    if (n < 0)
        return -EBADF;
    target[n] = '\0';
    if (strcmp(target, "anon_inode:[eventfd]") != 0)
        return -EBADF;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return d < 0 ? -errno : d;
}

static int irqfd_ioctl(struct soft_irqchip *c, const struct kvm_irqfd *f)
{
    if (f->flags & ~(uint32_t)KVM_IRQFD_FLAG_DEASSIGN) {
        soft_set_error("soft backend: KVM_IRQFD flags 0x%x: only KVM_IRQFD_FLAG_DEASSIGN (no resample fds)", f->flags);
        return -EINVAL;
    }
    if (!c->have_chip)
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&c->lock);
    if (f->flags & KVM_IRQFD_FLAG_DEASSIGN) {
        r = -ENOENT;
        for (int i = 0; i < c->nirqfd; i++) {
            if (c->irqfd[i].gsi != f->gsi)
                continue;
            if (c->irqfd_running && c->ndead < (int)(sizeof c->dead_fd / sizeof c->dead_fd[0]))
                c->dead_fd[c->ndead++] = c->irqfd[i].fd; /* the thread may be polling it: it closes it */
            else
                close(c->irqfd[i].fd);
            c->irqfd[i] = c->irqfd[--c->nirqfd];
            r = 0;
            break;
        }
    } else if (c->nirqfd == SOFT_MAX_IRQFD) {
        r = -ENOSPC;
    } else {
        int fd = dup_eventfd((int)f->fd);
        if (fd < 0)
            r = fd;
        else
            c->irqfd[c->nirqfd++] = (struct soft_irqfd){.gsi = f->gsi, .fd = fd};
    }
    if (r == 0 && !c->irqfd_running) {
        if (pthread_create(&c->irqfd_thread, NULL, irqfd_main, c) != 0)
            r = -EAGAIN;
        else
            c->irqfd_running = true;
    }
    pthread_mutex_unlock(&c->lock);
    uint64_t one = 1;
    if (r == 0 && write(c->irqfd_ctl, &one, sizeof one) < 0)
        r = -errno;
    return r;
}

static int ioeventfd_ioctl(struct soft_irqchip *c, const struct kvm_ioeventfd *f)
{
    uint32_t known = KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DEASSIGN;
    if (f->flags & ~known) {
        soft_set_error("soft backend: KVM_IOEVENTFD flags 0x%x not supported", f->flags);
        return -EINVAL;
    }
    bool pio = f->flags & KVM_IOEVENTFD_FLAG_PIO, dm = f->flags & KVM_IOEVENTFD_FLAG_DATAMATCH;
    /* kvm_ioeventfd's checks: a width of 0 (any, MMIO only, no datamatch), 1, 2, 4 or 8, and no wrap-around. */
    if ((f->len != 0 && f->len != 1 && f->len != 2 && f->len != 4 && f->len != 8) || f->addr + f->len < f->addr ||
        (f->len == 0 && (pio || dm)) || (pio && f->addr > 0xffff))
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&c->lock);
    int found = -1;
    for (int i = 0; i < c->nioev && found < 0; i++) {
        struct soft_ioeventfd *e = &c->ioev[i];
        if (e->pio == pio && e->addr == f->addr && e->len == f->len && e->datamatch == dm &&
            (!dm || e->data == f->datamatch))
            found = i;
    }
    if (f->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
        if (found < 0) {
            r = -ENOENT;
        } else {
            close(c->ioev[found].fd);
            c->ioev[found] = c->ioev[--c->nioev];
        }
    } else if (found >= 0) {
        r = -EEXIST;
    } else if (c->nioev == SOFT_MAX_IOEVENTFD) {
        r = -ENOSPC;
    } else {
        int fd = dup_eventfd(f->fd);
        if (fd < 0)
            r = fd;
        else
            c->ioev[c->nioev++] = (struct soft_ioeventfd){
                .addr = f->addr, .data = f->datamatch, .len = f->len, .pio = pio, .datamatch = dm, .fd = fd};
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* The VM's chip state, made on first use (KVM_CREATE_IRQCHIP or KVM_IOEVENTFD); vCPUs then ask it at every I/O. */
static struct soft_irqchip *chip_get(struct soft_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    struct soft_irqchip *c = vm->chip;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (c) {
            pthread_mutex_init(&c->lock, NULL);
            for (int i = 0; i < SOFT_MAX_VCPUS; i++)
                c->wake_fd[i] = -1;
            c->irqfd_ctl = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (c->irqfd_ctl < 0) {
                pthread_mutex_destroy(&c->lock);
                free(c);
                c = NULL;
            }
        }
        if (c) {
            c->ioapic.deliver = soft_chip_ioapic_deliver;
            c->ioapic.ctx = c;
            __atomic_store_n(&vm->chip, c, __ATOMIC_RELEASE);
            for (int i = 0; i < SOFT_MAX_VCPUS; i++)
                if (vm->vcpus[i])
                    vm->vcpus[i]->kio = true;
        }
    }
    pthread_mutex_unlock(&vm->lock);
    return c;
}

static int create_irqchip(struct soft_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    bool have_vcpus = false;
    for (int i = 0; i < SOFT_MAX_VCPUS; i++)
        have_vcpus |= vm->vcpus[i] != NULL;
    bool exists = vm->chip && vm->chip->have_chip;
    pthread_mutex_unlock(&vm->lock);
    if (exists)
        return -EEXIST;
    if (have_vcpus) {
        soft_set_error("soft backend: KVM_CREATE_IRQCHIP after KVM_CREATE_VCPU (KVM refuses it: create it first)");
        return -EINVAL;
    }
    struct soft_irqchip *c = chip_get(vm);
    if (!c)
        return -ENOMEM;
    pthread_mutex_lock(&c->lock);
    soft_pic_init(&c->pic);
    soft_ioapic_reset(&c->ioapic);
    c->have_chip = true;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int irqchip_get_set(struct soft_irqchip *c, struct kvm_irqchip *ic, bool set)
{
    if (!c || !c->have_chip)
        return -ENXIO;
    if (ic->chip_id > KVM_IRQCHIP_IOAPIC)
        return -EINVAL;
    pthread_mutex_lock(&c->lock);
    if (ic->chip_id == KVM_IRQCHIP_IOAPIC) {
        if (set) {
            uint32_t irr = ic->chip.ioapic.irr;
            c->ioapic.s = ic->chip.ioapic;
            c->ioapic.s.irr = 0;
            for (unsigned pin = 0; pin < SOFT_GSIS; pin++) /* kvm_ioapic_inject_all */
                if (irr & (1u << pin))
                    soft_ioapic_set_irq(&c->ioapic, pin, true, true);
        } else {
            memset(&ic->chip, 0, sizeof ic->chip);
            ic->chip.ioapic = c->ioapic.s;
        }
    } else if (set) {
        c->pic.pics[ic->chip_id] = ic->chip.pic;
        soft_pic_update(&c->pic);
    } else {
        memset(&ic->chip, 0, sizeof ic->chip);
        ic->chip.pic = c->pic.pics[ic->chip_id];
    }
    if (set)
        soft_chip_kick_all(c, NULL);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* The in-kernel 8254: KVM_CREATE_PIT2 (after KVM_CREATE_IRQCHIP), its state, and re-injection (accepted, unused). */
static int pit_ioctl(struct soft_vm *vm, struct soft_irqchip *c, unsigned long req, void *p)
{
    if (req == KVM_CREATE_PIT2) {
        const struct kvm_pit_config *cfg = p;
        if (!c || !c->have_chip) {
            soft_set_error("soft backend: KVM_CREATE_PIT2 needs the in-kernel irqchip (KVM_CREATE_IRQCHIP) first");
            return -ENOENT;
        }
        if (cfg->flags & ~(uint32_t)KVM_PIT_SPEAKER_DUMMY)
            return -EINVAL;
        pthread_mutex_lock(&c->lock);
        int r = c->have_pit ? -EEXIST : 0;
        if (!r) {
            soft_pit_reset(&c->pit, soft_chip_now_ns());
            c->pit_speaker = cfg->flags & KVM_PIT_SPEAKER_DUMMY;
            c->have_pit = true;
        }
        pthread_mutex_unlock(&c->lock);
        (void)vm;
        return r;
    }
    if (!c || !c->have_pit)
        return -ENXIO;
    if (req == KVM_REINJECT_CONTROL)
        return 0;
    pthread_mutex_lock(&c->lock);
    if (req == KVM_GET_PIT2) {
        memcpy(p, &c->pit.s, sizeof c->pit.s);
    } else {
        soft_pit_set_state(&c->pit, p, soft_chip_now_ns());
        soft_chip_kick_all(c, NULL); /* the deadline changed */
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/*
 * KVM_SET_GSI_ROUTING: the whole table replaced, checked as kvm_set_irq_routing does (irqchip pins in range, MSIs,
 * no GSI on two pins of one chip).
 */
static int set_routing(struct soft_irqchip *c, const struct kvm_irq_routing *rt)
{
    if (!c || !c->have_chip)
        return -EINVAL;
    if (rt->nr > SOFT_MAX_IRQ_ROUTES || rt->flags)
        return -EINVAL;
    struct kvm_irq_routing_entry *t = calloc(rt->nr ? rt->nr : 1, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (uint32_t i = 0; i < rt->nr; i++) {
        const struct kvm_irq_routing_entry *e = &rt->entries[i];
        bool ok = e->gsi < SOFT_MAX_IRQ_ROUTES;
        if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
            uint32_t max = e->u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC ? KVM_IOAPIC_NUM_PINS : 8;
            ok = ok && !e->flags && e->u.irqchip.irqchip <= KVM_IRQCHIP_IOAPIC && e->u.irqchip.pin < max;
            for (uint32_t k = 0; ok && k < i; k++)
                ok = !(t[k].gsi == e->gsi &&
                       (t[k].type != KVM_IRQ_ROUTING_IRQCHIP || t[k].u.irqchip.irqchip == e->u.irqchip.irqchip));
        } else if (e->type == KVM_IRQ_ROUTING_MSI) {
            ok = ok && !(e->flags & ~(uint32_t)KVM_MSI_VALID_DEVID);
            for (uint32_t k = 0; ok && k < i; k++)
                ok = t[k].gsi != e->gsi;
        } else {
            ok = false; /* adapter, Hyper-V, Xen routes: not on x86's soft backend */
        }
        if (!ok) {
            free(t);
            soft_set_error("soft backend: KVM_SET_GSI_ROUTING entry %u (GSI %u, type %u) refused as KVM refuses it", i,
                           e->gsi, e->type);
            return -EINVAL;
        }
        t[i] = *e;
    }
    pthread_mutex_lock(&c->lock);
    free(c->routes);
    c->routes = t;
    c->nroutes = rt->nr;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int soft_irqchip_vm_ioctl(struct soft_vm *vm, unsigned long req, unsigned long arg)
{
    struct soft_irqchip *c = __atomic_load_n(&vm->chip, __ATOMIC_ACQUIRE);
    void *p = (void *)arg;
    switch (req) {
    case KVM_CREATE_IRQCHIP:
        return create_irqchip(vm);
    case KVM_IRQ_LINE:
    case KVM_IRQ_LINE_STATUS: {
        if (!c || !c->have_chip)
            return -ENXIO;
        if (!p)
            return -EFAULT;
        struct kvm_irq_level *l = p;
        pthread_mutex_lock(&c->lock);
        int st = soft_chip_set_gsi(c, l->irq, l->level != 0, NULL);
        pthread_mutex_unlock(&c->lock);
        if (req == KVM_IRQ_LINE_STATUS)
            l->status = st;
        return 0;
    }
    case KVM_GET_IRQCHIP:
    case KVM_SET_IRQCHIP:
        if (!p)
            return -EFAULT;
        return irqchip_get_set(c, p, req == KVM_SET_IRQCHIP);
    case KVM_SIGNAL_MSI: {
        if (!p)
            return -EFAULT;
        const struct kvm_msi *m = p;
        if (!c || !c->have_chip || (m->flags & ~(uint32_t)KVM_MSI_VALID_DEVID))
            return -EINVAL;
        pthread_mutex_lock(&c->lock);
        int r = (m->data & 0xffff0000u)
                    ? -1
                    : soft_chip_send_msi(c, ((uint64_t)m->address_hi << 32) | m->address_lo, m->data);
        pthread_mutex_unlock(&c->lock);
        return r; /* KVM: >0 delivered, 0 blocked by the guest, -1 no destination */
    }
    case KVM_CREATE_PIT2:
    case KVM_GET_PIT2:
    case KVM_SET_PIT2:
    case KVM_REINJECT_CONTROL:
        if (!p)
            return -EFAULT;
        return pit_ioctl(vm, c, req, p);
    case KVM_SET_GSI_ROUTING:
        if (!p)
            return -EFAULT;
        return set_routing(c, p);
    case KVM_IRQFD:
        if (!p)
            return -EFAULT;
        if (!c)
            return -EINVAL;
        return irqfd_ioctl(c, p);
    case KVM_IOEVENTFD: {
        if (!p)
            return -EFAULT;
        if (!c && !(c = chip_get(vm)))
            return -ENOMEM;
        return ioeventfd_ioctl(c, p);
    }
    default:
        return -ENOTTY;
    }
}

int soft_irqchip_vcpu_ioctl(struct soft_vcpu *v, unsigned long req, void *arg)
{
    struct soft_irqchip *c = v->vm->chip;
    if (!arg)
        return -EFAULT;
    if (req == KVM_GET_MP_STATE || req == KVM_SET_MP_STATE) {
        struct kvm_mp_state *m = arg;
        if (req == KVM_GET_MP_STATE) {
            m->mp_state = v->halted ? KVM_MP_STATE_HALTED : KVM_MP_STATE_RUNNABLE;
            return 0;
        }
        /* Without an in-kernel local APIC only RUNNABLE; INIT and SIPI states are not emulated here. */
        if (m->mp_state != KVM_MP_STATE_RUNNABLE && (m->mp_state != KVM_MP_STATE_HALTED || v->wake_fd < 0))
            return -EINVAL;
        v->halted = m->mp_state == KVM_MP_STATE_HALTED;
        return 0;
    }
    if (!c || !c->have_chip)
        return -EINVAL;
    struct kvm_lapic_state *s = arg;
    pthread_mutex_lock(&c->lock);
    struct soft_lapic *a = soft_chip_lapic_of(c, v->id);
    uint64_t now = soft_chip_now_ns();
    if (req == KVM_GET_LAPIC) {
        soft_lapic_get_page(a, (uint8_t *)s->regs, now);
    } else {
        soft_lapic_set_page(a, (const uint8_t *)s->regs, now);
        soft_chip_update_deadline(v, a, now);
        __atomic_store_n(&v->irq_kick, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int soft_irqchip_vcpu_init(struct soft_vcpu *v)
{
    struct soft_irqchip *c = v->vm->chip;
    v->wake_fd = -1;
    if (!c)
        return 0;
    v->kio = true;
    if (!c->have_chip)
        return 0;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    pthread_mutex_lock(&c->lock);
    c->wake_fd[v->id] = fd;
    c->vcpu[v->id] = v;
    soft_lapic_reset(&c->lapic[v->id], (uint32_t)v->id, soft_vcpu_is_reset_bsp(v));
    c->lapic[v->id].apic_base = v->apic_base;
    pthread_mutex_unlock(&c->lock);
    v->wake_fd = fd;
    return 0;
}

void soft_irqchip_vcpu_fini(struct soft_vcpu *v)
{
    struct soft_irqchip *c = v->vm->chip;
    if (!c || v->wake_fd < 0)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->vcpu[v->id] == v) {
        c->vcpu[v->id] = NULL;
        c->wake_fd[v->id] = -1;
    }
    pthread_mutex_unlock(&c->lock);
    close(v->wake_fd);
    v->wake_fd = -1;
}

void soft_irqchip_vm_destroy(struct soft_vm *vm)
{
    struct soft_irqchip *c = vm->chip;
    if (!c)
        return;
    if (c->irqfd_running) {
        pthread_mutex_lock(&c->lock);
        c->irqfd_stop = true;
        pthread_mutex_unlock(&c->lock);
        uint64_t one = 1;
        if (write(c->irqfd_ctl, &one, sizeof one) < 0) {
            /* the thread still sees irqfd_stop within its next wake-up */
        }
        pthread_join(c->irqfd_thread, NULL);
    }
    for (int i = 0; i < c->nirqfd; i++)
        close(c->irqfd[i].fd);
    while (c->ndead)
        close(c->dead_fd[--c->ndead]);
    for (int i = 0; i < c->nioev; i++)
        close(c->ioev[i].fd);
    close(c->irqfd_ctl);
    free(c->routes);
    pthread_mutex_destroy(&c->lock);
    free(c);
    vm->chip = NULL;
}
