/* Lab 6 tests' shared helpers: guest runs with parameters, a host thread that pauses or re-publishes, the results. */
#ifndef TESTS_LAB6_UTIL_H
#define TESTS_LAB6_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "device.h"
#include "harness.h"
#include "lab6-pvclock/lab6.h"

#define LAB6_PROBE_PORT 0x5f0 /* the test's own device: no guest touches it; it sees pauses and the VM's end */

enum lab6_host_action {
    LAB6_HOST_NONE,
    LAB6_HOST_PAUSE,     /* at half the reads, pause the VM for pause_ms */
    LAB6_HOST_REPUBLISH, /* from half the reads, re-publish the page as fast as possible from this thread */
    LAB6_HOST_MIGRATE,   /* at half the reads, pause the VM for pause_ms and move it to a TSC of tsc_khz */
};

/* A lab 6 guest run: parameters in, results and the page as the guest left them out. */
struct lab6_run {
    struct mvm_pvclock_params params; /* in: magic, reads, flags; out: the guest's results */
    enum lab6_host_action action;
    uint32_t pause_ms;
    bool clock_runs;
    uint32_t tsc_khz;              /* LAB6_HOST_MIGRATE's new rate */
    struct mvm_steal_params steal; /* lab6/steal's parameters in, its results out */
    /* Out: */
    struct pvclock_vcpu_time_info page;
    uint64_t publishes;  /* LAB6_HOST_REPUBLISH: pages written by the test's thread */
    int pauses, resumes; /* the device pause op calls seen */
    /* Inside: */
    struct mvm_vm *vm;
    pthread_t thread;
    bool thread_started;
    volatile int stop;
};

static inline struct mvm_pvclock_params *lab6_params(struct lab6_run *r)
{
    return vm_gpa_to_hva(r->vm, MVM_PVCLOCK_PARAMS_GPA, sizeof(struct mvm_pvclock_params));
}

static inline void lab6_sleep_ms(unsigned ms)
{
    struct timespec d = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&d, &d) < 0 && errno == EINTR)
        ;
}

static inline uint64_t lab6_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits until the guest has done half its reads (or the test is over). */
static inline bool lab6_wait_half(struct lab6_run *r, volatile struct mvm_pvclock_params *p)
{
    while (!r->stop && p->done < p->reads / 2)
        lab6_sleep_ms(1);
    return !r->stop;
}

/*
 * The re-publishing thread: the clock's line stays the same, but its point
 * alternates between (T0, S0) and (T0 + D, S0 + scale(D)), D a millisecond of
 * TSC ticks. A read that mixes two publishes is off by a millisecond, which
 * the guest sees as time going backwards. The student's publish writes.
 */
static inline void lab6_republish(struct lab6_run *r, volatile struct mvm_pvclock_params *p)
{
    volatile struct pvclock_vcpu_time_info *ti;
    struct lab6_clock a, b;
    uint64_t d;

    ti = vm_gpa_to_hva(r->vm, p->page_gpa, sizeof(*ti));
    if (!ti)
        return;
    a = (struct lab6_clock){.tsc_timestamp = ti->tsc_timestamp,
                            .system_time = ti->system_time,
                            .mul = ti->tsc_to_system_mul,
                            .shift = ti->tsc_shift,
                            .flags = ti->flags};
    /* ns -> ticks for 1 ms, from the page's own scale: the point moves by whole ticks along the line. */
    d = 1;
    while (d < (1ull << 40) && lab6_scale_delta(d, a.mul, a.shift) < 1000000)
        d <<= 1;
    b = a;
    b.tsc_timestamp = a.tsc_timestamp + d;
    b.system_time = a.system_time + lab6_scale_delta(d, a.mul, a.shift);
    /* (T0 + D) must lie in the guest's past: 20 ms of real time pass first, and the TSC counts real time. */
    lab6_sleep_ms(20);
    /*
     * Publishes at a varying pace (a spin of 0..127 pauses between two), so they land at every point of a read;
     * 300000 of them, or as many as fit in a second where the host is slow (real KVM inside QEMU's TCG).
     */
    uint64_t end = lab6_mono_ns() + 1000000000ull;

    for (uint64_t i = 0; !r->stop && i < 300000 && ((i & 1023) || lab6_mono_ns() < end); i++) {
        lab6_pvclock_publish(ti, (i & 1) ? &b : &a);
        r->publishes++;
        for (uint64_t k = (i * 37) & 127; k; k--)
            __builtin_ia32_pause();
    }
    p->go = 1;
}

