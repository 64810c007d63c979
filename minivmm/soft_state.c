/* The soft backend's vCPU state: KVM_GET/SET_REGS and SREGS on the engine's state image, and the reset state. */
#include "soft_uc_state.h"

#include <string.h>

static const int soft_gpr_ids[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

void img_update_hflags(struct soft_vcpu *v, uint64_t rflags)
{
    uint32_t keep =
        ~(HF_CPL_MASK | HF_PE_MASK | HF_MP_MASK | HF_EM_MASK | HF_TS_MASK | HF_TF_MASK | HF_VM_MASK | HF_IOPL_MASK |
          HF_OSFXSR_MASK | HF_LMA_MASK | HF_CS32_MASK | HF_SS32_MASK | HF_CS64_MASK | HF_ADDSEG_MASK);
    uint32_t hf = img_u32(v, soft_layout.hflags) & keep;
    uint64_t cr0 = IMG_CR(v, 0), cr4 = IMG_CR(v, 4), efer = img_u64(v, soft_layout.efer);
    struct soft_seg *cs = img_seg(v, R_CS), *ss = img_seg(v, R_SS);
    hf |= (ss->flags >> SOFT_SEG_DPL_SHIFT) & HF_CPL_MASK;
    hf |= (uint32_t)(cr0 & X86_CR0_PE) << 7;
    hf |= (uint32_t)(cr0 << 8) & (HF_MP_MASK | HF_EM_MASK | HF_TS_MASK);
    hf |= (uint32_t)rflags & (HF_TF_MASK | HF_VM_MASK | HF_IOPL_MASK);
    if (cr4 & X86_CR4_OSFXSR)
        hf |= HF_OSFXSR_MASK;
    if (efer & X86_EFER_LMA)
        hf |= HF_LMA_MASK;
    if ((hf & HF_LMA_MASK) && (cs->flags & (1u << SOFT_SEG_L_SHIFT))) {
        hf |= HF_CS32_MASK | HF_SS32_MASK | HF_CS64_MASK;
    } else {
        hf |= (cs->flags >> (SOFT_SEG_B_SHIFT - 4)) & HF_CS32_MASK;
        hf |= (ss->flags >> (SOFT_SEG_B_SHIFT - 5)) & HF_SS32_MASK;
        if (!(cr0 & X86_CR0_PE) || (rflags & X86_RFLAGS_VM) || !(hf & HF_CS32_MASK))
            hf |= HF_ADDSEG_MASK;
        else if (img_seg(v, R_DS)->base | img_seg(v, R_ES)->base | ss->base)
            hf |= HF_ADDSEG_MASK;
    }
    img_set_u32(v, soft_layout.hflags, hf);
}

void soft_regs_get(struct soft_vcpu *v, struct kvm_regs *r)
{
    uint64_t g[16];
    for (int i = 0; i < 16; i++)
        g[i] = soft_rd(v, soft_gpr_ids[i]);
    *r = (struct kvm_regs){.rax = g[0],
                           .rbx = g[1],
                           .rcx = g[2],
                           .rdx = g[3],
                           .rsi = g[4],
                           .rdi = g[5],
                           .rsp = g[6],
                           .rbp = g[7],
                           .r8 = g[8],
                           .r9 = g[9],
                           .r10 = g[10],
                           .r11 = g[11],
                           .r12 = g[12],
                           .r13 = g[13],
                           .r14 = g[14],
                           .r15 = g[15],
                           .rip = soft_rd(v, UC_X86_REG_RIP),
                           .rflags = soft_rd(v, UC_X86_REG_RFLAGS)};
    if (v->in_exit && v->io_exit)
        r->rip = soft_io_exit_rip(v, r->rip);
    soft_io_done_regs(v, r); /* an exit KVM_RUN with immediate_exit completed */
}

void soft_regs_set(struct soft_vcpu *v, const struct kvm_regs *r)
{
    if (v->in_exit && v->io_exit &&
        ((v->io_done && r->rip == v->io_done_rip) || r->rip == soft_io_exit_rip(v, soft_rd(v, UC_X86_REG_RIP)))) {
        /* The engine is inside the I/O instruction; its RIP register must stay as the engine left it. */
        struct kvm_regs same = *r;
        same.rip = soft_rd(v, UC_X86_REG_RIP);
        r = &same;
        const uint64_t g[16] = {r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
                                r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};
        for (int i = 0; i < 16; i++)
            soft_wr(v, soft_gpr_ids[i], g[i]);
        soft_wr(v, UC_X86_REG_RFLAGS, r->rflags | X86_RFLAGS_FIXED);
        return;
    }
    if (v->in_exit)
        soft_set_error(
            "soft backend: KVM_SET_REGS moving RIP during an I/O or MMIO exit takes effect at the next block");
    const uint64_t g[16] = {r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
                            r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15};
    for (int i = 0; i < 16; i++)
        soft_wr(v, soft_gpr_ids[i], g[i]);
    soft_wr(v, UC_X86_REG_RIP, r->rip);
    uint64_t old = soft_rd(v, UC_X86_REG_RFLAGS);
    uint64_t fl = r->rflags | X86_RFLAGS_FIXED;
    soft_wr(v, UC_X86_REG_RFLAGS, fl);
    if ((old ^ fl) & (X86_RFLAGS_TF | X86_RFLAGS_VM | X86_RFLAGS_IOPL)) {
        img_load(v);
        img_update_hflags(v, fl);
        img_commit(v);
        v->seg_check = true;
    }
}

void soft_sregs_get(struct soft_vcpu *v, struct kvm_sregs *s)
{
    img_load(v);
    memset(s, 0, sizeof *s);
    struct kvm_segment *k[8] = {&s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldt, &s->tr};
    for (int i = 0; i < 8; i++)
        soft_seg_to_kvm(img_seg(v, i), k[i]);
    /* As KVM on AMD reports them (svm_get_segment): DS-GS always accessed, TR always busy. */
    for (int i = 0; i < 6; i++)
        if (k[i] != &s->cs && k[i] != &s->ss && !k[i]->unusable)
            k[i]->type |= 1;
    s->tr.type |= 2;
    s->gdt.base = img_seg(v, R_GDT)->base;
    s->gdt.limit = (uint16_t)img_seg(v, R_GDT)->limit;
    s->idt.base = img_seg(v, R_IDT)->base;
    s->idt.limit = (uint16_t)img_seg(v, R_IDT)->limit;
    s->cr0 = IMG_CR(v, 0);
    s->cr2 = IMG_CR(v, 2);
    s->cr3 = IMG_CR(v, 3);
    s->cr4 = IMG_CR(v, 4);
    s->cr8 = v->cr8;
    s->efer = img_u64(v, soft_layout.efer);
    s->apic_base = v->apic_base;
    if (v->irq_pending >= 0)
        s->interrupt_bitmap[v->irq_pending / 64] |= 1ull << (v->irq_pending % 64);
}

void soft_sregs_set(struct soft_vcpu *v, const struct kvm_sregs *s)
{
    uint64_t rflags = soft_rd(v, UC_X86_REG_RFLAGS);
    img_load(v);
    const struct kvm_segment *k[8] = {&s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs, &s->ldt, &s->tr};
    for (int i = 0; i < 8; i++)
        soft_seg_from_kvm(img_seg(v, i), k[i]);
    img_seg(v, R_GDT)->base = s->gdt.base;
    img_seg(v, R_GDT)->limit = s->gdt.limit;
    img_seg(v, R_IDT)->base = s->idt.base;
    img_seg(v, R_IDT)->limit = s->idt.limit;
    img_set_u64(v, soft_layout.cr + 0, s->cr0);
    img_set_u64(v, soft_layout.cr + 16, s->cr2);
    img_set_u64(v, soft_layout.cr + 24, s->cr3);
    img_set_u64(v, soft_layout.cr + 32, s->cr4);
    img_set_u64(v, soft_layout.efer, s->efer);
    img_update_hflags(v, rflags);
    img_store(v);
    /* Let the engine's own CR0/CR4 handlers recompute the derived bits (MP/EM/TS, OSFXSR, paging mode). */
    uint64_t cr4 = s->cr4;
    uc_reg_write(v->uc, UC_X86_REG_CR4, &cr4);
    img_load(v);
    img_set_u64(v, soft_layout.efer, s->efer);
    img_set_u64(v, soft_layout.cr + 0, s->cr0);
    img_update_hflags(v, rflags);
    img_store(v);
    v->cr8 = s->cr8;
    v->apic_base = s->apic_base;
    v->seg_check = true;
    int pending = -1;
    for (int i = 0; i < 256 && pending < 0; i++)
        if (s->interrupt_bitmap[i / 64] & (1ull << (i % 64)))
            pending = i;
    v->irq_pending = pending;
}

/*
 * The state KVM gives a new vCPU (kvm_vcpu_reset). init_event: an INIT (here
 * after a triple fault), which keeps the APIC base and CR0.CD/NW, and
 * RDX = the family/model/stepping (CPUID leaf 1 EAX) of the vCPU's CPUID table.
 */
void soft_vcpu_reset(struct soft_vcpu *v, bool init_event)
{
    uint64_t rdx = 0x600;
    for (int i = 0; i < v->ncpuid; i++)
        if (v->cpuid[i].function == 1)
            rdx = v->cpuid[i].eax;
    struct kvm_regs r = {.rip = 0xfff0, .rflags = X86_RFLAGS_FIXED, .rdx = rdx};
    /* KVM on AMD (the oracle, svm.c init_vmcb): code read/execute and data read/write, not yet accessed; a 16-bit
     * busy TSS. KVM_GET_SREGS then reports DS-GS as accessed (see soft_sregs_get). */
    struct kvm_segment data = {.limit = 0xffff, .type = 2, .present = 1, .s = 1};
    struct kvm_sregs s = {
        .cs = {.selector = 0xf000, .base = 0xffff0000, .limit = 0xffff, .type = 0xa, .present = 1, .s = 1},
        .ds = data,
        .es = data,
        .fs = data,
        .gs = data,
        .ss = data,
        .ldt = {.limit = 0xffff, .type = 2, .present = 1},
        .tr = {.limit = 0xffff, .type = 3, .present = 1},
        .gdt = {.limit = 0xffff},
        .idt = {.limit = 0xffff},
        .cr0 = 0x60000010,
        .apic_base = 0xfee00000 | 0x800 | (soft_vcpu_is_reset_bsp(v) ? 0x100 : 0), /* KVM_SET_BOOT_CPU_ID's */
    };
    if (init_event) {
        img_load(v);
        s.cr0 = X86_CR0_ET | (IMG_CR(v, 0) & (X86_CR0_CD | X86_CR0_NW)); /* ET, CD and NW as they were */
        s.apic_base = v->apic_base;
    }
    v->irq_pending = -1;
    soft_sregs_set(v, &s);
    soft_regs_set(v, &r);
    img_load(v);
    img_set_u32(v, soft_layout.old_exception, 0xffffffffu); /* no exception in progress */
    img_commit(v);
    v->irq_pending = -1;
    v->kvm_system_time = 0; /* kvmclock_reset */
    soft_smm_reset(v, init_event);
}
