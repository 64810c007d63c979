/*
 * The soft backend's events (KVM's exception injection, done here by hand): exceptions and interrupts through
 * the guest's IVT or IDT, privilege and stack switches, double and triple faults, and the #UD hook (hypercalls).
 */
#include "soft_event.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <linux/kvm_para.h>
#include <string.h>

bool soft_vector_has_error(int vec)
{
    return vec == X86_VEC_DF || (vec >= X86_VEC_TS && vec <= X86_VEC_PF) || vec == X86_VEC_AC || vec == X86_VEC_CP ||
           vec == X86_VEC_VC || vec == X86_VEC_SX;
}

/* #DE, #TS, #NP, #SS, #GP. */
static bool soft_contributory(int vec)
{
    return vec == X86_VEC_DE || (vec >= X86_VEC_TS && vec <= X86_VEC_GP);
}

bool soft_event_double_fault(int first, int second)
{
    return (soft_contributory(first) && soft_contributory(second)) ||
           (first == X86_VEC_PF && (soft_contributory(second) || second == X86_VEC_PF));
}

/*
 * A triple fault: KVM on SVM answers the SHUTDOWN intercept with
 * kvm_vcpu_reset(init_event), so KVM_EXIT_SHUTDOWN shows the vCPU already at
 * its INIT state (RIP 0xfff0, CS 0xf000) and a later KVM_RUN starts there.
 */
static void soft_shutdown(struct soft_vcpu *v)
{
    soft_vcpu_reset(v, true);
    v->run->exit_reason = KVM_EXIT_SHUTDOWN;
}

enum soft_deliver { DELIVER_OK, DELIVER_FAULT, DELIVER_UNSUPPORTED };

struct soft_fault {
    int vector;
    bool has_error;
    uint32_t error;
    uint64_t cr2;
    bool set_cr2;
};

static int soft_read_desc(struct soft_vcpu *v, uint16_t sel, uint64_t *desc, struct soft_fault *f)
{
    struct soft_seg *table = (sel & 4) ? img_seg(v, R_LDT) : img_seg(v, R_GDT);
    uint32_t idx = sel & ~7u;
    if ((sel & ~3u) == 0 || idx + 7 > table->limit) {
        *f = (struct soft_fault){.vector = X86_VEC_GP, .has_error = true, .error = sel & ~3u};
        return DELIVER_FAULT;
    }
    uint64_t pa;
    uint32_t pe;
    int r = soft_lin_rw(v, table->base + idx, desc, 8, false, false, &pa, &pe);
    if (r == 1) {
        *f = (struct soft_fault){.vector = X86_VEC_PF, .has_error = true, .error = pe, .cr2 = pa, .set_cr2 = true};
        return DELIVER_FAULT;
    }
    return r == 0 ? DELIVER_OK : DELIVER_UNSUPPORTED;
}

static int soft_push(struct soft_vcpu *v, uint64_t ss_base, uint64_t *sp, uint64_t mask, const void *val, unsigned n,
                     bool user, struct soft_fault *f)
{
    *sp = (*sp - n) & mask;
    uint64_t pa;
    uint32_t pe;
    int r = soft_lin_rw(v, ss_base + *sp, (void *)val, n, true, user, &pa, &pe);
    if (r == 1) {
        *f = (struct soft_fault){.vector = X86_VEC_PF, .has_error = true, .error = pe, .cr2 = pa, .set_cr2 = true};
        return DELIVER_FAULT;
    }
    return r == 0 ? DELIVER_OK : DELIVER_UNSUPPORTED;
}

/*
 * Deliver one event as the CPU does: real mode through the IVT, protected and
 * long mode through the IDT (interrupt/trap gates, privilege change through the
 * TSS, IST). ext: external interrupt (sets EXT in error codes). The image must
 * be loaded; on DELIVER_OK the new state is stored into the engine.
 */
