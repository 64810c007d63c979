/* The run loop: KVM_RUN, the one exit switch, limits, and the canonical exit dump. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core_internal.h"
#include "device.h"
#include "kvm_api.h"
#include "trace.h"

static const char *const exit_names[] = {
    [KVM_EXIT_UNKNOWN] = "UNKNOWN",
    [KVM_EXIT_EXCEPTION] = "EXCEPTION",
    [KVM_EXIT_IO] = "IO",
    [KVM_EXIT_HYPERCALL] = "HYPERCALL",
    [KVM_EXIT_DEBUG] = "DEBUG",
    [KVM_EXIT_HLT] = "HLT",
    [KVM_EXIT_MMIO] = "MMIO",
    [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
    [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
    [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
    [KVM_EXIT_INTR] = "INTR",
    [KVM_EXIT_SET_TPR] = "SET_TPR",
    [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
    [KVM_EXIT_NMI] = "NMI",
    [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
    [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
    [KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
    [KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
};

const char *mvm_exit_name(uint32_t reason)
{
    if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
        return exit_names[reason];
    return "UNKNOWN";
}

static const char *const stop_names[] = {
    [MVM_STOP_NONE] = "running",
    [MVM_STOP_HLT] = "halted",
    [MVM_STOP_DONE] = "done",
    [MVM_STOP_ASSERT] = "guest assertion failed",
    [MVM_STOP_SHUTDOWN] = "shutdown (triple fault)",
    [MVM_STOP_INTERNAL_ERROR] = "internal error",
    [MVM_STOP_EXIT_LIMIT] = "exit limit reached",
    [MVM_STOP_TIME_LIMIT] = "time limit reached",
    [MVM_STOP_UNHANDLED] = "unhandled exit",
    [MVM_STOP_ERROR] = "VMM error",
    [MVM_STOP_KILLED] = "killed by the debugger",
};

const char *mvm_stop_name(enum mvm_stop stop)
{
    if ((unsigned)stop < sizeof(stop_names) / sizeof(stop_names[0]))
        return stop_names[stop];
    return "unknown stop";
}

static size_t hex_bytes(char *buf, size_t len, const uint8_t *data, size_t n)
{
    size_t used = 0;

    for (size_t i = 0; i < n && used + 3 <= len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%02x", data[i]);
    return used;
}

/* The I/O data of an IO exit lies inside the run page, or the exit is malformed. */
static bool io_data_in_page(const struct kvm_run *run, size_t run_size)
{
    uint64_t bytes = (uint64_t)run->io.size * run->io.count;

    return run->io.data_offset >= sizeof(*run) && run->io.data_offset <= run_size &&
           bytes <= run_size - run->io.data_offset;
}

void mvm_exit_format(const struct kvm_run *run, char *buf, size_t len)
{
    int n;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        n = snprintf(buf, len,
                     "IO %s port=0x%04x size=%u count=%u data=", run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
                     run->io.port, run->io.size, run->io.count);
        if (n > 0 && (size_t)n < len)
            hex_bytes(buf + n, len - (size_t)n, (const uint8_t *)run + run->io.data_offset,
                      (size_t)run->io.size * run->io.count);
        break;
    case KVM_EXIT_MMIO:
        n = snprintf(buf, len, "MMIO %s gpa=0x%016llx len=%u data=", run->mmio.is_write ? "write" : "read",
                     (unsigned long long)run->mmio.phys_addr, run->mmio.len);
        if (n > 0 && (size_t)n < len)
            hex_bytes(buf + n, len - (size_t)n, run->mmio.data, run->mmio.len <= 8 ? run->mmio.len : 8);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        snprintf(buf, len, "INTERNAL_ERROR suberror=%u", run->internal.suberror);
        break;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(buf, len, "FAIL_ENTRY reason=0x%llx",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
    default:
        snprintf(buf, len, "%s", mvm_exit_name(run->exit_reason));
        break;
    }
}