static inline void *lab6_host_thread(void *arg)
{
    struct lab6_run *r = arg;
    volatile struct mvm_pvclock_params *p = lab6_params(r);

    if (!p || !lab6_wait_half(r, p))
        return NULL;
    if (r->action == LAB6_HOST_PAUSE)
        vcpu_pause_request(vm_vcpu_get(r->vm, 0), r->pause_ms, r->clock_runs);
    else if (r->action == LAB6_HOST_MIGRATE && r->tsc_khz)
        vcpu_pause_migrate(vm_vcpu_get(r->vm, 0), r->pause_ms, r->clock_runs, r->tsc_khz);
    else
        lab6_republish(r, p);
    return NULL;
}

/* The test's device: pause and resume seen; at resume, the guest may finish (go). */
static inline int probe_pause(struct mvm_device *dev, struct mvm_vcpu *vcpu, bool resume, bool clock_runs,
                              uint64_t paused_ns)
{
    struct lab6_run *r = dev->priv;
    struct mvm_pvclock_params *p = lab6_params(r);

    (void)vcpu;
    (void)clock_runs;
    (void)paused_ns;
    if (!resume) {
        r->pauses++;
    } else {
        r->resumes++;
        if (p)
            p->go = 1;
    }
    return 0;
}

/* The VM ends: stop the thread, then copy out the results and the page while guest memory is still there. */
static inline void probe_destroy(struct mvm_device *dev)
{
    struct lab6_run *r = dev->priv;
    struct mvm_pvclock_params *p = lab6_params(r);
    void *page;

    r->stop = 1;
    if (r->thread_started)
        pthread_join(r->thread, NULL);
    r->thread_started = false;
    if (p) {
        r->params = *p;
        vm_read(r->vm, MVM_STEAL_PARAMS_GPA, &r->steal, sizeof(r->steal));
        page = vm_gpa_to_hva(r->vm, p->page_gpa, sizeof(r->page));
        if (page)
            memcpy(&r->page, page, sizeof(r->page));
    }
}

static inline int probe_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)vcpu;
    (void)off;
    memset(data, 0xff, len);
    return 0;
}

static const struct mvm_device_ops lab6_probe_ops = {
    .name = "lab 6 test probe",
    .read = probe_read,
    .pause = probe_pause,
    .destroy = probe_destroy,
};

static inline int lab6_hook(struct mvm_vm *vm, void *opaque)
{
    struct lab6_run *r = opaque;
    int rc;

    r->vm = vm;
    r->params.magic = MVM_PVCLOCK_PARAMS_MAGIC;
    if (r->action != LAB6_HOST_NONE)
        r->params.flags |= MVM_PVC_P_WAIT;
    rc = vm_write(vm, MVM_PVCLOCK_PARAMS_GPA, &r->params, sizeof(r->params));
    if (rc == 0)
        rc = vm_write(vm, MVM_STEAL_PARAMS_GPA, &r->steal, sizeof(r->steal));
    if (rc == 0)
        rc = vm_device_add(vm, &lab6_probe_ops, MVM_BUS_PIO, LAB6_PROBE_PORT, 1, r, NULL);
    if (rc == 0 && r->action != LAB6_HOST_NONE) {
        rc = -pthread_create(&r->thread, NULL, lab6_host_thread, r);
        r->thread_started = rc == 0;
    }
    return rc;
}