static int soft_deliver(struct soft_vcpu *v, int vec, bool has_err, uint32_t err, bool soft, bool ext,
                        struct soft_fault *f)
{
    uint64_t cr0 = IMG_CR(v, 0), efer = img_u64(v, soft_layout.efer);
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP), rsp = soft_rd(v, UC_X86_REG_RSP);
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    struct soft_seg *cs = img_seg(v, R_CS), *ss = img_seg(v, R_SS), *idt = img_seg(v, R_IDT);
    uint32_t cpl = img_u32(v, soft_layout.hflags) & HF_CPL_MASK;
    uint32_t ext_bit = ext ? 1 : 0;
    (void)soft;

    if (!(cr0 & X86_CR0_PE)) {
        if ((uint32_t)vec * 4 + 3 > idt->limit) {
            *f = (struct soft_fault){.vector = X86_VEC_GP, .has_error = true, .error = (uint32_t)vec * 8 + 2 + ext_bit};
            return DELIVER_FAULT;
        }
        uint32_t ent;
        uint64_t pa;
        uint32_t pe;
        if (soft_lin_rw(v, idt->base + (uint64_t)vec * 4, &ent, 4, false, false, &pa, &pe) != 0)
            return DELIVER_UNSUPPORTED;
        uint64_t sp = rsp & 0xffff;
        uint16_t fl = (uint16_t)rflags, csel = (uint16_t)cs->selector, ip = (uint16_t)rip;
        int r;
        if ((r = soft_push(v, ss->base, &sp, 0xffff, &fl, 2, false, f)) ||
            (r = soft_push(v, ss->base, &sp, 0xffff, &csel, 2, false, f)) ||
            (r = soft_push(v, ss->base, &sp, 0xffff, &ip, 2, false, f)))
            return r;
        cs->selector = ent >> 16;
        cs->base = (uint64_t)(ent >> 16) << 4;
        rflags &= ~(X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC | X86_RFLAGS_RF);
        /* Unicorn never clears its "exception in progress": without this the next fault would be a #DF. */
        img_set_u32(v, soft_layout.old_exception, 0xffffffffu);
        img_update_hflags(v, rflags);
        img_store(v);
        soft_wr(v, UC_X86_REG_RSP, (rsp & ~0xffffull) | sp);
        soft_wr(v, UC_X86_REG_RIP, ent & 0xffff);
        soft_wr(v, UC_X86_REG_RFLAGS, rflags);
        return DELIVER_OK;
    }

    bool lm = (efer & X86_EFER_LMA) != 0;
    unsigned gsz = lm ? 16 : 8;
    uint32_t gate_err = (uint32_t)vec * 8 + 2 + ext_bit;
    if ((uint64_t)vec * gsz + gsz - 1 > idt->limit) {
        *f = (struct soft_fault){.vector = X86_VEC_GP, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    uint32_t g[4] = {0};
    uint64_t pa;
    uint32_t pe;
    int rr = soft_lin_rw(v, idt->base + (uint64_t)vec * gsz, g, gsz, false, false, &pa, &pe);
    if (rr == 1) {
        *f = (struct soft_fault){.vector = X86_VEC_PF, .has_error = true, .error = pe, .cr2 = pa, .set_cr2 = true};
        return DELIVER_FAULT;
    }
    if (rr < 0)
        return DELIVER_UNSUPPORTED;
    uint32_t type = (g[1] >> 8) & 0x1f, dpl = (g[1] >> 13) & 3;
    bool gate32 = type == X86_GATE_INTR32 || type == X86_GATE_TRAP32;
    bool gate16 = type == X86_GATE_INTR16 || type == X86_GATE_TRAP16;
    if (!(gate32 || (gate16 && !lm))) {
        if (type == X86_GATE_TASK && !lm)
            return DELIVER_UNSUPPORTED; /* task gates */
        *f = (struct soft_fault){.vector = X86_VEC_GP, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    if (soft && dpl < cpl) {
        *f = (struct soft_fault){.vector = X86_VEC_GP, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    if (!(g[1] & SOFT_SEG_P)) {
        *f = (struct soft_fault){.vector = X86_VEC_NP, .has_error = true, .error = gate_err};
        return DELIVER_FAULT;
    }
    bool trap = (type & 1) != 0;
    uint16_t sel = (uint16_t)(g[0] >> 16);
    uint64_t off = (g[0] & 0xffff) | (g[1] & 0xffff0000u);
    if (lm)
        off |= (uint64_t)g[2] << 32;
    uint64_t d;
    int r = soft_read_desc(v, sel, &d, f);
    if (r)
        return r;
    struct soft_seg ncs;
    soft_seg_from_desc(d, sel, &ncs);
    uint32_t ndpl = (ncs.flags >> SOFT_SEG_DPL_SHIFT) & 3;
    bool code = (ncs.flags & SOFT_SEG_S) && (ncs.flags & SOFT_SEG_TYPE(X86_SEG_TYPE_CODE));
    if (!code || ndpl > cpl || (lm && !((ncs.flags >> SOFT_SEG_L_SHIFT) & 1))) {
        *f = (struct soft_fault){.vector = X86_VEC_GP, .has_error = true, .error = (sel & ~3u) + ext_bit};
        return DELIVER_FAULT;
    }
    if (!(ncs.flags & SOFT_SEG_P)) {
        *f = (struct soft_fault){.vector = X86_VEC_NP, .has_error = true, .error = (sel & ~3u) + ext_bit};
        return DELIVER_FAULT;
    }
    bool conforming = (ncs.flags & SOFT_SEG_TYPE(X86_SEG_TYPE_CONFORMING)) != 0;
    uint32_t ncpl = conforming ? cpl : ndpl;
    struct soft_seg nss = *ss;
    uint64_t nsp = rsp, ssmask;
    struct soft_seg *tr = img_seg(v, R_TR);
    unsigned ist = lm ? (g[1] & 7) : 0;
    if (ncpl < cpl || ist) {
        uint64_t tss_off = lm ? (ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * ncpl) : 4 + 8 * ncpl;
        unsigned len = lm ? 8 : 8;
        if (!(tr->flags & SOFT_SEG_P) || tss_off + len - 1 > tr->limit) {
            *f = (struct soft_fault){.vector = X86_VEC_TS, .has_error = true, .error = (tr->selector & ~3u) + ext_bit};
            return DELIVER_FAULT;
        }
        uint8_t t[8];
        if (soft_lin_rw(v, tr->base + tss_off, t, len, false, false, &pa, &pe) != 0)
            return DELIVER_UNSUPPORTED;
        if (lm) {
            memcpy(&nsp, t, 8);
            if (ncpl < cpl) {
                nss = (struct soft_seg){.selector = ncpl, .flags = 0};
            }
        } else {
            uint32_t esp0;
            uint16_t ss0;
            memcpy(&esp0, t, 4);
            memcpy(&ss0, t + 4, 2);
            uint64_t sd;
            if ((r = soft_read_desc(v, ss0, &sd, f)))
                return r;
            soft_seg_from_desc(sd, ss0, &nss);
            nsp = esp0;
        }
    }
    bool switched = ncpl < cpl;
    if (lm) {
        nsp &= ~15ull;
        ssmask = ~0ull;
    } else {
        ssmask = (nss.flags >> SOFT_SEG_B_SHIFT) & 1 ? 0xffffffffull : 0xffffull;
        nsp &= ssmask;
    }
    unsigned w = lm ? 8 : (gate32 ? 4 : 2);
    bool user = false;
    uint64_t vals[6];
    int nv = 0;
    if (lm || switched) {
        vals[nv++] = ss->selector;
        vals[nv++] = rsp;
    }
    vals[nv++] = rflags;
    vals[nv++] = cs->selector;
    vals[nv++] = rip;
    if (has_err)
        vals[nv++] = err;
    for (int i = 0; i < nv; i++)
        if ((r = soft_push(v, nss.base, &nsp, ssmask, &vals[i], w, user, f)))
            return r;
    rflags &= ~(X86_RFLAGS_TF | X86_RFLAGS_NT | X86_RFLAGS_RF | X86_RFLAGS_VM);
    if (!trap)
        rflags &= ~X86_RFLAGS_IF;
    ncs.selector = (ncs.selector & ~3u) | ncpl;
    ncs.flags |= SOFT_SEG_TYPE(X86_SEG_TYPE_ACCESSED);
    *cs = ncs;
    if (switched)
        *ss = nss;
    if (switched && !lm)
        ss->selector = (ss->selector & ~3u) | ncpl;
    /* CPL follows SS.DPL in the engine's hidden flags. */
    ss->flags = (ss->flags & ~(3u << SOFT_SEG_DPL_SHIFT)) | (ncpl << SOFT_SEG_DPL_SHIFT);
    img_set_u32(v, soft_layout.old_exception, 0xffffffffu);
    img_update_hflags(v, rflags);
    img_store(v);
    if (lm || ssmask == ~0ull)
        soft_wr(v, UC_X86_REG_RSP, nsp);
    else
        soft_wr(v, UC_X86_REG_RSP, (rsp & ~ssmask) | nsp);
    soft_wr(v, UC_X86_REG_RIP, lm ? off : (gate32 ? (uint32_t)off : (uint16_t)off));
    soft_wr(v, UC_X86_REG_RFLAGS, rflags);
    return DELIVER_OK;
}

bool soft_deliver_event(struct soft_vcpu *v, int vec, bool has_err, uint32_t err, bool soft, bool ext)
{
    int first = vec;
    for (int tries = 0; tries < 3; tries++) {
        img_load(v);
        struct soft_fault f;
        int r = soft_deliver(v, vec, has_err, err, soft, ext, &f);
        if (r == DELIVER_OK) {
            v->stats.exceptions++;
            v->seg_check = true; /* CS and SS may have changed */
            return true;
        }
        if (r == DELIVER_UNSUPPORTED) {
            soft_internal_error(v, "event delivery the soft backend cannot emulate");
            return false;
        }
        if (f.set_cr2)
            soft_wr(v, UC_X86_REG_CR2, f.cr2);
        if (vec == X86_VEC_DF) {
            soft_shutdown(v);
            return false;
        }
        if (soft_event_double_fault(first, f.vector)) {
            vec = X86_VEC_DF;
            has_err = true;
            err = 0;
        } else {
            vec = f.vector;
            has_err = f.has_error;
            err = f.error;
        }
        first = vec;
        soft = false;
    }
    soft_shutdown(v);
    return false;
}

/* Unicorn workaround: 2.1 reports the #UD soft_hook_invalid handled a second time (ud_seen). */
void soft_hook_intr(uc_engine *uc, uint32_t intno, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    if (intno == X86_VEC_UD && v->ud_seen) {
        v->ud_seen = false; /* Unicorn 2.1 also reports the #UD the invalid-instruction hook already handled */
        return;
    }
    img_load(v);
    int32_t ec = (int32_t)img_u32(v, soft_layout.error_code);
    int32_t is_int = (int32_t)img_u32(v, soft_layout.error_code + 4);
    v->exc_vector = (int)intno;
    v->exc_soft = is_int != 0;
    v->exc_has_error = !v->exc_soft && soft_vector_has_error((int)intno);
    v->exc_error = ec;
    v->stop = STOP_EXCEPTION;
    uc_emu_stop(uc);
}

/* VMCALL (0f 01 c1) and VMMCALL (0f 01 d9) raise #UD in the engine; KVM answers them itself, as below. */
bool soft_hook_invalid(uc_engine *uc, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    img_load(v);
    uint8_t b[15];
    size_t n = soft_fetch(v, rip, b);
    if (n >= 3 && b[0] == 0x0f && b[1] == 0x01 && (b[2] == 0xc1 || b[2] == 0xd9)) {
        uint32_t hf = img_u32(v, soft_layout.hflags);
        uint64_t nr = soft_rd(v, UC_X86_REG_RAX), ret;
        if ((hf & HF_CPL_MASK) != 0)
            ret = (uint64_t)-KVM_EPERM;
        else if ((hf & HF_CS64_MASK ? nr : (uint32_t)nr) == KVM_HC_VAPIC_POLL_IRQ)
            ret = 0;
        else
            ret = (uint64_t)-KVM_ENOSYS;
        if (!(hf & HF_CS64_MASK))
            ret = (uint32_t)ret;
        soft_wr(v, UC_X86_REG_RAX, ret);
        soft_wr(v, UC_X86_REG_RIP, rip + 3);
        v->stats.hypercall++;
        v->stop = STOP_RESTART;
    } else {
        v->stop = STOP_EXCEPTION;
        v->exc_vector = X86_VEC_UD;
        v->exc_has_error = false;
        v->exc_soft = false;
    }
    v->ud_seen = true;
    uc_emu_stop(uc);
    return true;
}
