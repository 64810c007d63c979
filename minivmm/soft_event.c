/*
 * The soft backend's events (KVM's exception injection, done here by hand): exceptions and interrupts through
 * the guest's IVT or IDT, privilege and stack switches, double and triple faults, and the #UD hook (hypercalls).
 */
#include "soft_decode.h"
#include "soft_event.h"
#include "soft_pv.h"
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
bool soft_msr_kvm_knows(uint32_t idx)
{
    static const uint32_t ranges[][2] = {
        {0x10, 0x12},             /* TSC, the old kvmclock MSRs */
        {0x17, 0x17},             /* platform ID */
        {0x1b, 0x1b},             /* APIC base */
        {0x2a, 0x2a},             /* EBL_CR_POWERON */
        {0x2c, 0x2c},             /* EBC frequency ID */
        {0x48, 0x49},             /* SPEC_CTRL, PRED_CMD (KVM: when CPUID has them) */
        {0x3a, 0x3b},             /* feature control, TSC adjust */
        {0x79, 0x79},             /* microcode update trigger */
        {0x8b, 0x8b},             /* microcode revision */
        {0xc1, 0xc8},             /* the PMU's counters */
        {0xce, 0xce},             /* platform info */
        {0xe7, 0xe8},             /* MPERF, APERF */
        {0xfe, 0xfe},             /* MTRR capabilities */
        {0x10a, 0x10b},           /* arch capabilities, FLUSH_CMD */
        {0x11e, 0x11e},           /* BBL_CR_CTL3 */
        {0x140, 0x140},           /* misc features enables */
        {0x174, 0x176},           /* SYSENTER */
        {0x179, 0x17b},           /* MCG_CAP, MCG_STATUS, MCG_CTL */
        {0x186, 0x18d},           /* the PMU's event selects */
        {0x198, 0x199},           /* PERF_STATUS, PERF_CTL */
        {0x1a0, 0x1a0},           /* misc enable */
        {0x1fc, 0x1fc},           /* power control */
        {0x1d9, 0x1d9},           /* debug control */
        {0x1db, 0x1de},           /* last branch records */
        {0x200, 0x2ff},           /* MTRRs, PAT, MTRR default type */
        {0x345, 0x345},           /* perf capabilities */
        {0x400, 0x47f},           /* machine-check banks */
        {0x6e0, 0x6e0},           /* TSC deadline */
        {0x800, 0x8ff},           /* x2APIC */
        {0xda0, 0xda0},           /* XSS */
        {0x4b564d00, 0x4b564dff}, /* KVM's paravirtual MSRs */
        {0xc0000080, 0xc0000084}, /* EFER, STAR, LSTAR, CSTAR, SFMASK */
        {0xc0000100, 0xc0000104}, /* FS/GS/kernel GS base, TSC_AUX */
        {0xc0010000, 0xc0010007}, /* the K7 PMU */
        {0xc0010010, 0xc0010010}, /* SYSCFG */
        {0xc0010015, 0xc0010015}, /* HWCR */
        {0xc001001b, 0xc001001b}, /* K7 clock control */
        {0xc001001f, 0xc001001f}, /* NB config */
        {0xc0010058, 0xc0010058}, /* MMIO config base */
        {0xc0010114, 0xc0010117}, /* VM_CR, IGNNE, SMM control, VM_HSAVE_PA */
        {0xc001011f, 0xc001011f}, /* VIRT_SPEC_CTRL */
        {0xc0010140, 0xc0010141}, /* OS visible workarounds */
        {0xc0010200, 0xc001020b}, /* the F15h PMU */
        {0xc0011020, 0xc0011022}, /* LS, IC and DC config */
        {0xc0011029, 0xc001102a}, /* DE config, BU_CFG2 */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (idx >= ranges[i][0] && idx <= ranges[i][1])
            return true;
    return false;
}

uint64_t soft_cr4_reserved(const struct kvm_cpuid_entry2 *tab, int n)
{
    /* VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT UMIP LA57 VMXE FSGSBASE PCIDE OSXSAVE SMEP SMAP PKE; never
     * SMXE (bit 14): KVM's CR4_RESERVED_BITS */
    uint64_t known = 0x3fffull | (1ull << 16) | (1ull << 17) | (1ull << 18) | (7ull << 20);
    uint64_t rsvd = ~known;
    uint32_t c1 = 0, b7 = 0, c7 = 0;
    for (int i = 0; i < n; i++) {
        if (tab[i].function == 1)
            c1 = tab[i].ecx;
        if (tab[i].function == 7 && tab[i].index == 0) {
            b7 = tab[i].ebx;
            c7 = tab[i].ecx;
        }
    }
    struct {
        uint32_t reg;
        unsigned bit, cr4;
    } const need[] = {
        {c1, 26, 18}, /* XSAVE -> OSXSAVE */
        {c1, 17, 17}, /* PCID -> PCIDE */
        {c1, 5, 13},  /* VMX -> VMXE */
        {b7, 0, 16},  /* FSGSBASE */
        {b7, 7, 20},  /* SMEP */
        {b7, 20, 21}, /* SMAP */
        {c7, 2, 11},  /* UMIP */
        {c7, 3, 22},  /* PKU -> PKE */
        {c7, 16, 12}, /* LA57 */
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!((need[i].reg >> need[i].bit) & 1))
            rsvd |= 1ull << need[i].cr4;
    return rsvd;
}

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
        if (soft && tries == 0 && v->exc_insn_len)
            soft_wr(v, UC_X86_REG_RIP, soft_rd(v, UC_X86_REG_RIP) - v->exc_insn_len); /* the fault is the INT's */
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

/* Length of the INT n (cd ib), INT3 (cc), INTO (ce) or INT1 (f1) that just raised intno, RIP after it; 0 if unsure. */
static unsigned soft_int_len(struct soft_vcpu *v, uint32_t intno)
{
    uint64_t rip = soft_rd(v, UC_X86_REG_RIP);
    uint8_t b[15] = {0};
    if (rip < 2 || soft_fetch(v, rip - 2, b) < 2)
        return 0;
    if (b[0] == 0xcd && b[1] == intno)
        return 2;
    if ((b[1] == 0xcc && intno == X86_VEC_BP) || (b[1] == 0xce && intno == 4) || (b[1] == 0xf1 && intno == 1))
        return 1;
    return 0;
}

/* True at a rep ins/outs (RIP at it) that has elements left. */
static bool soft_rep_io_unfinished(struct soft_vcpu *v)
{
    if (!(soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_TF))
        return false;
    uint8_t b[15];
    size_t n = soft_fetch(v, soft_rd(v, UC_X86_REG_RIP), b);
    uint32_t hf = img_u32(v, soft_layout.hflags);
    bool a64 = (hf & HF_CS64_MASK) != 0, asz = false;
    struct soft_pio_insn d = {0};
    if (!soft_decode_io_insn(b, n, a64, &d, &asz) || !d.string || !d.rep)
        return false;
    unsigned as = soft_io_addr_size((hf & HF_CS32_MASK) != 0, a64, asz);
    return (soft_rd(v, UC_X86_REG_RCX) & soft_mask(as)) != 0;
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
    uint64_t at = v->db_batch_rip - 1, rip = soft_rd(v, UC_X86_REG_RIP);
    if (intno == X86_VEC_DB && !is_int && v->db_batch_rip && (rip == at || rip == at + v->io_len)) {
        /*
         * A single step over rep ins: KVM traps when a batch is in (x86_emulate_instruction, the pass that
         * completes the batch), with RIP still at the instruction, whether elements are left or not.
         */
        v->db_batch_rip = 0;
        soft_wr(v, UC_X86_REG_RIP, at);
    } else if (intno == X86_VEC_DB && !is_int &&
               (soft_rep_io_unfinished(v) ||
                ((v->wpend || v->db_skip) && (soft_rd(v, UC_X86_REG_RFLAGS) & X86_RFLAGS_TF)))) {
        /*
         * A single step inside rep outs (or inside a rep-ins batch): KVM emulates the elements with no trap
         * between them, where the engine traps after each. Go on. (rep outs then ends with RCX = 0 at the
         * instruction, which the CPU runs as a no-op and traps after: the engine's own trap.) Nor does KVM
         * trap after an instruction whose MMIO write went to the VMM (complete_emulated_mmio's FIXME): the
         * next instruction traps.
         */
        if (v->wpend)
            soft_mmio_flush(v); /* that write, held back (soft_io.c), goes to the VMM now */
        v->db_skip = false;
        img_load(v); /* as the VMM may have left it */
        img_set_u32(v, soft_layout.old_exception, 0xffffffffu);
        img_store(v);
        v->stop = STOP_RESTART;
        uc_emu_stop(uc);
        return;
    }
    v->exc_vector = (int)intno;
    v->exc_insn_len = is_int ? soft_int_len(v, intno) : 0;
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
    if (n >= 3 && b[0] == 0x0f && b[1] == 0x01 && soft_hypercall_insn_is(b[2])) {
        soft_hypercall_insn(v, rip, b[2]); /* soft_hypercall.c: VMCALL, VMMCALL, MONITOR, MWAIT */
    } else if (soft_smm_is_rsm(v, b, n)) {
        v->stop = STOP_RSM; /* KVM emulates RSM (em_rsm): soft_smm_rsm once the engine stops */
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