/*
 * A new vCPU's TSC rate on the backend under test (KVM_GET_TSC_KHZ: the host's), from a VM of its own: a vCPU
 * ioctl on the running vCPU from another thread would wait for its KVM_RUN to return (KVM's vCPU mutex). 0 on
 * failure.
 */
static inline uint32_t lab6_host_tsc_khz(void)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu;
    int khz = -1;

    if (mvm_backend_pick(harness_backend_name(), &be) == 0 && vm_create(be, &vm) == 0 && vcpu_create(vm, 0, &vcpu) == 0)
        khz = vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL, "KVM_GET_TSC_KHZ");
    if (vm)
        vm_destroy(vm);
    return khz > 0 ? (uint32_t)khz : 0;
}

/* Runs lab6/clock in long mode with r's parameters and host action; r->params and r->page hold what it left. */
static inline void lab6_run_clock(struct lab6_run *r, struct guest_run *run)
{
    harness_run_guest_mode("lab6/clock", HARNESS_MODE_LONG, lab6_hook, r, run);
    r->vm = NULL;
}

/* The same for another lab 6 guest (lab6/steal: r->steal holds its results). */
static inline void lab6_run_guest(struct lab6_run *r, const char *guest, struct guest_run *run)
{
    harness_run_guest_mode(guest, HARNESS_MODE_LONG, lab6_hook, r, run);
    r->vm = NULL;
}

/*
 * Steps lab6_steal_publish(st, add) over a page holding `old` (version and steal) one instruction at a time:
 * while the version is even, steal must be the old value (old version) or the new one (the final version);
 * the version must pass through odd. On failure the test fails naming what was seen.
 */
struct lab6_ss_steal {
    volatile struct kvm_steal_time *st;
    uint32_t old_version, final_version;
    uint64_t old_steal, new_steal;
    unsigned steps;
    bool saw_odd;
    char why[300];
};
static struct lab6_ss_steal *lab6_ss_steal_cur;

static inline void lab6_ss_steal_trap(int sig, siginfo_t *si, void *ctx)
{
    struct lab6_ss_steal *s = lab6_ss_steal_cur;
    uint32_t v = s->st->version;
    uint64_t steal = s->st->steal;

    (void)sig;
    (void)si;
    (void)ctx;
    s->steps++;
    if (s->why[0])
        return;
    if (v & 1)
        s->saw_odd = true;
    else if (v == s->old_version && steal != s->old_steal)
        snprintf(s->why, sizeof(s->why),
                 "at instruction %u steal was %llu while the version was still %u (even, the "
                 "old one): a guest reading then takes a half-done update for a finished one",
                 s->steps, (unsigned long long)steal, v);
    else if (v == s->final_version && steal != s->new_steal)
        snprintf(s->why, sizeof(s->why),
                 "at instruction %u the version was already %u (even, final) but steal was "
                 "%llu, not %llu",
                 s->steps, v, (unsigned long long)steal, (unsigned long long)s->new_steal);
    else if (v != s->old_version && v != s->final_version)
        snprintf(s->why, sizeof(s->why),
                 "at instruction %u the version was %u: from %u it must go to %u (odd) then "
                 "%u (even), nothing else",
                 s->steps, v, s->old_version, s->final_version - 1, s->final_version);
}

