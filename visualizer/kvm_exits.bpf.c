// SPDX-License-Identifier: GPL-2.0
/* Kernel-side exit tracer: pairs kvm:kvm_exit with the kvm_entry or kvm_userspace_exit that ends it, for one process.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "kvm_exits.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load: the VMM's process id (tgid). */
const volatile __u32 target_tgid = 0;

/*
 * The tracepoint records, with only the fields used. CO-RE finds their real
 * offsets in the running kernel's BTF (vmlinux, or the kvm module's when KVM
 * is a module), so one object works on 6.1 and on newer kernels.
 */
struct trace_event_raw_kvm_exit___mvm {
    unsigned int exit_reason;
    unsigned long guest_rip;
    __u32 isa;
    __u64 info1;
    __u64 info2;
    unsigned int vcpu_id;
} __attribute__((preserve_access_index));

struct trace_event_raw_kvm_entry___mvm {
    unsigned int vcpu_id;
    unsigned long rip;
} __attribute__((preserve_access_index));

struct trace_event_raw_kvm_userspace_exit___mvm {
    __u32 reason;
    int errno;
} __attribute__((preserve_access_index));

/* Per vCPU thread: the last entry, and the exit in progress. */
struct mvm_kvcpu {
    struct mvm_kexit_event ev;
    __u32 in_exit;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct mvm_kvcpu);
} vcpu_states SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MVM_KEXIT_NCOUNTS);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

static __always_inline void count_add(__u32 slot)
{
    __u64 *v = bpf_map_lookup_elem(&counts, &slot);

    if (v)
        __sync_fetch_and_add(v, 1);
}

/* The thread's state when it belongs to the traced process, else NULL. */
static __always_inline struct mvm_kvcpu *state_get(bool create)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    struct mvm_kvcpu *s;

    if ((id >> 32) != target_tgid)
        return NULL;
    s = bpf_map_lookup_elem(&vcpu_states, &tid);
    if (!s && create) {
        struct mvm_kvcpu zero = {};

        bpf_map_update_elem(&vcpu_states, &tid, &zero, BPF_NOEXIST);
        s = bpf_map_lookup_elem(&vcpu_states, &tid);
    }
    return s;
}

/* Sends the finished exit; no wakeup: the VMM drains the ring after each KVM_RUN. */
static __always_inline void exit_emit(struct mvm_kvcpu *s)
{
    struct mvm_kexit_event *out = bpf_ringbuf_reserve(&events, sizeof(*out), 0);

    if (!out) {
        count_add(MVM_KEXIT_DROPPED);
        return;
    }
    __builtin_memcpy(out, &s->ev, sizeof(*out));
    bpf_ringbuf_submit(out, BPF_RB_NO_WAKEUP);
}

SEC("tp/kvm/kvm_exit")
int on_kvm_exit(struct trace_event_raw_kvm_exit___mvm *ctx)
{
    struct mvm_kvcpu *s = state_get(true);

    if (!s)
        return 0;
    count_add(MVM_KEXIT_SEEN);
    s->ev.exit_ns = bpf_ktime_get_ns();
    s->ev.reason = ctx->exit_reason;
    s->ev.rip = ctx->guest_rip;
    s->ev.isa = ctx->isa;
    s->ev.info1 = ctx->info1;
    s->ev.info2 = ctx->info2;
    s->ev.vcpu = ctx->vcpu_id;
    s->in_exit = 1;
    return 0;
}

SEC("tp/kvm/kvm_entry")
int on_kvm_entry(struct trace_event_raw_kvm_entry___mvm *ctx)
{
    struct mvm_kvcpu *s = state_get(true);
    __u64 now = bpf_ktime_get_ns();

    if (!s)
        return 0;
    if (s->in_exit) {
        /* Re-entered without going to userspace: KVM handled this exit itself. */
        s->ev.done_ns = now;
        s->ev.to_user = 0;
        s->ev.user_reason = 0;
        s->ev.user_errno = 0;
        exit_emit(s);
        s->in_exit = 0;
    }
    s->ev.entry_ns = now;
    s->ev.vcpu = ctx->vcpu_id;
    return 0;
}

SEC("tp/kvm/kvm_userspace_exit")
int on_kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit___mvm *ctx)
{
    struct mvm_kvcpu *s = state_get(true);
    int err;

    if (!s)
        return 0;
    err = ctx->errno;
    /* Counted even without a kvm_exit before it: some KVM flavours (PVM) never fire kvm_exit. */
    if (err >= 0)
        count_add(MVM_KEXIT_TO_USER);
    if (!s->in_exit)
        return 0;
    s->ev.done_ns = bpf_ktime_get_ns();
    s->ev.user_reason = ctx->reason;
    s->ev.user_errno = err;
    s->ev.to_user = err >= 0;
    exit_emit(s);
    s->in_exit = 0;
    s->ev.entry_ns = 0;
    return 0;
}
