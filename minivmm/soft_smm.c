/*
 * System management mode on the soft backend, as KVM 6.1 on AMD gives it: SMIs (KVM_SMI, the local APIC's SMI
 * delivery mode), entry through the SMRAM state-save area (x86.c enter_smm), RSM (emulate.c em_rsm), SMBASE, and
 * memory address space 1: while a vCPU is in SMM it sees the VM's address-space-1 slots, and only those.
 */
#include "soft_smm.h"
#include "soft_cpuid.h"
#include "soft_event.h"
#include "soft_uc_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CR0_EM           (1u << 2)
#define CR0_TS           (1u << 3)
#define CR0_VALID        0xe005003fu /* PE MP EM TS ET NE WP AM NW CD PG: KVM clears the rest (CR0_RESERVED_BITS) */
#define CR4_PCIDE        (1u << 17)
#define CPUID_8_1_EDX_NX (1u << 20)
#define CPUID_8_1_EDX_LM (1u << 29)

static void put16(uint8_t *buf, unsigned off, uint16_t x)
{
    memcpy(buf + off - 0x7e00, &x, 2);
}

static void put32(uint8_t *buf, unsigned off, uint32_t x)
{
    memcpy(buf + off - 0x7e00, &x, 4);
}

static void put64(uint8_t *buf, unsigned off, uint64_t x)
{
    memcpy(buf + off - 0x7e00, &x, 8);
}

static uint16_t get16(const uint8_t *buf, unsigned off)
{
    uint16_t x;
    memcpy(&x, buf + off - 0x7e00, 2);
    return x;
}

static uint32_t get32(const uint8_t *buf, unsigned off)
{
    uint32_t x;
    memcpy(&x, buf + off - 0x7e00, 4);
    return x;
}

static uint64_t get64(const uint8_t *buf, unsigned off)
{
    uint64_t x;
    memcpy(&x, buf + off - 0x7e00, 8);
    return x;
}

