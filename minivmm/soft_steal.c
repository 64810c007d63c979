/*
 * The soft backend's steal time (MSR_KVM_STEAL_TIME, Documentation/virt/kvm/x86/msr.rst): KVM's struct kvm_steal_time
 * in guest memory, brought up to date at each KVM_RUN with the time the thread in KVM_RUN was runnable but not
 * running (its run delay, /proc/thread-self/schedstat), as KVM's record_steal_time does with sched_info.run_delay.
 */
#include "soft_priv.h"

#include <asm/kvm_para.h> /* struct kvm_steal_time, KVM_STEAL_VALID_BITS and KVM_STEAL_RESERVED_MASK */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(struct kvm_steal_time) == 64, "struct kvm_steal_time is 64 bytes (msr.rst)");
_Static_assert(__builtin_offsetof(struct kvm_steal_time, version) == 8 &&
                   __builtin_offsetof(struct kvm_steal_time, preempted) == 16,
               "struct kvm_steal_time field offsets (msr.rst)");

/* The calling thread's run delay in ns (schedstat's second field), through an fd kept per vCPU and thread. */
static int soft_run_delay(struct soft_vcpu *v, uint64_t *ns)
{
    int tid = (int)syscall(SYS_gettid);
    char buf[96];
    unsigned long long run, delay;

    if (v->steal_fd < 0 || v->steal_tid != tid) {
        if (v->steal_fd >= 0)
            close(v->steal_fd);
        v->steal_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
        v->steal_tid = tid;
        if (v->steal_fd < 0)
            return -errno;
    }
    ssize_t n = pread(v->steal_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return n < 0 ? -errno : -EIO;
    buf[n] = 0;
    if (sscanf(buf, "%llu %llu", &run, &delay) != 2)
        return -EIO;
    *ns = delay;
    return 0;
}

bool soft_steal_msr_write(struct soft_vcpu *v, uint64_t val)
{
    uint64_t delay;

    /* KVM: no sched_info (nothing to count steal from) or reserved bits set: the write fails (#GP). */
    if ((val & KVM_STEAL_RESERVED_MASK) || soft_run_delay(v, &delay) < 0)
        return false;
    v->steal_msr = val;
    soft_steal_update(v); /* KVM_REQ_STEAL_UPDATE: done before the guest runs on */
    return true;
}

void soft_steal_update(struct soft_vcpu *v)
{
    struct kvm_steal_time st;
    uint64_t delay;
    uint8_t *h;

    if (!(v->steal_msr & KVM_MSR_ENABLED))
        return;
    h = soft_gpa_to_hva(v->vm, v->steal_msr & KVM_STEAL_VALID_BITS, sizeof st);
    if (!h || soft_run_delay(v, &delay) < 0)
        return;
    /* KVM's record_steal_time: preempted cleared; version made even, then odd while steal changes, then even. */
    memcpy(&st, h, sizeof st);
    h[__builtin_offsetof(struct kvm_steal_time, preempted)] = 0;
    uint32_t version = st.version + (st.version & 1) + 1;
    memcpy(h + __builtin_offsetof(struct kvm_steal_time, version), &version, 4);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint64_t steal = st.steal + (delay - v->steal_last);
    v->steal_last = delay;
    memcpy(h + __builtin_offsetof(struct kvm_steal_time, steal), &steal, 8);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    version++;
    memcpy(h + __builtin_offsetof(struct kvm_steal_time, version), &version, 4);
}

void soft_steal_destroy(struct soft_vcpu *v)
{
    if (v->steal_fd >= 0)
        close(v->steal_fd);
    v->steal_fd = -1;
}
