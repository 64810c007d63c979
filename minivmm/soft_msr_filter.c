/*
 * MSR accesses KVM hands to user space (x86.c): KVM_X86_SET_MSR_FILTER's filter, KVM_CAP_X86_USER_SPACE_MSR's
 * reasons, and the guest's RDMSR/WRMSR that leaves as KVM_EXIT_X86_RDMSR/WRMSR and completes on the next KVM_RUN.
 */
#include "soft_event.h"
#include "soft_msr.h"
#include "soft_priv.h"
#include "soft_pv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void soft_msr_filter_free(struct soft_msr_filter *f)
{
    if (!f)
        return;
    for (uint32_t i = 0; i < f->count; i++)
        free(f->ranges[i].bitmap);
    free(f);
}

int soft_msr_filter_build(const struct kvm_msr_filter *arg, struct soft_msr_filter **out)
{
    const uint32_t nranges = KVM_MSR_FILTER_MAX_RANGES;
    bool empty = true;

    *out = NULL;
    if (arg->flags & ~(uint32_t)KVM_MSR_FILTER_DEFAULT_DENY) {
        soft_set_error("soft backend: KVM_X86_SET_MSR_FILTER flags 0x%x: only KVM_MSR_FILTER_DEFAULT_DENY is valid",
                       arg->flags);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < nranges; i++)
        empty &= !arg->ranges[i].nmsrs;
    bool default_allow = !(arg->flags & KVM_MSR_FILTER_DEFAULT_DENY);
    if (empty && !default_allow) {
        soft_set_error("soft backend: KVM_X86_SET_MSR_FILTER: a deny-by-default filter needs at least one range");
        return -EINVAL;
    }
    struct soft_msr_filter *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->default_allow = default_allow;
    for (uint32_t i = 0; i < nranges; i++) {
        const struct kvm_msr_filter_range *r = &arg->ranges[i];
        if (!r->nmsrs)
            continue; /* kvm_add_msr_filter skips it, whatever its flags */
        /* KVM takes BITS_TO_LONGS(nmsrs) longs of bitmap (at most KVM_MSR_FILTER_MAX_BITMAP_SIZE bytes). */
        size_t bytes = ((size_t)r->nmsrs + 63) / 64 * 8;
        const char *why = NULL;
        if (r->flags & ~(uint32_t)(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE))
            why = "unknown range flags";
        else if (!r->flags)
            why = "a range with neither KVM_MSR_FILTER_READ nor KVM_MSR_FILTER_WRITE";
        else if (bytes > KVM_MSR_FILTER_MAX_BITMAP_SIZE)
            why = "a bitmap over KVM_MSR_FILTER_MAX_BITMAP_SIZE (0x600 bytes)";
        if (why) {
            soft_set_error("soft backend: KVM_X86_SET_MSR_FILTER range %u (base 0x%x, %u MSRs, flags 0x%x): %s", i,
                           r->base, r->nmsrs, r->flags, why);
            soft_msr_filter_free(f);
            return -EINVAL;
        }
        if (!r->bitmap) {
            soft_msr_filter_free(f);
            return -EFAULT; /* memdup_user of a NULL pointer */
        }
        uint8_t *bm = calloc(1, bytes);
        if (!bm) {
            soft_msr_filter_free(f);
            return -ENOMEM;
        }
        memcpy(bm, r->bitmap, ((size_t)r->nmsrs + 7) / 8); /* no bit beyond nmsrs is ever looked at */
        f->ranges[f->count].flags = r->flags;
        f->ranges[f->count].base = r->base;
        f->ranges[f->count].nmsrs = r->nmsrs;
        f->ranges[f->count].bitmap = bm;
        f->count++;
    }
    *out = f;
    return 0;
}

bool soft_msr_filter_allows(const struct soft_msr_filter *f, uint32_t idx, uint32_t type)
{
    if (idx >= 0x800 && idx <= 0x8ff)
        return true; /* x2APIC MSRs are never filtered */
    if (!f)
        return true;
    for (uint32_t i = 0; i < f->count; i++) {
        uint32_t start = f->ranges[i].base, end = start + f->ranges[i].nmsrs; /* u32 arithmetic, as KVM's */
        if (idx >= start && idx < end && (f->ranges[i].flags & type)) {
            uint32_t bit = idx - start;
            return (f->ranges[i].bitmap[bit / 8] >> (bit % 8)) & 1;
        }
    }
    return f->default_allow;
}

int soft_vm_set_msr_filter(struct soft_vm *vm, const struct kvm_msr_filter *arg)
{
    struct soft_msr_filter *f;
    int r = soft_msr_filter_build(arg, &f);
    if (r < 0)
        return r;
    /* vCPUs run under the VM lock, so none is between its filter check and its use of the old filter. */
    pthread_mutex_lock(&vm->lock);
    struct soft_msr_filter *old = vm->msr_filter;
    vm->msr_filter = f;
    pthread_mutex_unlock(&vm->lock);
    soft_msr_filter_free(old);
    return 0;
}

uint32_t soft_msr_exit_reason(enum soft_msr_ret r)
{
    switch (r) {
    case SOFT_MSR_UNSUPPORTED:
        return KVM_MSR_EXIT_REASON_UNKNOWN;
    case SOFT_MSR_FILTERED:
        return KVM_MSR_EXIT_REASON_FILTER;
    default:
        return KVM_MSR_EXIT_REASON_INVAL;
    }
}

int soft_msr_guest_user(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool write)
{
    enum soft_msr_ret r;
    if (!soft_msr_filter_allows(v->vm->msr_filter, idx, write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ)) {
        r = SOFT_MSR_FILTERED;
    } else if (!soft_pv_msr_allowed(v, idx)) {
        r = SOFT_MSR_UNSUPPORTED; /* kvm_set/get_msr_common: KVM_MSR_RET_UNSUPPORTED, as for an unknown MSR */
    } else if (idx == SOFT_MSR_MISC_ENABLE) {
        if (soft_misc_enable_msr(v, val, write, false) == 0) /* soft_mwait.c */
            return 1;
        r = SOFT_MSR_INVALID;
    } else {
        int done = soft_msr_guest(v, idx, val, write);
        if (done > 0)
            return 1;
        if (done == 0 && (soft_msr_in_engine(idx) || soft_msr_kvm_knows(idx)))
            return 0; /* the engine runs it */
        r = done < 0 ? SOFT_MSR_INVALID : SOFT_MSR_UNSUPPORTED;
    }
    uint32_t reason = soft_msr_exit_reason(r);
    if (!(v->vm->user_space_msr_mask & reason))
        return -1; /* the guest gets KVM's #GP */
    struct kvm_run *run = v->run;
    if (__atomic_load_n(&run->immediate_exit, __ATOMIC_RELAXED)) {
        /* KVM_RUN is completing the last exit only (soft_vcpu_run): KVM would be out before this instruction. */
        v->stop = STOP_EINTR;
        uc_emu_stop(v->uc);
        return SOFT_MSR_GUEST_STOPPED;
    }
    /* kvm_msr_user_space: the exit, with RIP still at the instruction. */
    run->exit_reason = write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR;
    run->msr.error = 0;
    memset(run->msr.pad, 0, sizeof run->msr.pad);
    run->msr.reason = reason;
    run->msr.index = idx;
    run->msr.data = write ? *val : 0;
    if (!soft_exit_to_vmm(v))
        return 0; /* being closed: the engine stops */
    /* complete_fast_rdmsr / complete_fast_msr_access: the VMM's answer. */
    if (run->msr.error)
        return -1;
    if (!write)
        *val = run->msr.data;
    return 1;
}