/* KVM's register numbering (VCPU_REGS_RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15): the save area's order. */
static __u64 *gpr(struct kvm_regs *r, int i)
{
    __u64 *const tab[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                            &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    return tab[i];
}

/* KVM's segment numbering (VCPU_SREG_ES, CS, SS, DS, FS, GS), as enter_smm_save_seg_* index them. */
static struct kvm_segment *sreg(struct kvm_sregs *s, int i)
{
    struct kvm_segment *const tab[6] = {&s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs};
    return tab[i];
}

/* enter_smm_get_segment_flags: the descriptor's attribute bits, at their places in its high dword. */
static uint32_t seg_flags(const struct kvm_segment *k)
{
    return (uint32_t)k->g << 23 | (uint32_t)k->db << 22 | (uint32_t)k->l << 21 | (uint32_t)k->avl << 20 |
           (uint32_t)k->present << 15 | (uint32_t)k->dpl << 13 | (uint32_t)k->s << 12 | (uint32_t)k->type << 8;
}

/*
 * rsm_set_desc_flags, set_desc_limit/base and emulator_set_segment: the segment KVM loads at RSM. The limit goes
 * through a descriptor's 20 bits and comes back scaled by G; a segment that is not present is unusable.
 */
static struct kvm_segment seg_load(uint16_t sel, uint32_t flags, uint32_t limit, uint64_t base)
{
    struct kvm_segment k = {.selector = sel,
                            .base = base,
                            .g = (flags >> 23) & 1,
                            .db = (flags >> 22) & 1,
                            .l = (flags >> 21) & 1,
                            .avl = (flags >> 20) & 1,
                            .present = (flags >> 15) & 1,
                            .dpl = (flags >> 13) & 3,
                            .s = (flags >> 12) & 1,
                            .type = (flags >> 8) & 15};
    k.limit = limit & 0xfffff;
    if (k.g)
        k.limit = (k.limit << 12) | 0xfff;
    k.unusable = !k.present;
    return k;
}

void soft_smm_save(const struct soft_smm_cpu *c, bool lm, uint8_t buf[SOFT_SMM_SAVE_SIZE])
{
    struct soft_smm_cpu t = *c;
    const struct kvm_sregs *s = &t.sregs;
    memset(buf, 0, SOFT_SMM_SAVE_SIZE);
    if (!lm) {
        put32(buf, 0x7ffc, (uint32_t)s->cr0);
        put32(buf, 0x7ff8, (uint32_t)s->cr3);
        put32(buf, 0x7ff4, (uint32_t)t.regs.rflags);
        put32(buf, 0x7ff0, (uint32_t)t.regs.rip);
        for (int i = 0; i < 8; i++)
            put32(buf, 0x7fd0 + i * 4, (uint32_t)*gpr(&t.regs, i));
        put32(buf, 0x7fcc, (uint32_t)t.dr6);
        put32(buf, 0x7fc8, (uint32_t)t.dr7);
        put32(buf, 0x7fc4, s->tr.selector);
        put32(buf, 0x7f64, (uint32_t)s->tr.base);
        put32(buf, 0x7f60, s->tr.limit);
        put32(buf, 0x7f5c, seg_flags(&s->tr));
        put32(buf, 0x7fc0, s->ldt.selector);
        put32(buf, 0x7f80, (uint32_t)s->ldt.base);
        put32(buf, 0x7f7c, s->ldt.limit);
        put32(buf, 0x7f78, seg_flags(&s->ldt));
        put32(buf, 0x7f74, (uint32_t)s->gdt.base);
        put32(buf, 0x7f70, s->gdt.limit);
        put32(buf, 0x7f58, (uint32_t)s->idt.base);
        put32(buf, 0x7f54, s->idt.limit);
        for (int n = 0; n < 6; n++) {
            const struct kvm_segment *k = sreg(&t.sregs, n);
            unsigned off = n < 3 ? 0x7f84 + n * 12 : 0x7f2c + (n - 3) * 12;
            put32(buf, 0x7fa8 + n * 4, k->selector);
            put32(buf, off + 8, (uint32_t)k->base);
            put32(buf, off + 4, k->limit);
            put32(buf, off, seg_flags(k));
        }
        put32(buf, 0x7f14, (uint32_t)s->cr4);
        put32(buf, 0x7efc, SOFT_SMM_REV_32);
        put32(buf, 0x7ef8, (uint32_t)c->smbase);
        return;
    }
    for (int i = 0; i < 16; i++)
        put64(buf, 0x7ff8 - i * 8, *gpr(&t.regs, i));
    put64(buf, 0x7f78, t.regs.rip);
    put32(buf, 0x7f70, (uint32_t)t.regs.rflags);
    put64(buf, 0x7f68, t.dr6);
    put64(buf, 0x7f60, t.dr7);
    put64(buf, 0x7f58, s->cr0);
    put64(buf, 0x7f50, s->cr3);
    put64(buf, 0x7f48, s->cr4);
    put32(buf, 0x7f00, (uint32_t)c->smbase);
    put32(buf, 0x7efc, SOFT_SMM_REV_64);
    put64(buf, 0x7ed0, s->efer);
    put16(buf, 0x7e90, s->tr.selector);
    put16(buf, 0x7e92, (uint16_t)(seg_flags(&s->tr) >> 8));
    put32(buf, 0x7e94, s->tr.limit);
    put64(buf, 0x7e98, s->tr.base);
    put32(buf, 0x7e84, s->idt.limit);
    put64(buf, 0x7e88, s->idt.base);
    put16(buf, 0x7e70, s->ldt.selector);
    put16(buf, 0x7e72, (uint16_t)(seg_flags(&s->ldt) >> 8));
    put32(buf, 0x7e74, s->ldt.limit);
    put64(buf, 0x7e78, s->ldt.base);
    put32(buf, 0x7e64, s->gdt.limit);
    put64(buf, 0x7e68, s->gdt.base);
    for (int n = 0; n < 6; n++) {
        const struct kvm_segment *k = sreg(&t.sregs, n);
        unsigned off = 0x7e00 + n * 16;
        put16(buf, off, k->selector);
        put16(buf, off + 2, (uint16_t)(seg_flags(k) >> 8));
        put32(buf, off + 4, k->limit);
        put64(buf, off + 8, k->base);
    }
}

void soft_smm_entry_state(struct soft_smm_cpu *c, bool lm)
{
    struct kvm_sregs *s = &c->sregs;
    c->regs.rflags = X86_RFLAGS_FIXED;
    c->regs.rip = SOFT_SMM_ENTRY_RIP;
    s->cr0 &= ~(uint64_t)(X86_CR0_PE | CR0_EM | CR0_TS | X86_CR0_PG);
    s->cr4 = 0;
    s->idt.base = 0;
    s->idt.limit = 0; /* undocumented: the IDT limit is 0 in SMM (KVM's enter_smm) */
    c->dr7 = X86_DR7_FIXED_1;
    struct kvm_segment flat = {.limit = 0xffffffffu, .type = 3, .s = 1, .g = 1, .present = 1};
    s->ds = s->es = s->fs = s->gs = s->ss = flat;
    s->cs = flat;
    s->cs.selector = (uint16_t)(c->smbase >> 4);
    s->cs.base = c->smbase;
    if (lm)
        s->efer = 0;
    else if (!(s->cr0 & X86_CR0_PG))
        s->efer &= ~(uint64_t)X86_EFER_LMA; /* svm_set_cr0: paging off ends long mode */
}

/* What KVM's set_cr (kvm_set_cr0/3/4), set_dr and the EFER write refuse while em_rsm loads the state. */
static bool load_checks(struct soft_smm_cpu *c, uint64_t cr4_reserved, uint64_t efer_reserved, const char **why)
{
    struct kvm_sregs *s = &c->sregs;
    if ((c->dr6 >> 32) || (c->dr7 >> 32)) {
        *why = "DR6 or DR7 with bits above 31 set";
        return false;
    }
    if (s->efer & efer_reserved) {
        *why = "EFER with a bit the vCPU's CPUID leaves reserved";
        return false;
    }
    if (s->cr4 & cr4_reserved) {
        *why = "CR4 with a bit the vCPU's CPUID leaves reserved";
        return false;
    }
    if (s->cr0 >> 32) {
        *why = "CR0 with bits above 31 set";
        return false;
    }
    uint64_t cr0 = (s->cr0 | X86_CR0_ET) & CR0_VALID;
    if ((cr0 & X86_CR0_NW) && !(cr0 & X86_CR0_CD)) {
        *why = "CR0.NW without CR0.CD";
        return false;
    }
    if ((cr0 & X86_CR0_PG) && !(cr0 & X86_CR0_PE)) {
        *why = "CR0.PG without CR0.PE";
        return false;
    }
    bool lma = (cr0 & X86_CR0_PG) && (s->efer & X86_EFER_LME);
    if (lma && !(s->cr4 & X86_CR4_PAE)) {
        *why = "long mode (EFER.LME, CR0.PG) without CR4.PAE";
        return false;
    }
    if ((s->cr4 & CR4_PCIDE) && !lma) {
        *why = "CR4.PCIDE outside long mode";
        return false;
    }
    s->cr0 = cr0;
    s->efer = (s->efer & ~(uint64_t)X86_EFER_LMA) | (lma ? X86_EFER_LMA : 0);
    return true;
}

bool soft_smm_load(const uint8_t buf[SOFT_SMM_SAVE_SIZE], bool lm, uint64_t cr4_reserved, uint64_t efer_reserved,
                   struct soft_smm_cpu *c, const char **why)
{
    struct kvm_sregs *s = &c->sregs;
    *why = "";
    if (!lm) {
        s->cr0 = get32(buf, 0x7ffc);
        s->cr3 = get32(buf, 0x7ff8);
        c->regs.rflags = get32(buf, 0x7ff4) | X86_RFLAGS_FIXED;
        c->regs.rip = get32(buf, 0x7ff0);
        for (int i = 0; i < 8; i++)
            *gpr(&c->regs, i) = get32(buf, 0x7fd0 + i * 4);
        c->dr6 = get32(buf, 0x7fcc);
        c->dr7 = get32(buf, 0x7fc8);
        s->tr = seg_load((uint16_t)get32(buf, 0x7fc4), get32(buf, 0x7f5c), get32(buf, 0x7f60), get32(buf, 0x7f64));
        s->ldt = seg_load((uint16_t)get32(buf, 0x7fc0), get32(buf, 0x7f78), get32(buf, 0x7f7c), get32(buf, 0x7f80));
        s->gdt.base = get32(buf, 0x7f74);
        s->gdt.limit = (uint16_t)get32(buf, 0x7f70);
        s->idt.base = get32(buf, 0x7f58);
        s->idt.limit = (uint16_t)get32(buf, 0x7f54);
        for (int n = 0; n < 6; n++) {
            unsigned off = n < 3 ? 0x7f84 + n * 12 : 0x7f2c + (n - 3) * 12;
            *sreg(s, n) = seg_load((uint16_t)get32(buf, 0x7fa8 + n * 4), get32(buf, off), get32(buf, off + 4),
                                   get32(buf, off + 8));
        }
        s->cr4 = get32(buf, 0x7f14);
        c->smbase = get32(buf, 0x7ef8);
        /* No EFER in the 32-bit area: KVM leaves it as it was (LME cannot be set without long mode). */
        return load_checks(c, cr4_reserved, 0, why);
    }
    if (get64(buf, 0x7ed8)) {
        /* svm_leave_smm: the SMI came while a nested guest ran, and this vCPU has no SVM (none is offered). */
        *why = "a nested guest's state (0x7ed8 set) without SVM";
        return false;
    }
    for (int i = 0; i < 16; i++)
        *gpr(&c->regs, i) = get64(buf, 0x7ff8 - i * 8);
    c->regs.rip = get64(buf, 0x7f78);
    c->regs.rflags = get32(buf, 0x7f70) | X86_RFLAGS_FIXED;
    c->dr6 = get64(buf, 0x7f68);
    c->dr7 = get64(buf, 0x7f60);
    s->cr0 = get64(buf, 0x7f58);
    s->cr3 = get64(buf, 0x7f50);
    s->cr4 = get64(buf, 0x7f48);
    c->smbase = get32(buf, 0x7f00);
    s->efer = get64(buf, 0x7ed0) & ~(uint64_t)X86_EFER_LMA;
    s->tr = seg_load(get16(buf, 0x7e90), (uint32_t)get16(buf, 0x7e92) << 8, get32(buf, 0x7e94),
                     get32(buf, 0x7e98) | (uint64_t)get32(buf, 0x7e9c) << 32);
    s->idt.limit = (uint16_t)get32(buf, 0x7e84);
    s->idt.base = get64(buf, 0x7e88);
    s->ldt = seg_load(get16(buf, 0x7e70), (uint32_t)get16(buf, 0x7e72) << 8, get32(buf, 0x7e74),
                      get32(buf, 0x7e78) | (uint64_t)get32(buf, 0x7e7c) << 32);
    s->gdt.limit = (uint16_t)get32(buf, 0x7e64);
    s->gdt.base = get64(buf, 0x7e68);
    for (int n = 0; n < 6; n++) {
        unsigned off = 0x7e00 + n * 16;
        *sreg(s, n) = seg_load(get16(buf, off), (uint32_t)get16(buf, off + 2) << 8, get32(buf, off + 4),
                               get32(buf, off + 8) | (uint64_t)get32(buf, off + 12) << 32);
    }
    return load_checks(c, cr4_reserved, efer_reserved, why);
}

/* The vCPU's CPUID has long mode (KVM's guest_cpuid_has(X86_FEATURE_LM)): the AMD64 state-save layout. */
static bool soft_smm_lm(const struct soft_vcpu *v)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, 0x80000001u, 0);
    return e && (e->edx & CPUID_8_1_EDX_LM);
}