static inline void lab6_steal_checked(uint32_t version, uint64_t steal, uint64_t add, const char *what)
{
    static struct kvm_steal_time page __attribute__((aligned(64)));
    struct sigaction sa, prev;
    struct lab6_ss_steal s;

    memset(&s, 0, sizeof(s));
    memset(&page, 0, sizeof(page));
    page.version = version;
    page.steal = steal;
    page.flags = 0x5a5a5a5a; /* not the writer's: must stay */
    s.st = &page;
    s.old_version = version;
    s.final_version = ((version + 1) | 1) + 1;
    s.old_steal = steal;
    s.new_steal = steal + add;
    lab6_ss_steal_cur = &s;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = lab6_ss_steal_trap;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTRAP, &sa, &prev);
    __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
    lab6_steal_publish(&page, add);
    __asm__ volatile("pushfq; andq $~0x100, (%%rsp); popfq" ::: "memory", "cc");
    sigaction(SIGTRAP, &prev, NULL);
    if (s.why[0])
        fail_msg("%s: lab6_steal_publish broke the version protocol: %s", what, s.why);
    if (page.version != s.final_version || page.steal != s.new_steal || page.flags != 0x5a5a5a5a)
        fail_msg("%s: after lab6_steal_publish(+%llu) over version %u, steal %llu, the page must hold version %u "
                 "((v + 1) | 1, then + 1) and steal %llu, other fields untouched; it holds version %u, steal %llu, "
                 "flags 0x%x",
                 what, (unsigned long long)add, version, (unsigned long long)steal, s.final_version,
                 (unsigned long long)s.new_steal, page.version, (unsigned long long)page.steal, page.flags);
    if (!s.saw_odd)
        fail_msg("%s: the version was never odd during lab6_steal_publish (%u instructions stepped): the guest "
                 "cannot tell an update in progress from a finished one",
                 what, s.steps);
}

/*
 * True (with the reason printed) where the backend under test is KVM-PVM (a loaded kvm_pvm module): a
 * paravirtual KVM without SVM/VMX, not KVM's behaviour for `what`; KVM inside QEMU is the reference there.
 */
static inline bool lab6_kvm_pvm(const char *what)
{
    if (strcmp(harness_backend_name(), "kvm") || access("/sys/module/kvm_pvm", F_OK) != 0)
        return false;
    printf("skipped: /dev/kvm is KVM-PVM, which does not do %s as KVM does (KVM inside QEMU does)\n", what);
    return true;
}

/* Reads for a test loop: soft_reads on the soft backend; 20000 where RDTSC itself may trap (KVM-PVM: ~50 us). */
static inline uint64_t lab6_reads(uint64_t soft_reads)
{
    const struct mvm_backend *be;

    if (mvm_backend_pick(harness_backend_name(), &be) == 0 && !strcmp(be->name, "soft"))
        return soft_reads;
    return 20000;
}

/* The exits lab6/clock makes: 4 doorbell OUTs (3 refused requests, 1 page), one OUT per console byte, the DONE. */
static inline void lab6_expect_exits(const struct guest_run *run, const char *what)
{
    int doorbell = harness_count_exits(run, "IO out port=0x0510 size=4");
    unsigned long long want = 4 + run->console_len + 1;

    if (doorbell != 4 || run->res.exits != want || run->res.by_reason[KVM_EXIT_MMIO] != 0)
        fail_msg("%s: reading the pvclock page must take no exit: expected exactly %llu exits (4 doorbell OUTs, "
                 "%zu console bytes, the DONE ucall), got %llu (%d doorbell, %llu MMIO):\n%s",
                 what, want, run->console_len, (unsigned long long)run->res.exits, doorbell,
                 (unsigned long long)run->res.by_reason[KVM_EXIT_MMIO], run->exits);
}

/*
 * Single-steps lab6_pvclock_publish(ti, c) with the trap flag and checks
 * the page after every instruction: while the version is even, the fields
 * are all the old ones (version unchanged) or all the new ones (version + 2
 * after an odd one). On failure, *why says what was seen and at which step.
 */
struct lab6_ss {
    volatile struct pvclock_vcpu_time_info *ti;
    struct pvclock_vcpu_time_info old, want;
    uint32_t final_version;
    unsigned steps;
    bool saw_odd;
    char why[300];
};
static struct lab6_ss *lab6_ss_cur;

static inline bool lab6_fields_eq(const struct pvclock_vcpu_time_info *a, const struct pvclock_vcpu_time_info *b)
{
    return a->tsc_timestamp == b->tsc_timestamp && a->system_time == b->system_time &&
           a->tsc_to_system_mul == b->tsc_to_system_mul && a->tsc_shift == b->tsc_shift && a->flags == b->flags;
}