static int exit_mmio(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data))
        return mvm_fail(EINVAL, "KVM_EXIT_MMIO with length %u", run->mmio.len);
    return vm_mmio_dispatch(vcpu, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data, run->mmio.len);
}

static const char *const suberror_names[] = {
    [KVM_INTERNAL_ERROR_EMULATION] = "instruction emulation failed",
    [KVM_INTERNAL_ERROR_SIMUL_EX] = "an exception while delivering an exception",
    [KVM_INTERNAL_ERROR_DELIVERY_EV] = "event delivery failed",
    [KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON] = "an exit reason KVM did not expect",
};

/*
 * KVM_EXIT_INTERNAL_ERROR in words, the same on both backends: the suberror, the RIP and the instruction
 * bytes there (read through the VMM's own translation), and the backend's own reason where it has one.
 */
static void internal_error_detail(struct mvm_vcpu *vcpu, const struct kvm_run *run, struct mvm_run_result *res)
{
    const struct mvm_backend *be = vcpu->vm->be;
    const char *why = be->last_error ? be->last_error() : "";
    uint32_t sub = run->internal.suberror;
    char where[96] = "";
    struct kvm_regs regs;
    struct kvm_sregs sregs;

    if (vcpu_regs_get(vcpu, &regs) == 0 && vcpu_sregs_get(vcpu, &sregs) == 0) {
        uint8_t insn[15];
        size_t n = sizeof(insn), used;

        /* As many of the 15 bytes an instruction may have as can be read (the page after may be unmapped). */
        while (n > 0 && vm_read_gva(vcpu, sregs.cs.base + regs.rip, insn, n) < 0)
            n--;
        used = (size_t)snprintf(where, sizeof(where), " at rip 0x%llx", (unsigned long long)regs.rip);
        if (n > 0 && used < sizeof(where))
            used += (size_t)snprintf(where + used, sizeof(where) - used, " (bytes");
        for (size_t i = 0; i < n && used + 4 < sizeof(where); i++)
            used += (size_t)snprintf(where + used, sizeof(where) - used, " %02x", insn[i]);
        if (n > 0 && used < sizeof(where))
            snprintf(where + used, sizeof(where) - used, ")");
    }
    snprintf(res->detail, sizeof(res->detail), "KVM_EXIT_INTERNAL_ERROR suberror %u (%s)%s%s%.160s", sub,
             sub < sizeof(suberror_names) / sizeof(suberror_names[0]) && suberror_names[sub] ? suberror_names[sub]
                                                                                             : "unknown suberror",
             where, why[0] ? ": " : "", why);
}