/* The EFER bits a guest's write may not set (efer_reserved_bits on AMD without nested SVM, __kvm_valid_efer). */
static uint64_t soft_smm_efer_reserved(const struct soft_vcpu *v)
{
    const struct kvm_cpuid_entry2 *e = soft_cpuid_find(v->cpuid, v->ncpuid, 0x80000001u, 0);
    uint64_t ok = X86_EFER_SCE;
    if (e && (e->edx & CPUID_8_1_EDX_LM))
        ok |= X86_EFER_LME | X86_EFER_LMA;
    if (e && (e->edx & CPUID_8_1_EDX_NX))
        ok |= X86_EFER_NXE;
    return ~ok;
}

/* An address space with no slots: what a vCPU in SMM sees when the VMM gave address space 1 none. */
static struct soft_vm soft_smm_no_slots;

struct soft_vm *soft_vcpu_mem(struct soft_vcpu *v)
{
    if (!v->smm.in_smm)
        return v->vm;
    return v->vm->smram ? v->vm->smram : &soft_smm_no_slots;
}

struct soft_vm *soft_vm_as(struct soft_vm *vm, uint32_t as_id)
{
    if (as_id == 0)
        return vm;
    if (as_id != 1) {
        soft_set_error("soft backend: memory slot in address space %u: KVM has 0 and 1 (SMM) only", as_id);
        return NULL;
    }
    if (!vm->smram)
        vm->smram = calloc(1, sizeof *vm->smram); /* only its slots are used */
    if (!vm->smram)
        soft_set_error("soft backend: out of memory for address space 1");
    return vm->smram;
}

