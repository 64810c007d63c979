/*
 * The soft backend's SYSCALL. Unicorn's SYSCALL only runs the UC_X86_INS_SYSCALL hooks and moves on to the next
 * instruction; the hook here stops the engine there and the run loop makes the architecture's transition into
 * the guest kernel (soft_syscall_enter). SYSRET is the engine's own: QEMU's helper_sysret, as the TCG under the
 * KVM oracle runs it.
 */
#include "soft_syscall.h"
#include "soft_uc_state.h"

#include <string.h>

/* A flat 4 GiB segment cache of type `type` (X86_SEG_TYPE_*, accessed), DPL 0, with `more` flags (L or B). */
static struct soft_seg soft_flat_seg(uint16_t sel, unsigned type, uint32_t more)
{
    return (struct soft_seg){
        .selector = sel,
        .base = 0,
        .limit = 0xffffffffu,
        .flags = SOFT_SEG_TYPE(type | X86_SEG_TYPE_ACCESSED) | SOFT_SEG_S | SOFT_SEG_P | SOFT_SEG_G | more,
    };
}

void soft_syscall_compute(const struct soft_syscall_in *in, struct soft_syscall_out *out)
{
    memset(out, 0, sizeof *out);
    out->vector = -1;
    if (!(in->efer & X86_EFER_SCE) || !in->pe || (!in->lma && (in->rflags & X86_RFLAGS_VM))) {
        out->vector = X86_VEC_UD;
        return;
    }
    uint16_t sel = (uint16_t)(in->star >> 32);
    if (in->lma) {
        out->rcx = in->next_rip;
        out->r11 = in->rflags & ~(uint64_t)X86_RFLAGS_RF;
        out->set_r11 = true;
        out->rflags = (in->rflags & ~(in->sfmask | X86_RFLAGS_RF)) | X86_RFLAGS_FIXED;
        out->cs = soft_flat_seg(sel & 0xfffc, X86_SEG_TYPE_CODE_XR, 1u << SOFT_SEG_L_SHIFT);
        out->rip = in->cs64 ? in->lstar : in->cstar;
    } else {
        out->rcx = (uint32_t)in->next_rip;
        out->rflags = (in->rflags & ~(uint64_t)(X86_RFLAGS_IF | X86_RFLAGS_RF | X86_RFLAGS_VM)) | X86_RFLAGS_FIXED;
        out->cs = soft_flat_seg(sel & 0xfffc, X86_SEG_TYPE_CODE_XR, 1u << SOFT_SEG_B_SHIFT);
        out->rip = (uint32_t)in->star;
    }
    out->ss = soft_flat_seg((sel + 8) & 0xfffc, X86_SEG_TYPE_DATA_RW, 1u << SOFT_SEG_B_SHIFT);
}

/* UC_HOOK_INSN for SYSCALL: the engine goes on after it; stop there, with the instruction's RIP kept for a fault. */
void soft_hook_syscall(uc_engine *uc, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    if (v->cancel) {
        uc_emu_stop(uc);
        return;
    }
    v->syscall_rip = soft_rd(v, UC_X86_REG_RIP); /* the engine syncs RIP to the SYSCALL before its hooks */
    /*
     * With TF set the engine would trap right after this no-op, before the transition, and the system call would
     * be lost: TF is taken out here and soft_syscall_enter traps after the transition if SFMASK leaves it set.
     */
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    v->syscall_tf = (rflags & X86_RFLAGS_TF) != 0;
    if (v->syscall_tf)
        soft_wr(v, UC_X86_REG_RFLAGS, rflags & ~(uint64_t)X86_RFLAGS_TF);
    v->stop = STOP_SYSCALL;
    uc_emu_stop(uc);
}

static uint64_t soft_engine_msr(struct soft_vcpu *v, uint32_t idx)
{
    uc_x86_msr msr = {.rid = idx, .value = 0};
    uc_reg_read(v->uc, UC_X86_REG_MSR, &msr);
    return msr.value;
}

bool soft_syscall_enter(struct soft_vcpu *v)
{
    img_load(v);
    uint32_t hf = img_u32(v, soft_layout.hflags);
    struct soft_syscall_in in = {
        .efer = img_u64(v, soft_layout.efer),
        .star = soft_engine_msr(v, X86_MSR_STAR),
        .lstar = soft_engine_msr(v, X86_MSR_STAR + 1),
        .cstar = soft_engine_msr(v, X86_MSR_STAR + 2),
        .sfmask = soft_engine_msr(v, X86_MSR_SFMASK),
        .rflags = soft_rd(v, UC_X86_REG_RFLAGS) | (v->syscall_tf ? X86_RFLAGS_TF : 0),
        .next_rip = soft_rd(v, UC_X86_REG_RIP),
        .pe = (IMG_CR(v, 0) & X86_CR0_PE) != 0,
        .lma = (hf & HF_LMA_MASK) != 0,
        .cs64 = (hf & HF_CS64_MASK) != 0,
    };
    struct soft_syscall_out out;
    soft_syscall_compute(&in, &out);
    if (out.vector >= 0) {
        soft_wr(v, UC_X86_REG_RFLAGS, in.rflags);
        soft_wr(v, UC_X86_REG_RIP, v->syscall_rip); /* a fault: reported at the SYSCALL */
        return soft_deliver_event(v, out.vector, false, 0, false, false);
    }
    *img_seg(v, R_CS) = out.cs;
    *img_seg(v, R_SS) = out.ss;
    img_update_hflags(v, out.rflags);
    img_store(v);
    soft_wr(v, UC_X86_REG_RFLAGS, out.rflags);
    soft_wr(v, UC_X86_REG_RCX, out.rcx);
    if (out.set_r11)
        soft_wr(v, UC_X86_REG_R11, out.r11);
    soft_wr(v, UC_X86_REG_RIP, out.rip);
    if (!in.lma)
        v->seg_check = true; /* protected mode: the limit checker re-reads the segments */
    if (out.rflags & X86_RFLAGS_TF) {
        /* TF still set after the transition: the single-step trap, at the first instruction of the entry. */
        soft_wr(v, UC_X86_REG_DR6, soft_rd(v, UC_X86_REG_DR6) | X86_DR6_ACTIVE_LOW | X86_DR6_BS);
        return soft_deliver_event(v, X86_VEC_DB, false, 0, false, false);
    }
    return true;
}
