/*
 * Unicorn workaround: 2.1.1 cannot hook RDTSC/RDMSR/WRMSR as instructions (UC_ERR_HOOK), and a UC_HOOK_CODE on
 * everything costs 22-30x. So each new block is scanned once, and a code hook goes on just the instructions
 * that need one: RDTSC/RDTSCP (counted), RDMSR/WRMSR (the MSRs the backend keeps, soft_msr.c), and in
 * protected mode the instruction after a segment load or mode change (the limit checks re-evaluate, soft_seg.c).
 */
#include "soft_cpuid.h"
#include "soft_decode.h"
#include "soft_event.h"
#include "soft_msr.h"
#include "soft_pv.h"
#include "soft_uc_state.h"

#include <string.h>

/* #GP(0) at the instruction the code hook stopped at: the engine stops before running it. */
static void soft_code_gp(struct soft_vcpu *v, uc_engine *uc)
{
    v->stop = STOP_EXCEPTION;
    v->exc_vector = X86_VEC_GP;
    v->exc_has_error = true;
    v->exc_error = 0;
    v->exc_soft = false;
    v->exc_insn_len = 0;
    uc_emu_stop(uc);
}

/* RDMSR/WRMSR of an MSR neither the backend nor the engine keeps: KVM injects #GP(0) if it does not know it. */
static void soft_msr_unknown_check(struct soft_vcpu *v, uc_engine *uc, uint32_t idx)
{
    if (!soft_msr_in_engine(idx) && !soft_msr_kvm_knows(idx))
        soft_code_gp(v, uc);
}

/* MOV to CR4 (b: its bytes, no prefix): #GP(0) for a bit KVM refuses (kvm_set_cr4), or PAE cleared in long mode. */
static void soft_mov_cr4_check(struct soft_vcpu *v, uc_engine *uc, const uint8_t *b)
{
    static const int gpr[8] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                               UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI};
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if ((b[2] & 0xc0) != 0xc0 || (hf & HF_CPL_MASK))
        return; /* not a register form, or CPL > 0: the engine raises its own fault */
    uint64_t val = soft_rd(v, gpr[b[2] & 7]);
    if (!(hf & HF_CS64_MASK))
        val = (uint32_t)val;
    bool lma = (hf & HF_LMA_MASK) != 0;
    if ((val & soft_vcpu_cr4_reserved(v)) || (lma && !(val & X86_CR4_PAE)))
        soft_code_gp(v, uc);
}

/* XSETBV at CPL 0 with CR4.OSXSAVE set (else the engine faults itself): #GP(0) for what KVM refuses (__kvm_set_xcr). */
static void soft_xsetbv_check(struct soft_vcpu *v, uc_engine *uc)
{
    if ((img_u32(v, soft_layout.hflags) & HF_CPL_MASK) || !(soft_rd(v, UC_X86_REG_CR4) & X86_CR4_OSXSAVE))
        return;
    uint64_t xcr0 = (uint32_t)soft_rd(v, UC_X86_REG_RAX) | ((uint64_t)(uint32_t)soft_rd(v, UC_X86_REG_RDX) << 32);
    if ((uint32_t)soft_rd(v, UC_X86_REG_RCX) != 0 || !soft_xcr0_valid(xcr0, soft_cpuid_guest_xcr0(v->cpuid, v->ncpuid)))
        soft_code_gp(v, uc);
}