int soft_smm_gaps_split(const struct soft_vcpu *v, uint64_t *base, uint64_t *end, int n, int max)
{
    const struct soft_vm *vm = v->vm;
    if (!vm->smram)
        return n;
    const struct soft_vm *other = v->smm.in_smm ? vm : vm->smram;
    uint64_t cut[2 * SOFT_MAX_SLOTS];
    int nc = 0;
    for (int i = 0; i < SOFT_MAX_SLOTS; i++) {
        if (!other->slots[i].used)
            continue;
        uint64_t e[2] = {other->slots[i].gpa, other->slots[i].gpa + other->slots[i].size};
        for (int k = 0; k < 2; k++) {
            int j = nc++;
            for (; j > 0 && cut[j - 1] > e[k]; j--)
                cut[j] = cut[j - 1];
            cut[j] = e[k];
        }
    }
    uint64_t nb[2 * SOFT_MAX_SLOTS + SOFT_MAX_SLOTS + 1], ne[2 * SOFT_MAX_SLOTS + SOFT_MAX_SLOTS + 1];
    int m = 0;
    for (int g = 0; g < n; g++) {
        uint64_t at = base[g];
        for (int c = 0; c < nc; c++) {
            if (cut[c] <= at || cut[c] >= end[g])
                continue;
            nb[m] = at;
            ne[m++] = cut[c];
            at = cut[c];
        }
        nb[m] = at;
        ne[m++] = end[g];
    }
    if (m > max)
        return n; /* too many pieces to keep: the gaps stay whole (each SMM entry and exit then maps them again) */
    memcpy(base, nb, (size_t)m * sizeof nb[0]);
    memcpy(end, ne, (size_t)m * sizeof ne[0]);
    return m;
}