static inline void lab6_ss_trap(int sig, siginfo_t *si, void *ctx)
{
    struct lab6_ss *s = lab6_ss_cur;
    struct pvclock_vcpu_time_info now;

    (void)sig;
    (void)si;
    (void)ctx;
    memcpy(&now, (const void *)s->ti, sizeof(now));
    s->steps++;
    if (s->why[0])
        return;
    if (now.version & 1) {
        s->saw_odd = true;
    } else if (now.version == s->old.version) {
        if (!lab6_fields_eq(&now, &s->old))
            snprintf(s->why, sizeof(s->why),
                     "at instruction %u a field had changed while the version was still %u (even, the old one): "
                     "a guest reading then takes a half-written page for a whole one",
                     s->steps, now.version);
    } else if (now.version == s->final_version) {
        if (!lab6_fields_eq(&now, &s->want))
            snprintf(s->why, sizeof(s->why),
                     "at instruction %u the version was already %u (even, final) but not every field held its "
                     "new value",
                     s->steps, now.version);
        else if (!s->saw_odd)
            snprintf(s->why, sizeof(s->why), "the version went from %u to %u without ever being odd while writing",
                     s->old.version, now.version);
    } else {
        snprintf(s->why, sizeof(s->why),
                 "at instruction %u the version was %u: from %u it must go to %u (odd) then %u (even), nothing else",
                 s->steps, now.version, s->old.version, s->final_version - 1, s->final_version);
    }
}

/* Publishes c over a page holding `old`, single-stepped; fails the test with the first violation. */
static inline void lab6_publish_checked(const struct pvclock_vcpu_time_info *old, const struct lab6_clock *c,
                                        const char *what)
{
    static struct pvclock_vcpu_time_info page __attribute__((aligned(64)));
    struct sigaction sa, prev;
    struct lab6_ss s;

    memset(&s, 0, sizeof(s));
    page = *old;
    s.ti = &page;
    s.old = *old;
    s.want = (struct pvclock_vcpu_time_info){.tsc_timestamp = c->tsc_timestamp,
                                             .system_time = c->system_time,
                                             .tsc_to_system_mul = c->mul,
                                             .tsc_shift = c->shift,
                                             .flags = c->flags};
    s.final_version = ((old->version + 1) | 1) + 1;
    s.want.version = s.final_version;
    lab6_ss_cur = &s;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = lab6_ss_trap;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTRAP, &sa, &prev);
    __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
    lab6_pvclock_publish(&page, c);
    __asm__ volatile("pushfq; andq $~0x100, (%%rsp); popfq" ::: "memory", "cc");
    sigaction(SIGTRAP, &prev, NULL);
    if (s.why[0])
        fail_msg("%s: lab6_pvclock_publish broke the version protocol: %s", what, s.why);
    if (page.version != s.final_version || !lab6_fields_eq(&page, &s.want))
        fail_msg("%s: after lab6_pvclock_publish the page must hold version %u (from %u: (v + 1) | 1, then + 1) and "
                 "the new fields (tsc_timestamp %llu, system_time %llu, mul %u, shift %d, flags %u); it holds "
                 "version %u, tsc_timestamp %llu, system_time %llu, mul %u, shift %d, flags %u",
                 what, s.final_version, old->version, (unsigned long long)c->tsc_timestamp,
                 (unsigned long long)c->system_time, c->mul, c->shift, c->flags, page.version,
                 (unsigned long long)page.tsc_timestamp, (unsigned long long)page.system_time, page.tsc_to_system_mul,
                 page.tsc_shift, page.flags);
    if (!s.saw_odd)
        fail_msg("%s: the version was never odd during lab6_pvclock_publish (%u instructions stepped): the guest "
                 "cannot tell a page being written from a finished one",
                 what, s.steps);
}

#endif
