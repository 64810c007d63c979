/*
 * Lab 6 as a plug-in: the pvclock and steal-time hypercalls in the VM's table
 * (the guest names its pages), the trapping clock at MVM_CLOCK_MMIO_GPA for
 * comparison, and the pause hooks that move the clock (to a new TSC rate after
 * a migration) and count steal when the VM stops and resumes. Not a student file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "hypercall.h"
#include "lab6-pvclock/lab6.h"
#include "lab_plugin.h"

#ifndef MVM_LAB_FALLBACK
#define MSR_IA32_TSC 0x10

/* The clock of one VM (one vCPU's page: minivmm runs one vCPU). */
struct lab6_dev {
    struct lab6_clock clock;
    bool started;                               /* the clock has its line (first use) */
    uint64_t tsc_at_pause;                      /* guest TSC when the VM paused */
    volatile struct pvclock_vcpu_time_info *ti; /* the guest's page (hva), NULL when none */
    volatile struct kvm_steal_time *st;         /* the guest's steal-time page (hva), NULL when none */
    uint64_t st_gpa;                            /* where it is */
    uint64_t run_delay;                         /* the vCPU thread's run delay already counted as steal, ns */
};

/*
 * The guest TSC now, exactly (IA32_TSC through KVM_GET_MSRS: the guest is not
 * running, so it is an upper bound of every TSC value the guest has read and
 * a lower bound of every one it will read).
 */
static int guest_tsc_get(struct mvm_vcpu *vcpu, uint64_t *tsc)
{
    /* struct kvm_msrs ends in a flexible array: room for its one entry in a union, not a struct after it (ISO C). */
    union {
        struct kvm_msrs hdr;
        uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    } m;
    struct kvm_msr_entry *e = &m.hdr.entries[0];
    int rc;

    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    e->index = MSR_IA32_TSC;
    rc = vcpu_ioctl(vcpu, KVM_GET_MSRS, &m, "KVM_GET_MSRS(IA32_TSC)");
    if (rc >= 0 && rc != 1)
        return mvm_fail(EIO, "lab 6: KVM_GET_MSRS read %d of 1 MSR (IA32_TSC)", rc);
    if (rc < 0)
        return rc;
    *tsc = e->data;
    return 0;
}

/*
 * KVM's clock (KVM_GET_CLOCK, ns) and a guest TSC value at the same instant:
 * the middle of two exact guest TSC reads around it (the host's TSC would not
 * do: after a migration the guest's runs at another rate). Using KVM's own
 * clock as the base is what makes this clock agree with kvmclock.
 */
static int clock_sample(struct mvm_vcpu *vcpu, uint64_t *tsc, uint64_t *ns)
{
    struct kvm_clock_data c = {0};
    uint64_t g0 = 0, g1 = 0;
    int rc = guest_tsc_get(vcpu, &g0);

    if (rc == 0)
        rc = vm_ioctl(vcpu_vm(vcpu), KVM_GET_CLOCK, &c, "KVM_GET_CLOCK");
    if (rc == 0)
        rc = guest_tsc_get(vcpu, &g1);
    if (rc < 0)
        return rc;
    *tsc = g0 + (g1 - g0) / 2;
    *ns = c.clock;
    return 0;
}

/* The guest TSC's rate: KVM_GET_TSC_KHZ (the soft backend answers its own rate). */
static int tsc_hz_get(struct mvm_vcpu *vcpu, uint64_t *hz)
{
    int khz = vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL, "KVM_GET_TSC_KHZ");

    if (khz <= 0)
        return khz < 0 ? khz : mvm_fail(EIO, "lab 6: KVM_GET_TSC_KHZ answered 0");
    *hz = (uint64_t)khz * 1000;
    return 0;
}

