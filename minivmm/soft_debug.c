/*
 * The soft backend's KVM_SET_GUEST_DEBUG, with KVM's KVM_EXIT_DEBUG: a single step stops before the next
 * instruction (exception 1, DR6.BS), an INT3 the debugger wrote stops at the INT3 (exception 3), and an
 * execution breakpoint in DR0-3 enabled in DR7 stops before the instruction there (exception 1, DR6.Bn).
 * A data breakpoint (R/W 01 write, 11 read or write) traps after the instruction that touched its 1, 2, 4 or
 * 8 bytes: the stop is before the next one (exception 1, DR6.Bn). DR7.GD stops before a MOV to or from a
 * debug register (exception 1, DR6.BD). KVM_GUESTDBG_BLOCKIRQ keeps interrupts from being injected.
 * Steps and DR breakpoints need a code hook on every instruction (22-30x slower), data breakpoints a memory
 * hook on every access, so each is in the engine only while it is asked for.
 */
#include "soft_debug.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <stdlib.h>

#define SOFT_DEBUG_FLAGS                                                                                               \
    (KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW_BP |                 \
     KVM_GUESTDBG_BLOCKIRQ)

struct soft_debug {
    uint32_t control;
    uint64_t dr[4], dr7;
    bool dirty; /* changed since the engine last started: hook and translations to redo */
    bool hooked, mem_hooked;
    uc_hook hook, mem_hook;
    uint32_t data_hit; /* DR6.B0-3 of the data breakpoints the last instruction hit, reported before the next */
    /*
     * The engine's memory hooks give guest-physical addresses: the data breakpoints' linear addresses as
     * translated under data_cr0/data_cr3 (data_dr7 enables those that translated), redone when they change.
     */
    uint64_t data_gpa[4];
    uint64_t data_dr7, data_cr0, data_cr3;
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
    return (d->control & KVM_GUESTDBG_USE_HW_BP) && (d->dr7 & (0xff | X86_DR7_GD));
}

/* DRn's R/W field when DRn is enabled in DR7 (00 execute, 01 write, 10 I/O, 11 read or write); -1 when not. */
static int soft_debug_rw(const struct soft_debug *d, int i)
{
    if (!(d->control & KVM_GUESTDBG_USE_HW_BP) || !(d->dr7 & (X86_DR7_L(i) | X86_DR7_G(i))))
        return -1;
    return (int)((d->dr7 >> X86_DR7_RW_SHIFT(i)) & 3);
}

static bool soft_debug_data_on(const struct soft_debug *d)
{
    for (int i = 0; i < 4; i++)
        if (soft_debug_rw(d, i) == 1 || soft_debug_rw(d, i) == 3)
            return true;
    return false;
}

uint32_t soft_debug_data_match(uint64_t dr7, const uint64_t dr[4], uint64_t addr, unsigned size, bool write)
{
    static const uint64_t len_of[4] = {1, 2, 8, 4}; /* DR7 LEN: 00 1 byte, 01 2, 10 8 (64-bit mode), 11 4 */
    uint32_t hit = 0;
    for (int i = 0; i < 4; i++) {
        unsigned rw = (unsigned)(dr7 >> X86_DR7_RW_SHIFT(i)) & 3;
        if (!(dr7 & (X86_DR7_L(i) | X86_DR7_G(i))) || !(rw == 3 || (rw == 1 && write)) || size == 0)
            continue;
        uint64_t len = len_of[(dr7 >> X86_DR7_LEN_SHIFT(i)) & 3];
        uint64_t base = dr[i] & ~(len - 1); /* the CPU ignores the address bits below the length */
        if (addr - base < len || base - addr < size)
            hit |= 1u << i;
    }
    return hit;
}

/* Translate the data breakpoints' addresses under the current paging (data_gpa, data_dr7). */
static void soft_debug_data_locate(struct soft_vcpu *v, struct soft_debug *d)
{
    static const uint64_t len_of[4] = {1, 2, 8, 4};
    img_load(v);
    d->data_cr0 = soft_rd(v, UC_X86_REG_CR0);
    d->data_cr3 = soft_rd(v, UC_X86_REG_CR3);
    d->data_dr7 = d->dr7;
    for (int i = 0; i < 4; i++) {
        uint64_t len = len_of[(d->dr7 >> X86_DR7_LEN_SHIFT(i)) & 3];
        struct soft_walk w = soft_translate(v, d->dr[i] & ~(len - 1), false, false);
        d->data_gpa[i] = w.gpa;
        if (w.fault || w.bad)
            d->data_dr7 &= ~(uint64_t)(X86_DR7_L(i) | X86_DR7_G(i)); /* not mapped: nothing can touch it */
    }
}

