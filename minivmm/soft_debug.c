/*
 * The soft backend's KVM_SET_GUEST_DEBUG, with KVM's KVM_EXIT_DEBUG: a single step stops before the next
 * instruction (exception 1, DR6.BS), an INT3 the debugger wrote stops at the INT3 (exception 3), and an
 * execution breakpoint in DR0-3 enabled in DR7 stops before the instruction there (exception 1, DR6.Bn).
 * Steps and DR breakpoints need a code hook on every instruction (22-30x slower), so it is in the engine
 * only while one of them is asked for.
 */
#include "soft_debug.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <stdlib.h>

#define SOFT_DEBUG_FLAGS                                                                                               \
    (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW_BP)

struct soft_debug {
    uint32_t control;
    uint64_t dr[4], dr7;
    bool dirty; /* changed since the engine last started: hook and translations to redo */
    bool hooked;
    uc_hook hook;
    /*
     * The step in progress: the instruction it runs (by the hook's address) and the engine start it ran
     * in. The hook comes to that instruction again, not yet run, when something stopped the engine just
     * before it and restarted it there (a new block to scan, a segment re-check).
     */
    bool stepping;
    uint64_t step_addr;
    unsigned starts, step_start;
};

static bool soft_debug_hw_on(const struct soft_debug *d)
{
    return (d->control & KVM_GUESTDBG_USE_HW_BP) && (d->dr7 & 0xff);
}

/* Fills KVM_EXIT_DEBUG as KVM does: pc is the linear address (CS base + RIP). */
static void soft_debug_exit(struct soft_vcpu *v, uint32_t exception, uint64_t dr6, uint64_t pc)
{
    struct kvm_run *run = v->run;
    run->exit_reason = KVM_EXIT_DEBUG;
    memset(&run->debug, 0, sizeof run->debug);
    run->debug.arch.exception = exception;
    run->debug.arch.pc = pc;
    run->debug.arch.dr6 = dr6;
    run->debug.arch.dr7 = v->dbg->dr7;
}

/* UC_HOOK_CODE on every instruction, before it runs: DR0-3 breakpoints, then the end of a single step. */
static void soft_debug_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    struct soft_debug *d = v ? v->dbg : NULL;
    (void)size;
    if (!d || v->cancel)
        return;
    if (soft_debug_hw_on(d)) {
        img_load(v);
        uint64_t lin = img_seg(v, R_CS)->base + soft_rd(v, UC_X86_REG_RIP);
        for (int i = 0; i < 4; i++) {
            /* Execution breakpoints only (R/W 00); data breakpoints would need a memory hook. */
            if (!(d->dr7 & (X86_DR7_L(i) | X86_DR7_G(i))) || ((d->dr7 >> X86_DR7_RW_SHIFT(i)) & 3) != 0 ||
                d->dr[i] != lin)
                continue;
            d->stepping = false;
            soft_debug_exit(v, X86_VEC_DB, X86_DR6_ACTIVE_LOW | (1u << i), lin);
            v->stop = STOP_EXIT;
            uc_emu_stop(uc);
            return;
        }
    }
    if (!(d->control & KVM_GUESTDBG_SINGLESTEP))
        return;
    if (!d->stepping || (addr == d->step_addr && d->starts != d->step_start)) {
        d->stepping = true; /* this is the instruction the step runs */
        d->step_addr = addr;
        d->step_start = d->starts;
        return;
    }
    d->stepping = false; /* the next KVM_RUN steps the instruction it stops before */
    img_load(v);
    soft_debug_exit(v, X86_VEC_DB, X86_DR6_ACTIVE_LOW | X86_DR6_BS,
                    img_seg(v, R_CS)->base + soft_rd(v, UC_X86_REG_RIP));
    v->stop = STOP_EXIT;
    uc_emu_stop(uc);
}

int soft_debug_set(struct soft_vcpu *v, const struct kvm_guest_debug *dbg)
{
    if (dbg->control & ~(SOFT_DEBUG_FLAGS | KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)) {
        soft_set_error("soft backend: KVM_SET_GUEST_DEBUG: unknown control bits 0x%x", dbg->control);
        return -EINVAL;
    }
    if (dbg->control & (KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)) {
        soft_set_error("soft backend: KVM_SET_GUEST_DEBUG: INJECT_DB and INJECT_BP are not supported");
        return -EINVAL;
    }
    if (!v->dbg) {
        if (!(dbg->control & KVM_GUESTDBG_ENABLE))
            return 0;
        v->dbg = calloc(1, sizeof *v->dbg);
        if (!v->dbg)
            return -ENOMEM;
    }
    struct soft_debug *d = v->dbg;
    /* As KVM: without ENABLE, every other flag is ignored. */
    d->control = (dbg->control & KVM_GUESTDBG_ENABLE) ? dbg->control : 0;
    for (int i = 0; i < 4; i++)
        d->dr[i] = dbg->arch.debugreg[i];
    d->dr7 = dbg->arch.debugreg[7];
    d->stepping = false;
    d->dirty = true;
    if (v->in_exit)
        v->remap = true; /* set during an I/O exit: stop at the next block, so the engine restarts with it */
    return 0;
}

void soft_debug_prepare(struct soft_vcpu *v)
{
    struct soft_debug *d = v->dbg;
    if (!d)
        return;
    d->starts++;
    if (!d->dirty)
        return;
    d->dirty = false;
    bool want = (d->control & KVM_GUESTDBG_SINGLESTEP) || soft_debug_hw_on(d);
    if (want && !d->hooked)
        d->hooked = uc_hook_add(v->uc, &d->hook, UC_HOOK_CODE, (void *)soft_debug_hook, v->engine, 1, 0) == UC_ERR_OK;
    else if (!want && d->hooked) {
        uc_hook_del(v->uc, d->hook);
        d->hooked = false;
    }
    /* Translated code has the hook calls baked in or not, and may hold bytes the VMM has overwritten. */
    uc_ctl_flush_tb(v->uc);
}

bool soft_debug_exception(struct soft_vcpu *v)
{
    struct soft_debug *d = v->dbg;
    if (!d || !(d->control & KVM_GUESTDBG_USE_SW_BP) || v->exc_vector != X86_VEC_BP || !v->exc_soft)
        return false;
    img_load(v);
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP), base = img_seg(v, R_CS)->base, pa;
    uint8_t b[2] = {0, 0};
    uint32_t pe;
    /* The engine reports a software interrupt with RIP past it: INT3 is cc, INT 3 is cd 03. */
    uint64_t at = rip - 1;
    if (rip >= 2 && soft_lin_rw(v, base + rip - 2, b, 2, false, false, &pa, &pe) == 0 && b[1] != 0xcc && b[0] == 0xcd &&
        b[1] == 0x03)
        at = rip - 2;
    img_set_u32(v, soft_layout.old_exception, 0xffffffffu); /* no exception in progress */
    img_commit(v);
    soft_wr(v, UC_X86_REG_RIP, at);
    soft_debug_exit(v, X86_VEC_BP, 0, base + at);
    return true;
}

void soft_debug_destroy(struct soft_vcpu *v)
{
    if (v->dbg && v->dbg->hooked && v->engine)
        uc_hook_del(v->uc, v->dbg->hook);
    free(v->dbg);
    v->dbg = NULL;
}
