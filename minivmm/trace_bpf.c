/* The kernel-side exit tracer's loader: the libbpf skeleton of visualizer/kvm_exits.bpf.c, drained without syscalls. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "trace.h"

#ifdef MVM_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kvm_exits.h"
#include "kvm_exits.skel.h"

struct mvm_kexit {
    struct kvm_exits *skel;
    struct ring_buffer *rb;
    mvm_kexit_fn fn;
    void *ctx;
};

/* libbpf's own messages: kept (the last warning explains a failed load), not printed. */
static char libbpf_last[200];

static int libbpf_print_keep(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char line[sizeof(libbpf_last)];
    size_t n;

    if (level == LIBBPF_DEBUG)
        return 0;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strcspn(line, "\n");
    line[n] = '\0';
    if (n)
        snprintf(libbpf_last, sizeof(libbpf_last), "%s", line);
    return 0;
}

/* The kvm tracepoints through tracefs, mounting it when it is not (as root can). */
static int tracefs_check(void)
{
    static const char *const dirs[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
    char path[96];

    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
            snprintf(path, sizeof(path), "%s/events/kvm/kvm_exit/id", dirs[i]);
            if (access(path, R_OK) == 0)
                return 0;
        }
        if (pass == 0 && access("/sys/kernel/tracing/events", F_OK) != 0)
            mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL);
    }
    if (access("/sys/kernel/tracing/events", F_OK) == 0)
        return mvm_fail(ENOENT, "no kvm:kvm_exit tracepoint in tracefs (is KVM loaded?)");
    return mvm_fail(ENOENT, "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing, as root)");
}

static int event_handle(void *ctx, void *data, size_t size)
{
    struct mvm_kexit *k = ctx;
    const struct mvm_kexit_event *e = data;
    struct mvm_trace_event ev = {0};

    if (size < sizeof(*e))
        return 0;
    ev.enter_ns = e->entry_ns;
    ev.exit_ns = e->exit_ns;
    ev.done_ns = e->done_ns;
    ev.rip = e->rip;
    ev.addr = e->info1;
    ev.data = e->info2;
    ev.reason = e->reason;
    ev.count = 1;
    ev.vcpu = (uint8_t)e->vcpu;
    ev.source = MVM_TRACE_SRC_KERNEL;
    ev.flags = MVM_TRACE_F_RIP | (e->isa == 1 ? MVM_TRACE_F_ISA_VMX : e->isa == 2 ? MVM_TRACE_F_ISA_SVM : 0);
    if (e->to_user) {
        ev.flags |= MVM_TRACE_F_HW;
        ev.hw_reason = e->reason;
        ev.reason = e->user_reason;
    }
    k->fn(k->ctx, &ev);
    return 0;
}

int mvm_kexit_open(int tgid, struct mvm_kexit **out)
{
    struct mvm_kexit *k;
    int err;

    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        return mvm_fail(ENOENT, "no kernel BTF (/sys/kernel/btf/vmlinux; the kernel needs CONFIG_DEBUG_INFO_BTF)");
    err = tracefs_check();
    if (err < 0)
        return err;
    k = calloc(1, sizeof(*k));
    if (!k)
        return mvm_fail(ENOMEM, "kernel exit tracer: out of memory");
    libbpf_set_print(libbpf_print_keep);
    libbpf_last[0] = '\0';
    k->skel = kvm_exits__open();
    if (!k->skel) {
        err = errno ? errno : EINVAL;
        free(k);
        return mvm_fail(err, "cannot open the BPF object: %s", libbpf_last[0] ? libbpf_last : strerror(err));
    }
    k->skel->rodata->target_tgid = (__u32)tgid;
    err = kvm_exits__load(k->skel);
    if (err) {
        err = -err;
        mvm_kexit_close(k);
        if (err == EPERM || err == EACCES)
            return mvm_fail(err, "loading BPF needs root (CAP_BPF and CAP_PERFMON)");
        return mvm_fail(err, "the BPF program did not load: %s", libbpf_last[0] ? libbpf_last : strerror(err));
    }
    err = kvm_exits__attach(k->skel);
    if (err) {
        err = -err;
        mvm_kexit_close(k);
        return mvm_fail(err, "cannot attach to the kvm tracepoints: %s", libbpf_last[0] ? libbpf_last : strerror(err));
    }
    k->rb = ring_buffer__new(bpf_map__fd(k->skel->maps.events), event_handle, k, NULL);
    if (!k->rb) {
        err = errno ? errno : EINVAL;
        mvm_kexit_close(k);
        return mvm_fail(err, "cannot map the BPF ring buffer: %s", strerror(err));
    }
    *out = k;
    return 0;
}

void mvm_kexit_drain(struct mvm_kexit *k, mvm_kexit_fn fn, void *ctx)
{
    k->fn = fn;
    k->ctx = ctx;
    ring_buffer__consume(k->rb);
}

static uint64_t count_read(struct mvm_kexit *k, __u32 slot)
{
    __u64 v = 0;

    bpf_map__lookup_elem(k->skel->maps.counts, &slot, sizeof(slot), &v, sizeof(v), 0);
    return v;
}

void mvm_kexit_counts(struct mvm_kexit *k, uint64_t *exits, uint64_t *to_user, uint64_t *dropped)
{
    *exits = count_read(k, MVM_KEXIT_SEEN);
    *to_user = count_read(k, MVM_KEXIT_TO_USER);
    *dropped = count_read(k, MVM_KEXIT_DROPPED);
}

void mvm_kexit_close(struct mvm_kexit *k)
{
    if (!k)
        return;
    ring_buffer__free(k->rb);
    kvm_exits__destroy(k->skel);
    free(k);
}

#else /* built without BPF */

struct mvm_kexit {
    int unused;
};

int mvm_kexit_open(int tgid, struct mvm_kexit **out)
{
    (void)tgid;
    (void)out;
    return mvm_fail(ENOTSUP, "this minivmm was built without the BPF tracer (no clang, bpftool, libbpf or "
                             "/sys/kernel/btf/vmlinux at build time)");
}

void mvm_kexit_drain(struct mvm_kexit *k, mvm_kexit_fn fn, void *ctx)
{
    (void)k;
    (void)fn;
    (void)ctx;
}

void mvm_kexit_counts(struct mvm_kexit *k, uint64_t *exits, uint64_t *to_user, uint64_t *dropped)
{
    (void)k;
    *exits = *to_user = *dropped = 0;
}

void mvm_kexit_close(struct mvm_kexit *k)
{
    (void)k;
}
#endif