/* The clock's line through (guest TSC now, KVM's clock now) at the TSC's rate, on first use. */
static int clock_start(struct mvm_vcpu *vcpu, struct lab6_dev *d)
{
    uint64_t tsc = 0, ns = 0, hz = 0;
    int rc;

    if (d->started)
        return 0;
    rc = tsc_hz_get(vcpu, &hz);
    if (rc == 0)
        rc = clock_sample(vcpu, &tsc, &ns);
    if (rc < 0)
        return rc;
    d->clock =
        (struct lab6_clock){.tsc_hz = hz, .tsc_timestamp = tsc, .system_time = ns, .flags = PVCLOCK_TSC_STABLE_BIT};
    lab6_tsc_scale(hz, &d->clock.mul, &d->clock.shift);
    d->started = true;
    return 0;
}

/* MVM_HC_PVCLOCK(gpa): the guest's page, 32-byte aligned in RAM; 0 stops publishing. */
static int hc_pvclock(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab6_dev *d = opaque;
    uint64_t gpa = args[0];
    void *hva;
    int rc;

    if (gpa == 0) {
        d->ti = NULL;
        *ret = 0;
        return 0;
    }
    if (gpa % 32) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    hva = vm_gpa_to_hva(vcpu_vm(vcpu), gpa, sizeof(struct pvclock_vcpu_time_info));
    if (!hva) {
        *ret = -MVM_HC_EFAULT;
        return 0;
    }
    rc = clock_start(vcpu, d);
    if (rc < 0)
        return rc;
    d->ti = hva;
    lab6_pvclock_publish(d->ti, &d->clock);
    *ret = 0;
    return 0;
}

/*
 * The calling thread's run delay in ns: the time it was runnable but waited for a CPU, the second field of
 * /proc/thread-self/schedstat (what KVM counts as steal). 0 where the kernel keeps no schedstat.
 */
static uint64_t run_delay_ns(void)
{
    unsigned long long run = 0, delay = 0;
    char buf[96];
    int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    return sscanf(buf, "%llu %llu", &run, &delay) == 2 ? delay : 0;
}

/* Brings the guest's steal-time page up to date: the run delay since the last update, plus add_ns. */
static void steal_update(struct lab6_dev *d, uint64_t add_ns)
{
    uint64_t delay;

    if (!d->st)
        return;
    delay = run_delay_ns();
    if (delay > d->run_delay) {
        add_ns += delay - d->run_delay;
        d->run_delay = delay;
    }
    lab6_steal_publish(d->st, add_ns);
}

/*
 * MVM_HC_STEAL(gpa): the guest's struct kvm_steal_time, 64-byte aligned in RAM; steal counts from now. The same
 * gpa again brings it up to date (the guest's one exit to ask); 0 stops it.
 */
static int hc_steal(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    struct lab6_dev *d = opaque;
    uint64_t gpa = args[0];
    void *hva;

    *ret = 0;
    if (gpa == 0) {
        d->st = NULL;
        return 0;
    }
    if (gpa % 64) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    if (d->st && gpa == d->st_gpa) {
        steal_update(d, 0);
        return 0;
    }
    hva = vm_gpa_to_hva(vcpu_vm(vcpu), gpa, sizeof(struct kvm_steal_time));
    if (!hva) {
        *ret = -MVM_HC_EFAULT;
        return 0;
    }
    d->st = hva;
    d->st_gpa = gpa;
    d->run_delay = run_delay_ns();
    lab6_steal_publish(d->st, 0);
    return 0;
}

/*
 * The trapping clock: an 8-byte read is the same clock, one KVM_EXIT_MMIO per read; writes are ignored. The
 * guest TSC is read exactly (IA32_TSC): after a migration it runs at another rate than the host's.
 */
static int clock_mmio_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct lab6_dev *d = dev->priv;
    uint64_t now, tsc = 0;
    int rc = clock_start(vcpu, d);

    if (rc == 0)
        rc = guest_tsc_get(vcpu, &tsc);
    if (rc < 0)
        return rc;
    now = lab6_clock_at(&d->clock, tsc);
    memset(data, 0, len);
    if (off < 8)
        memcpy(data, (const uint8_t *)&now + off, len < 8 - off ? len : 8 - off);
    return 0;
}