/* UC_HOOK_MEM_READ/WRITE while a data breakpoint is on: note the hits; the code hook reports them. */
static void soft_debug_mem_hook(uc_engine *uc, uc_mem_type type, uint64_t gpa, int size, int64_t value, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    struct soft_debug *d = v ? v->dbg : NULL;
    (void)uc;
    (void)value;
    if (!d || v->cancel || size <= 0 || !(d->control & KVM_GUESTDBG_USE_HW_BP))
        return;
    if (soft_rd(v, UC_X86_REG_CR3) != d->data_cr3 || soft_rd(v, UC_X86_REG_CR0) != d->data_cr0)
        soft_debug_data_locate(v, d);
    d->data_hit |= soft_debug_data_match(d->data_dr7, d->data_gpa, gpa, (unsigned)size, type == UC_MEM_WRITE);
}

/* True when the instruction bytes are a MOV to or from a debug register (0f 21 or 0f 23, after prefixes). */
static bool soft_debug_is_mov_dr(const uint8_t *b, size_t n, bool rex)
{
    size_t i = 0;
    while (i < n && (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xf0 || b[i] == 0xf2 || b[i] == 0xf3 || b[i] == 0x2e ||
                     b[i] == 0x36 || b[i] == 0x3e || b[i] == 0x26 || b[i] == 0x64 || b[i] == 0x65 ||
                     (rex && (b[i] & 0xf0) == 0x40)))
        i++;
    return i + 1 < n && b[i] == 0x0f && (b[i + 1] == 0x21 || b[i + 1] == 0x23);
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
    /* KVM reports the DR7 in force: the debugger's with USE_HW_BP, else the guest's own. */
    run->debug.arch.dr7 = (v->dbg->control & KVM_GUESTDBG_USE_HW_BP) ? v->dbg->dr7 : soft_rd(v, UC_X86_REG_DR7);
}

/* UC_HOOK_CODE on every instruction, before it runs: DR0-3 breakpoints, then the end of a single step. */
static void soft_debug_hook(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    struct soft_debug *d = v ? v->dbg : NULL;
    (void)size;
    if (!d || v->cancel)
        return;
    if (d->data_hit) {
        /* A trap of the instruction before this one; a single step that ran it ends here too (DR6.BS). */
        uint32_t dr6 = X86_DR6_ACTIVE_LOW | d->data_hit;
        if ((d->control & KVM_GUESTDBG_SINGLESTEP) && d->stepping)
            dr6 |= X86_DR6_BS;
        d->data_hit = 0;
        d->stepping = false;
        img_load(v);
        soft_debug_exit(v, X86_VEC_DB, dr6, img_seg(v, R_CS)->base + soft_rd(v, UC_X86_REG_RIP));
        v->stop = STOP_EXIT;
        uc_emu_stop(uc);
        return;
    }
    if (soft_debug_hw_on(d) && (d->dr7 & X86_DR7_GD)) {
        /* General detect: a fault before the MOV DR runs, RIP at it (KVM on SVM: the #DB intercept). */
        img_load(v);
        uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
        uint8_t b[15];
        size_t n = soft_fetch(v, rip, b);
        if (soft_debug_is_mov_dr(b, n, (img_u32(v, soft_layout.hflags) & HF_CS64_MASK) != 0)) {
            d->stepping = false;
            soft_debug_exit(v, X86_VEC_DB, X86_DR6_ACTIVE_LOW | X86_DR6_BD, img_seg(v, R_CS)->base + rip);
            v->stop = STOP_EXIT;
            uc_emu_stop(uc);
            return;
        }
    }
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
    d->data_hit = 0;
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
    bool want_mem = soft_debug_data_on(d);
    if (want_mem)
        soft_debug_data_locate(v, d);
    if (want_mem && !d->mem_hooked)
        d->mem_hooked = uc_hook_add(v->uc, &d->mem_hook, UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE,
                                    (void *)soft_debug_mem_hook, v->engine, 1, 0) == UC_ERR_OK;
    else if (!want_mem && d->mem_hooked) {
        uc_hook_del(v->uc, d->mem_hook);
        d->mem_hooked = false;
    }
    /*
     * Translated code has the hook calls baked in or not (with a memory hook, every access takes the slow
     * path that calls it), and may hold bytes the VMM has overwritten.
     */
    uc_ctl_flush_tb(v->uc);
    uc_ctl_flush_tlb(v->uc);
}

bool soft_debug_blocks_irq(const struct soft_vcpu *v)
{
    return v->dbg && (v->dbg->control & KVM_GUESTDBG_BLOCKIRQ);
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
    if (v->dbg && v->dbg->mem_hooked && v->engine)
        uc_hook_del(v->uc, v->dbg->mem_hook);
    free(v->dbg);
    v->dbg = NULL;
}