/* The VM's lab ops handle the exits they claim (lab 1: IO and HLT); the core handles the rest. */
static int exit_default(struct mvm_vcpu *vcpu, struct kvm_run *run, struct mvm_run_result *res)
{
    mvm_exit_fn lab_fn = run->exit_reason < MVM_EXIT_REASONS ? vcpu->vm->lab.exit[run->exit_reason] : NULL;

    if (lab_fn)
        return lab_fn(vcpu, run);
    switch (run->exit_reason) {
    case KVM_EXIT_MMIO:
        return exit_mmio(vcpu, run);
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
        return 0;
    case KVM_EXIT_SHUTDOWN:
        snprintf(res->detail, sizeof(res->detail),
                 "KVM_EXIT_SHUTDOWN: the guest triple-faulted (an exception while delivering a double fault)");
        return MVM_STOP_SHUTDOWN;
    case KVM_EXIT_INTERNAL_ERROR:
        res->internal_suberror = run->internal.suberror;
        internal_error_detail(vcpu, run, res);
        return MVM_STOP_INTERNAL_ERROR;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(res->detail, sizeof(res->detail),
                 "KVM_EXIT_FAIL_ENTRY: hardware refused the guest state (reason 0x%llx); check sregs",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        return MVM_STOP_INTERNAL_ERROR;
    default:
        snprintf(res->detail, sizeof(res->detail), "unhandled exit reason %u (KVM_EXIT_%s): no lab handles it%s",
                 run->exit_reason, mvm_exit_name(run->exit_reason),
                 run->exit_reason != KVM_EXIT_IO && run->exit_reason != KVM_EXIT_HLT ? ""
                 : vcpu->vm->lab.kvm.exit_switch ? " (lab 1's exit switch must handle it, not pass it on)"
                                                 : " (lab 1 does)");
        return MVM_STOP_UNHANDLED;
    }
}

/*
 * The one exit switch: a lab's own exit switch where one teaches it (lab 1), which hands the reasons it
 * does not know to exit_default; else exit_default alone. Returns 0 to go on, MVM_STOP_* to stop, -errno
 * on VMM failure.
 */
static int exit_handle(struct mvm_vcpu *vcpu, struct kvm_run *run, struct mvm_run_result *res)
{
    if (run->exit_reason == KVM_EXIT_IO && !io_data_in_page(run, vcpu->run_size))
        return mvm_fail(EINVAL, "KVM_EXIT_IO data (offset %llu, %u x %u bytes) lies outside the run page",
                        (unsigned long long)run->io.data_offset, run->io.count, run->io.size);
    if (vcpu->vm->lab.kvm.exit_switch)
        return vcpu->vm->lab.kvm.exit_switch(vcpu, run);
    return exit_default(vcpu, run, res);
}

int vcpu_exit_default(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    static _Thread_local struct mvm_run_result scratch;

    if (run != vcpu->run)
        return mvm_fail(EINVAL, "vcpu_exit_default: run is not this vCPU's kvm_run page");
    return exit_default(vcpu, run, vcpu->res ? vcpu->res : &scratch);
}

/* The wall-time limit: SIGALRM sets immediate_exit, which ends KVM_RUN with -EINTR on both backends. */
static struct kvm_run *volatile timed_run;
static volatile sig_atomic_t time_expired;

static void on_alarm(int sig)
{
    (void)sig;
    time_expired = 1;
    if (timed_run)
        timed_run->immediate_exit = 1;
}

static void timer_arm(struct kvm_run *run, uint32_t ms, struct sigaction *old)
{
    struct sigaction sa;
    struct itimerval it = {0};

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, old); /* no SA_RESTART: KVM_RUN must return -EINTR */
    time_expired = 0;
    timed_run = run;
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    /* Re-fire in case the first signal lands between the check and KVM_RUN's entry. */
    it.it_interval.tv_usec = 10000;
    setitimer(ITIMER_REAL, &it, NULL);
}

static void timer_disarm(const struct sigaction *old)
{
    struct itimerval it = {0};

    setitimer(ITIMER_REAL, &it, NULL);
    timed_run = NULL;
    sigaction(SIGALRM, old, NULL);
}

/* The signal that kicks a vCPU's thread out of KVM_RUN for a pause asked from another thread: it only interrupts. */
#define PAUSE_KICK_SIGNAL (SIGRTMIN + 3)

static void on_kick(int sig)
{
    (void)sig;
}

static void kick_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    sigaction(PAUSE_KICK_SIGNAL, &sa, NULL); /* no SA_RESTART: KVM_RUN must return -EINTR */
}

void vcpu_pause_request(struct mvm_vcpu *vcpu, uint32_t ms, bool clock_runs)
{
    vcpu_pause_migrate(vcpu, ms, clock_runs, 0);
}