void soft_smm_vm_destroy(struct soft_vm *vm)
{
    if (!vm->smram)
        return;
    for (int i = 0; i < SOFT_MAX_SLOTS; i++)
        free(vm->smram->slots[i].snapshot);
    free(vm->smram);
    vm->smram = NULL;
}

void soft_smm_reset(struct soft_vcpu *v, bool init_event)
{
    v->smm.in_smm = v->smm.pending = v->smm.inside_nmi = false;
    v->smm.count = 0;
    if (!init_event)
        v->smm.smbase = SOFT_SMM_SMBASE_RESET;
}

void soft_smm_raise(struct soft_vcpu *v)
{
    __atomic_store_n(&v->smm.pending, true, __ATOMIC_RELEASE);
    __atomic_store_n(&v->irq_kick, 1, __ATOMIC_RELEASE); /* the block hook stops the engine: the SMI goes in */
}

/* Copy len bytes between buf and guest-physical gpa of the vCPU's address space; false where no slot has them. */
static bool soft_smm_phys(struct soft_vcpu *v, uint64_t gpa, uint8_t *buf, size_t len, bool write)
{
    uint8_t *h = soft_gpa_to_hva(soft_vcpu_mem(v), gpa, len);
    if (!h)
        return false;
    if (write)
        memcpy(h, buf, len);
    else
        memcpy(buf, h, len);
    return true;
}

static void soft_smm_cpu_get(struct soft_vcpu *v, struct soft_smm_cpu *c)
{
    soft_regs_get(v, &c->regs);
    soft_sregs_get(v, &c->sregs);
    c->dr6 = soft_rd(v, UC_X86_REG_DR6);
    c->dr7 = soft_rd(v, UC_X86_REG_DR7);
    c->smbase = v->smm.smbase;
}

static void soft_smm_cpu_set(struct soft_vcpu *v, const struct soft_smm_cpu *c)
{
    soft_sregs_set(v, &c->sregs);
    soft_regs_set(v, &c->regs);
    soft_wr(v, UC_X86_REG_DR6, c->dr6);
    soft_wr(v, UC_X86_REG_DR7, c->dr7);
}