static int clock_mmio_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data,
                            uint32_t len)
{
    (void)dev;
    (void)vcpu;
    (void)off;
    (void)data;
    (void)len;
    return 0;
}

/*
 * Pause: note the guest TSC. Resume: read it again (and its rate, which a
 * migration may have changed), move the line (lab6_clock_resume) so guest
 * time goes on from where it stood, plus the pause when the clock runs, and
 * publish the page again. Steal: the run delay so far at the pause; at the
 * resume, the pause too when guest time jumps by it (time the guest lost;
 * when time stands still, the guest lost none).
 */
static int clock_pause(struct mvm_device *dev, struct mvm_vcpu *vcpu, bool resume, bool clock_runs, uint64_t paused_ns)
{
    struct lab6_dev *d = dev->priv;
    uint64_t tsc = 0, hz = 0;
    int rc;

    steal_update(d, resume && clock_runs ? paused_ns : 0);
    if (!d->started)
        return 0;
    rc = guest_tsc_get(vcpu, &tsc);
    if (rc == 0 && resume)
        rc = tsc_hz_get(vcpu, &hz);
    if (rc < 0)
        return rc;
    if (!resume) {
        d->tsc_at_pause = tsc;
        return 0;
    }
    lab6_clock_resume(&d->clock, d->tsc_at_pause, tsc, hz, clock_runs ? paused_ns : 0);
    if (d->ti)
        lab6_pvclock_publish(d->ti, &d->clock);
    return 0;
}

static const struct mvm_device_ops clock_ops = {
    .name = "pvclock and trapping clock (lab 6)",
    .read = clock_mmio_read,
    .write = clock_mmio_write,
    .pause = clock_pause,
};

static int lab6_vm_init(struct mvm_vm *vm)
{
    struct lab6_dev *d = calloc(1, sizeof(*d));
    int rc;

    if (!d)
        return mvm_fail(ENOMEM, "lab 6 clock: out of memory");
    rc = vm_device_add(vm, &clock_ops, MVM_BUS_MMIO, MVM_CLOCK_MMIO_GPA, MVM_CLOCK_MMIO_SIZE, d, NULL);
    if (rc == 0)
        rc = vm_hypercall_register(vm, MVM_HC_PVCLOCK, "pvclock", 1, hc_pvclock, d);
    if (rc == 0)
        rc = vm_hypercall_register(vm, MVM_HC_STEAL, "steal time", 1, hc_steal, d);
    return rc;
}
#endif

MVM_LAB_DEFINE(6, "lab6-pvclock", .vm_init = lab6_vm_init)

MVM_LAB_FORWARD(void, lab6_tsc_scale, (uint64_t tsc_hz, uint32_t *mul, int8_t *shift), (tsc_hz, mul, shift))
MVM_LAB_FORWARD(uint64_t, lab6_scale_delta, (uint64_t delta, uint32_t mul, int8_t shift), (delta, mul, shift))
MVM_LAB_FORWARD(uint64_t, lab6_clock_at, (const struct lab6_clock *c, uint64_t tsc), (c, tsc))
MVM_LAB_FORWARD(void, lab6_pvclock_publish, (volatile struct pvclock_vcpu_time_info * ti, const struct lab6_clock *c),
                (ti, c))
MVM_LAB_FORWARD(void, lab6_steal_publish, (volatile struct kvm_steal_time * st, uint64_t add_ns), (st, add_ns))
MVM_LAB_FORWARD(void, lab6_clock_resume,
                (struct lab6_clock * c, uint64_t tsc_at_pause, uint64_t tsc_now, uint64_t tsc_hz, uint64_t add_ns),
                (c, tsc_at_pause, tsc_now, tsc_hz, add_ns))