void vcpu_pause_migrate(struct mvm_vcpu *vcpu, uint32_t ms, bool clock_runs, uint32_t tsc_khz)
{
    if (!vcpu || !vcpu->running)
        return;
    vcpu->pause_khz = (sig_atomic_t)(tsc_khz > 0x7fffffff ? 0x7fffffff : tsc_khz);
    vcpu->pause_runs = clock_runs;
    vcpu->pause_resume = 0;
    vcpu->pause_ms = ms ? (sig_atomic_t)(ms > 0x7fffffff ? 0x7fffffff : ms) : 1;
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (!pthread_equal(pthread_self(), vcpu->thread))
        pthread_kill(vcpu->thread, PAUSE_KICK_SIGNAL);
}

void vcpu_debug_break(struct mvm_vcpu *vcpu)
{
    if (!vcpu || !vcpu->running)
        return;
    vcpu->debug_break = 1;
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (!pthread_equal(pthread_self(), vcpu->thread))
        pthread_kill(vcpu->thread, PAUSE_KICK_SIGNAL);
}

void vcpu_pause_resume(struct mvm_vcpu *vcpu)
{
    if (vcpu)
        vcpu->pause_resume = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct pause_arg {
    struct mvm_vcpu *vcpu;
    bool resume, clock_runs;
    uint64_t paused_ns;
};

static int device_pause(struct mvm_device *dev, void *arg)
{
    struct pause_arg *p = arg;

    return dev->ops->pause ? dev->ops->pause(dev, p->vcpu, p->resume, p->clock_runs, p->paused_ns) : 0;
}

/* The pause vcpu_pause_request asked for, between two KVM_RUNs. 0 or -errno with a message. */
static int vcpu_pause_take(struct mvm_vcpu *vcpu, struct mvm_run_result *res)
{
    struct pause_arg p = {.vcpu = vcpu, .clock_runs = vcpu->pause_runs != 0};
    uint64_t ms = (uint64_t)vcpu->pause_ms, t0 = mono_ns(), end = t0 + ms * 1000000u, now;
    uint32_t tsc_khz = (uint32_t)vcpu->pause_khz;
    struct kvm_clock_data clock = {0};
    int rc;

    vcpu->pause_ms = 0;
    vcpu->pause_khz = 0;
    rc = vm_devices_each(vcpu->vm, device_pause, &p);
    if (rc == 0 && !p.clock_runs)
        rc = MVM_IOCTL(vcpu->vm->be, vcpu->vm->fd, KVM_GET_CLOCK, &clock);
    if (rc == 0 && tsc_khz)
        rc = vcpu_tsc_khz_set(vcpu, tsc_khz); /* a migration: the VM resumes at another TSC rate */
    /* In slices of at most 10 ms, so that vcpu_pause_resume from any thread or signal handler ends it soon. */
    while (!time_expired && !vcpu->pause_resume && (now = mono_ns()) < end) {
        uint64_t left = end - now < 10000000u ? end - now : 10000000u;
        struct timespec d = {.tv_sec = 0, .tv_nsec = (long)left};

        nanosleep(&d, NULL); /* a signal (the time limit) cuts it short */
    }
    p.paused_ns = mono_ns() - t0;
    if (rc == 0 && !p.clock_runs) {
        struct kvm_clock_data set = {.clock = clock.clock};

        rc = MVM_IOCTL(vcpu->vm->be, vcpu->vm->fd, KVM_SET_CLOCK, &set);
    }
    p.resume = true;
    if (rc == 0)
        rc = vm_devices_each(vcpu->vm, device_pause, &p);
    res->pauses++;
    res->paused_ns += p.paused_ns;
    return rc;
}

int vcpu_run(struct mvm_vcpu *vcpu, const struct mvm_run_opts *opts, struct mvm_run_result *res)
{
    static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
    static const struct mvm_run_opts no_opts;
    const struct mvm_backend *old_be;
    struct kvm_run *run = vcpu->run;
    struct sigaction old_sa;
    char line[8400];
    int rc = 0;

    if (!opts)
        opts = &no_opts;
    memset(res, 0, sizeof(*res));
    vcpu->res = res;
    pthread_once(&kick_once, kick_install);
    vcpu->pause_ms = 0;
    vcpu->debug_break = 0;
    vcpu->thread = pthread_self();
    vcpu->running = 1;
    old_be = mvm_kvm_api_bind(vcpu->vm->be); /* for a lab's exit switch and handlers */
    run->immediate_exit = 0;
    if (opts->max_ms)
        timer_arm(run, opts->max_ms, &old_sa);
    if (opts->trace)
        mvm_trace_vcpu_attach(opts->trace, vcpu);
    while (res->stop == MVM_STOP_NONE) {
        if (opts->max_exits && res->exits >= opts->max_exits) {
            res->stop = MVM_STOP_EXIT_LIMIT;
            snprintf(res->detail, sizeof(res->detail), "stopped after %llu exits (the limit)",
                     (unsigned long long)res->exits);
            break;
        }
        uint64_t enter_ns = mvm_trace_clock(opts->trace);
        rc = vcpu_enter(vcpu);
        uint64_t exit_ns = mvm_trace_clock(opts->trace);
        if (rc == -EINTR || rc == -EAGAIN) {
            rc = 0;
            if (vcpu->debug_break && opts->debug_exit && !(opts->max_ms && time_expired)) {
                vcpu->debug_break = 0;
                run->immediate_exit = 0;
                rc = opts->debug_exit(vcpu, opts->debug_opaque); /* the debugger's interrupt: not an exit */
                if (rc < 0)
                    break;
                if (rc > 0)
                    res->stop = (enum mvm_stop)rc;
                rc = 0;
                continue;
            }
            if (vcpu->pause_ms && !(opts->max_ms && time_expired)) {
                run->immediate_exit = 0;
                rc = vcpu_pause_take(vcpu, res);
                if (opts->max_ms && time_expired)
                    run->immediate_exit = 1; /* the limit passed while paused */
                if (rc < 0)
                    break;
            }
            if (opts->max_ms && time_expired) {
                res->stop = MVM_STOP_TIME_LIMIT;
                snprintf(res->detail, sizeof(res->detail), "stopped after %u ms of wall time (the limit)",
                         opts->max_ms);
            }
            continue;
        }
        if (rc < 0)
            break;
        res->exits++;
        if (run->exit_reason < MVM_EXIT_REASONS)
            res->by_reason[run->exit_reason]++;
        if (run->exit_reason == KVM_EXIT_DEBUG && opts->debug_exit && vcpu->debug_break) {
            vcpu->debug_break = 0; /* this stop answers the interrupt too */
            if (!vcpu->pause_ms && !time_expired)
                run->immediate_exit = 0;
        }
        if (run->exit_reason == KVM_EXIT_DEBUG && opts->debug_exit)
            rc = opts->debug_exit(vcpu, opts->debug_opaque);
        else
            rc = exit_handle(vcpu, run, res);
        if (opts->trace)
            mvm_trace_exit_record(opts->trace, vcpu, enter_ns, exit_ns);
        if (opts->exit_dump) {
            mvm_exit_format(run, line, sizeof(line));
            fprintf(opts->exit_dump, "%s\n", line);
        }
        if (rc < 0)
            break;
        if (rc > 0)
            res->stop = (enum mvm_stop)rc;
        rc = 0;
    }
    vcpu->running = 0;
    mvm_kvm_api_bind(old_be);
    vcpu->pause_ms = 0;
    if (opts->trace)
        mvm_trace_vcpu_detach(opts->trace, vcpu);
    if (opts->max_ms)
        timer_disarm(&old_sa);
    if (rc < 0) {
        res->stop = MVM_STOP_ERROR;
        snprintf(res->detail, sizeof(res->detail), "%s", mvm_error());
    } else if (res->stop == MVM_STOP_HLT && !res->detail[0]) {
        snprintf(res->detail, sizeof(res->detail), "the guest halted (KVM_EXIT_HLT)");
    }
    vcpu->res = NULL;
    return rc;
}