/* KVM's enter_smm: the state-save area written into SMRAM (address space 1), then the SMM entry state. */
static void soft_smm_enter(struct soft_vcpu *v)
{
    struct soft_smm_cpu c;
    uint8_t buf[SOFT_SMM_SAVE_SIZE];
    bool lm = soft_smm_lm(v);
    soft_smm_cpu_get(v, &c);
    soft_smm_save(&c, lm, buf);
    v->smm.in_smm = true;
    /* As kvm_vcpu_write_guest: nothing is written where address space 1 has no RAM. */
    soft_smm_phys(v, v->smm.smbase + SOFT_SMM_SAVE_OFFSET, buf, sizeof buf, true);
    /* NMI blocking is not consulted here: the SMI counts as taken outside an NMI handler (inside_nmi 0). */
    v->smm.inside_nmi = false;
    soft_smm_entry_state(&c, lm);
    soft_smm_cpu_set(v, &c);
}

bool soft_smm_check(struct soft_vcpu *v)
{
    bool entered = false;
    /* KVM's inject_pending_event: an SMI goes in unless the vCPU is in SMM already (svm_smi_blocked). */
    if (v->smm.pending && !v->smm.in_smm) {
        v->smm.pending = false;
        v->smm.count++;
        soft_smm_enter(v);
        entered = true;
    }
    if (v->smm.mapped != v->smm.in_smm) {
        /* The vCPU's address space changed (here, at RSM, or by KVM_SET_VCPU_EVENTS): map the other one and drop
         * every cache of guest memory that the slots' generation keys. */
        v->smm.mapped = v->smm.in_smm;
        v->vm->slots_gen++;
    }
    return entered;
}

bool soft_smm_is_rsm(const struct soft_vcpu *v, const uint8_t *b, size_t n)
{
    size_t i = 0;
    /* Legacy prefixes, and REX (outside 64-bit mode those bytes are instructions, which ran before the #UD). */
    while (i < n && (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xf2 || b[i] == 0xf3 || b[i] == 0x26 || b[i] == 0x2e ||
                     b[i] == 0x36 || b[i] == 0x3e || b[i] == 0x64 || b[i] == 0x65 || (b[i] & 0xf0) == 0x40))
        i++;
    return v->smm.in_smm && i + 1 < n && b[i] == 0x0f && b[i + 1] == 0xaa;
}

bool soft_smm_rsm(struct soft_vcpu *v)
{
    uint8_t buf[SOFT_SMM_SAVE_SIZE];
    uint64_t at = v->smm.smbase + SOFT_SMM_SAVE_OFFSET;
    if (!soft_smm_phys(v, at, buf, sizeof buf, false)) {
        /* em_rsm's read_phys failed: X86EMUL_UNHANDLEABLE, an emulation failure. */
        soft_internal_error(v, "RSM: the SMRAM state-save area (SMBASE + 0xfe00) is in no address-space-1 slot");
        return false;
    }
    struct soft_smm_cpu c;
    soft_smm_cpu_get(v, &c);
    v->smm.in_smm = false; /* exiting_smm: address space 0 from here on */
    v->smm.inside_nmi = false;
    const char *why;
    bool lm = soft_smm_lm(v);
    if (!soft_smm_load(buf, lm, soft_cr4_reserved(v->cpuid, v->ncpuid), soft_smm_efer_reserved(v), &c, &why)) {
        /* em_rsm's emulate_shutdown: a triple fault request, KVM_EXIT_SHUTDOWN (no INIT: not the SVM intercept). */
        soft_set_error("soft backend: RSM loaded %s from the state-save area at 0x%llx: shutdown", why,
                       (unsigned long long)at);
        v->run->exit_reason = KVM_EXIT_SHUTDOWN;
        return false;
    }
    v->smm.smbase = c.smbase;
    soft_smm_cpu_set(v, &c);
    return true;
}

bool soft_smm_msr(struct soft_vcpu *v, uint32_t idx, uint64_t *val, bool set, bool host)
{
    switch (idx) {
    case X86_MSR_SMBASE: /* host-initiated only: the guest gets #GP */
        if (!host)
            return false;
        if (set)
            v->smm.smbase = *val;
        else
            *val = v->smm.smbase;
        return true;
    case X86_MSR_SMI_COUNT: /* the guest may read it; only the VMM writes it */
        if (set && !host)
            return false;
        if (set)
            v->smm.count = *val;
        else
            *val = v->smm.count;
        return true;
    default:
        return false;
    }
}