static void soft_hook_code(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
    struct soft_vcpu *v = ((struct soft_engine *)ud)->v;
    (void)size;
    uint8_t b[15] = {0};
    img_load(v);
    if (!(img_u32(v, soft_layout.hflags) & HF_LMA_MASK)) {
        /* Maybe placed after a segment load: the limit hook may be due before this instruction runs. */
        v->seg_check = true;
        if (soft_limits_refresh(v)) {
            v->stop = STOP_RESTART;
            uc_emu_stop(uc);
            return;
        }
    }
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    (void)addr;
    soft_fetch(v, rip, b);
    if (b[0] != 0x0f)
        return;
    if (b[1] == 0x31 || (b[1] == 0x01 && b[2] == 0xf9)) { /* rdtsc, rdtscp */
        v->stats.rdtsc++;
        return; /* the engine adds the TSC offset itself */
    }
    if (b[1] == 0x22 && (b[2] & 0x38) == 0x20) { /* mov crN <- reg, to CR4 */
        soft_mov_cr4_check(v, uc, b);
        return;
    }
    if (b[1] == 0x01 && b[2] == 0xd1) { /* xsetbv */
        soft_xsetbv_check(v, uc);
        return;
    }
    if (b[1] == 0x01 && soft_mwait_insn_is(b[2])) { /* monitor, mwait: soft_mwait.c */
        soft_monitor_mwait(v, rip);
        uc_emu_stop(uc);
        return;
    }
    if (b[1] != 0x30 && b[1] != 0x32) /* wrmsr, rdmsr */
        return;
    v->stats.msr++;
    if (img_u32(v, soft_layout.hflags) & HF_CPL_MASK)
        return; /* the engine raises #GP */
    uint32_t idx = (uint32_t)soft_rd(v, UC_X86_REG_RCX);
    uint64_t val = (uint32_t)soft_rd(v, UC_X86_REG_RAX) | (soft_rd(v, UC_X86_REG_RDX) << 32);
    int done = soft_msr_guest_user(v, idx, &val, b[1] == 0x30); /* soft_msr_filter.c */
    if (done == SOFT_MSR_GUEST_STOPPED)
        return;
    if (done < 0) {
        soft_code_gp(v, uc);
        return;
    }
    if (!done) {
        if (b[1] == 0x30 && idx == X86_MSR_EFER &&
            !soft_efer_guest_ok(v->cpuid, v->ncpuid, img_u64(v, soft_layout.efer), val, IMG_CR(v, 0))) {
            soft_code_gp(v, uc); /* set_efer: a bit KVM refuses, or LME changed while paging (the engine takes both) */
            return;
        }
        soft_msr_unknown_check(v, uc, idx);
        return;
    }
    if (b[1] == 0x32) {
        soft_wr(v, UC_X86_REG_RAX, (uint32_t)val);
        soft_wr(v, UC_X86_REG_RDX, val >> 32);
    }
    soft_wr(v, UC_X86_REG_RIP, rip + 2);
}

/* Queue a code hook at guest address at, once. True if newly queued. */
static bool soft_hook_later(struct soft_vcpu *v, uint64_t at)
{
    for (int k = 0; k < v->nhooked; k++)
        if (v->hooked[k] == at)
            return false;
    for (int k = 0; k < v->npending_hooks; k++)
        if (v->pending_hooks[k] == at)
            return false;
    if (v->nhooked + v->npending_hooks >= 256 || v->npending_hooks >= 16)
        return false;
    v->pending_hooks[v->npending_hooks++] = at;
    return true;
}

/* A hash of a block's bytes, given as two parts (a block may cross a page). */
static uint64_t soft_code_hash(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (na + nb);
    for (int part = 0; part < 2; part++) {
        const uint8_t *p = part ? b : a;
        size_t n = part ? nb : na;
        for (; n >= 8; p += 8, n -= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            h = (h ^ w) * 0xff51afd7ed558ccdull;
            h ^= h >> 32;
        }
        if (n) {
            uint64_t w = 0;
            memcpy(&w, p, n);
            h = (h ^ w ^ ((uint64_t)n << 56)) * 0xc4ceb9fe1a85ec53ull;
            h ^= h >> 29;
        }
    }
    return h;
}

/*
 * Record where the block's bytes lie and their hash (image loaded, buf holds the bytes), so that soft_code_check
 * can tell when the VMM rewrites them. Unicorn keeps running a translation whatever the VMM writes through its
 * own mapping (the notes' "code the VMM rewrites keeps running its old translation"), while on KVM the next
 * instruction fetch sees the write.
 */
static void soft_code_record(struct soft_vcpu *v, unsigned idx, uint64_t lin, const uint8_t *buf, uint32_t size)
{
    struct soft_code_sum *c = &v->code_sum[idx];
    uint32_t n0 = (uint32_t)(SOFT_PAGE - (lin & (SOFT_PAGE - 1)));
    if (n0 > size)
        n0 = size;
    struct soft_walk w0 = soft_translate(v, lin, false, false), w1 = {0};
    if (n0 < size)
        w1 = soft_translate(v, lin + n0, false, false);
    if (w0.fault || w0.bad || w1.fault || w1.bad)
        return;
    *c = (struct soft_code_sum){.gpa0 = w0.gpa, .gpa1 = w1.gpa, .n0 = n0, .epoch = v->run_epoch};
    c->gen = v->vm->slots_gen - 1; /* soft_code_check finds the host pointers the first time */
    c->hash = soft_code_hash(buf, n0, buf + n0, size - n0);
}

bool soft_code_check(struct soft_vcpu *v, unsigned idx, uint64_t addr, uint32_t size)
{
    struct soft_code_sum *c = &v->code_sum[idx];
    if (c->epoch == 0)
        return true; /* not in RAM: the engine translates such code anew each time */
    uint32_t n1 = size - c->n0;
    if (c->gen != v->vm->slots_gen) {
        c->h0 = soft_gpa_to_hva(soft_vcpu_mem(v), c->gpa0, c->n0);
        c->h1 = n1 ? soft_gpa_to_hva(soft_vcpu_mem(v), c->gpa1, n1) : c->h0;
        c->gen = v->vm->slots_gen;
    }
    if (c->h0 && c->h1 && soft_code_hash(c->h0, c->n0, c->h1, n1) == c->hash) {
        c->epoch = v->run_epoch;
        return true;
    }
    /* Rewritten (or its memory gone): translate it again, and scan it again when it runs. */
    v->scanned[idx] = 0;
    c->epoch = 0;
    if (v->flush_end > v->flush_begin) {
        v->flush_begin = v->flush_begin < addr ? v->flush_begin : addr;
        v->flush_end = v->flush_end > addr + size ? v->flush_end : addr + size;
    } else {
        v->flush_begin = addr;
        v->flush_end = addr + size;
    }
    return false;
}

/* Scan a block the engine is about to run for the instructions above; queue a code hook on each, once. */
__attribute__((noinline)) bool soft_scan_block(struct soft_vcpu *v, uint64_t addr, uint32_t size)
{
    unsigned idx = (addr ^ (addr >> 12)) & 1023;
    v->scanned[idx] = addr ^ ((uint64_t)size << 48);
    v->code_sum[idx].epoch = 0;
    if (size > 4096)
        return false;
    uint8_t buf[4096 + 2];
    uint64_t pa;
    uint32_t pe;
    img_load(v);
    uint64_t lin = addr + img_seg(v, R_CS)->base;
    if (soft_lin_rw(v, lin, buf, size, false, false, &pa, &pe) != 0)
        return false;
    soft_code_record(v, idx, lin, buf, size);
    bool found = false;
    for (uint32_t i = 0; i + 1 < size; i++) {
        if (buf[i] != 0x0f)
            continue;
        uint8_t c = buf[i + 1];
        bool hit = c == 0x30 || c == 0x31 || c == 0x32 || (c == 0x01 && i + 2 < size && buf[i + 2] == 0xf9) ||
                   (c == 0x22 && i + 2 < size && (buf[i + 2] & 0x38) == 0x20) ||  /* mov to cr4 */
                   (c == 0x01 && i + 2 < size && buf[i + 2] == 0xd1) ||           /* xsetbv */
                   (c == 0x01 && i + 2 < size && soft_mwait_insn_is(buf[i + 2])); /* monitor, mwait */
        if (!hit)
            continue;
        if (soft_hook_later(v, addr + i))
            found = true;
    }
    uint32_t hf = img_u32(v, soft_layout.hflags);
    if (!(hf & HF_LMA_MASK)) {
        /*
         * Segment loads and mode changes: hook the next instruction (the code hook
         * re-checks the segments before it runs), or the load itself when it ends
         * the block (then the next block hook re-checks).
         */
        unsigned code = (hf & HF_CS32_MASK) ? 4 : 2;
        for (uint32_t i = 0; i < size;) {
            int io;
            unsigned len = soft_insn_len(buf + i, size - i, code, &io);
            if (len == 0)
                break;
            if (soft_insn_changes_segs(buf + i, len) &&
                soft_hook_later(v, addr + i + len < addr + size ? addr + i + len : addr + i))
                found = true;
            i += len;
        }
    }
    if (found) {
        v->flush_begin = addr;
        v->flush_end = addr + size;
    }
    return found;
}

void soft_apply_pending_hooks(struct soft_vcpu *v)
{
    for (int i = 0; i < v->npending_hooks; i++) {
        uc_hook h;
        uint64_t at = v->pending_hooks[i];
        if (uc_hook_add(v->uc, &h, UC_HOOK_CODE, (void *)soft_hook_code, v->engine, at, at) == UC_ERR_OK) {
            v->hooked_h[v->nhooked] = h;
            v->hooked[v->nhooked++] = at;
        }
    }
    v->npending_hooks = 0;
    if (v->flush_end > v->flush_begin)
        uc_ctl_remove_cache(v->uc, v->flush_begin, v->flush_end);
    v->flush_begin = v->flush_end = 0;
}
