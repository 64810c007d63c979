/*
 * System management mode on the soft backend (soft_smm.c), as KVM on AMD gives it: the state-save area's layout
 * (x86.c enter_smm_save_state_32/64), the SMM entry state, what RSM loads and refuses (emulate.c em_rsm), and end to
 * end through KVM's ioctls on a real-mode guest: KVM_SMI, SMRAM in memory address space 1 (the only memory a vCPU in
 * SMM sees), MSR_IA32_SMBASE, MSR_SMI_COUNT, RSM back, RSM outside SMM (#UD), a state-save area RSM refuses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_irq.h"
#include "lab.h"
#include "mvm.h"
#include "soft_priv.h"
#include "soft_smm.h"
#include "x86.h"

/* EFER's reserved bits for a vCPU with long mode and NX. */
#define EFER_RSVD (~(uint64_t)(X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE))

/* The state-save area's bytes at an SDM offset (0x7e00-0x7fff). */
static uint64_t at(const uint8_t *buf, unsigned off, unsigned size)
{
    uint64_t x = 0;
    memcpy(&x, buf + off - 0x7e00, size);
    return x;
}

/* A vCPU state with a distinct value in every field the state-save area holds: long mode, paging, a TSS, an LDT. */
static struct soft_smm_cpu sample(void)
{
    struct soft_smm_cpu c = {.dr6 = 0xffff0ff1, .dr7 = 0x401, .smbase = 0x1000000};
    __u64 *r = &c.regs.rax;
    for (int i = 0; i < 16; i++)
        r[i] = 0x1111111111111111ull * (uint64_t)(i + 1);
    c.regs.rip = 0xffffffff80001234ull;
    c.regs.rflags = 0x246;
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb, .present = 1, .s = 1, .l = 1, .g = 1};
    struct kvm_segment data = {
        .base = 0x12340000, .limit = 0xffffffff, .selector = 0x18, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1};
    c.sregs.cs = code;
    c.sregs.ds = c.sregs.es = c.sregs.ss = data;
    c.sregs.fs = data;
    c.sregs.fs.base = 0x7fff00001000ull;
    c.sregs.gs = data;
    c.sregs.gs.base = 0xffff888000002000ull;
    c.sregs.tr =
        (struct kvm_segment){.base = 0xfffffe0000003000ull, .limit = 0x67, .selector = 0x40, .type = 0xb, .present = 1};
    c.sregs.ldt = (struct kvm_segment){.base = 0x5000, .limit = 0xfff, .selector = 0x50, .type = 2, .present = 1};
    c.sregs.gdt = (struct kvm_dtable){.base = 0xfffffe0000001000ull, .limit = 0x7f};
    c.sregs.idt = (struct kvm_dtable){.base = 0xfffffe0000000000ull, .limit = 0xfff};
    c.sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    c.sregs.cr2 = 0xdead000;
    c.sregs.cr3 = 0x9000;
    c.sregs.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
    c.sregs.efer = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
    return c;
}

/* The AMD64 layout, at KVM's offsets: GPRs in KVM's order from 0x7ff8 down, segments from 0x7e00, revision 0x20064. */
static void save_64_layout(void **state)
{
    (void)state;
    struct soft_smm_cpu c = sample();
    uint8_t buf[SOFT_SMM_SAVE_SIZE];
    soft_smm_save(&c, true, buf);
    assert_int_equal(at(buf, 0x7ff8, 8), c.regs.rax);
    assert_int_equal(at(buf, 0x7ff0, 8), c.regs.rcx);
    assert_int_equal(at(buf, 0x7fe8, 8), c.regs.rdx);
    assert_int_equal(at(buf, 0x7fe0, 8), c.regs.rbx);
    assert_int_equal(at(buf, 0x7fd8, 8), c.regs.rsp);
    assert_int_equal(at(buf, 0x7fc0, 8), c.regs.rdi);
    assert_int_equal(at(buf, 0x7f80, 8), c.regs.r15);
    assert_int_equal(at(buf, 0x7f78, 8), c.regs.rip);
    assert_int_equal(at(buf, 0x7f70, 4), 0x246);
    assert_int_equal(at(buf, 0x7f68, 8), 0xffff0ff1);
    assert_int_equal(at(buf, 0x7f60, 8), 0x401);
    assert_int_equal(at(buf, 0x7f58, 8), c.sregs.cr0);
    assert_int_equal(at(buf, 0x7f50, 8), 0x9000);
    assert_int_equal(at(buf, 0x7f48, 8), c.sregs.cr4);
    assert_int_equal(at(buf, 0x7f00, 4), 0x1000000);
    assert_int_equal(at(buf, 0x7efc, 4), SOFT_SMM_REV_64);
    assert_int_equal(at(buf, 0x7ed0, 8), c.sregs.efer);
    /* TR: selector, attributes (the descriptor's high dword >> 8: type 0xb, P), limit, 64-bit base. */
    assert_int_equal(at(buf, 0x7e90, 2), 0x40);
    assert_int_equal(at(buf, 0x7e92, 2), 0x8b);
    assert_int_equal(at(buf, 0x7e94, 4), 0x67);
    assert_int_equal(at(buf, 0x7e98, 8), c.sregs.tr.base);
    assert_int_equal(at(buf, 0x7e84, 4), 0xfff);
    assert_int_equal(at(buf, 0x7e88, 8), c.sregs.idt.base);
    assert_int_equal(at(buf, 0x7e70, 2), 0x50);
    assert_int_equal(at(buf, 0x7e78, 8), 0x5000);
    assert_int_equal(at(buf, 0x7e64, 4), 0x7f);
    assert_int_equal(at(buf, 0x7e68, 8), c.sregs.gdt.base);
    /* CS (segment 1): G, L, P, S, type 0xb; GS (segment 5) with its whole base. */
    assert_int_equal(at(buf, 0x7e10, 2), 0x10);
    assert_int_equal(at(buf, 0x7e12, 2), 0xa09b);
    assert_int_equal(at(buf, 0x7e14, 4), 0xffffffff);
    assert_int_equal(at(buf, 0x7e58, 8), c.sregs.gs.base);
    /* Nothing else: CR2 is not saved. */
    assert_int_equal(at(buf, 0x7f40, 8), 0);
}

/* The 32-bit layout (a vCPU whose CPUID has no long mode): revision 0x20000, SMBASE at 0x7ef8. */
static void save_32_layout(void **state)
{
    (void)state;
    struct soft_smm_cpu c = sample();
    uint8_t buf[SOFT_SMM_SAVE_SIZE];
    soft_smm_save(&c, false, buf);
    assert_int_equal(at(buf, 0x7ffc, 4), (uint32_t)c.sregs.cr0);
    assert_int_equal(at(buf, 0x7ff0, 4), (uint32_t)c.regs.rip);
    assert_int_equal(at(buf, 0x7fd0, 4), (uint32_t)c.regs.rax);
    assert_int_equal(at(buf, 0x7fec, 4), (uint32_t)c.regs.rdi);
    assert_int_equal(at(buf, 0x7fac, 4), 0x10);                        /* CS's selector */
    assert_int_equal(at(buf, 0x7f90, 4), 0xa09b00);                    /* CS's attributes, in place */
    assert_int_equal(at(buf, 0x7f40, 4), (uint32_t)0x7fff00001000ull); /* FS's base, low half */
    assert_int_equal(at(buf, 0x7f14, 4), (uint32_t)c.sregs.cr4);
    assert_int_equal(at(buf, 0x7efc, 4), SOFT_SMM_REV_32);
    assert_int_equal(at(buf, 0x7ef8, 4), 0x1000000);
}

/* enter_smm: big real mode at SMBASE:0x8000; GDT, LDT, TR and CR3 stay; EFER 0 with long mode. */
static void entry_state(void **state)
{
    (void)state;
    struct soft_smm_cpu c = sample();
    soft_smm_entry_state(&c, true);
    assert_int_equal(c.regs.rip, 0x8000);
    assert_int_equal(c.regs.rflags, 2);
    assert_int_equal(c.regs.rax, 0x1111111111111111ull);
    assert_int_equal(c.sregs.cs.base, 0x1000000);
    assert_int_equal(c.sregs.cs.selector, 0); /* (SMBASE >> 4) & 0xffff */
    assert_int_equal(c.sregs.cs.limit, 0xffffffff);
    assert_int_equal(c.sregs.cs.type, 3);
    assert_int_equal(c.sregs.cs.db, 0);
    assert_int_equal(c.sregs.ss.base, 0);
    assert_int_equal(c.sregs.ds.selector, 0);
    assert_int_equal(c.sregs.cr0, X86_CR0_ET | X86_CR0_NE | X86_CR0_WP);
    assert_int_equal(c.sregs.cr4, 0);
    assert_int_equal(c.sregs.efer, 0);
    assert_int_equal(c.sregs.idt.limit, 0);
    assert_int_equal(c.dr7, X86_DR7_FIXED_1);
    assert_int_equal(c.sregs.gdt.base, 0xfffffe0000001000ull);
    assert_int_equal(c.sregs.cr3, 0x9000);
    c.smbase = 0x30000;
    soft_smm_entry_state(&c, true);
    assert_int_equal(c.sregs.cs.selector, 0x3000);
}

static void assert_seg_equal(const struct kvm_segment *a, const struct kvm_segment *b)
{
    assert_int_equal(a->base, b->base);
    assert_int_equal(a->limit, b->limit);
    assert_int_equal(a->selector, b->selector);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->present, b->present);
    assert_int_equal(a->dpl, b->dpl);
    assert_int_equal(a->db, b->db);
    assert_int_equal(a->s, b->s);
    assert_int_equal(a->l, b->l);
    assert_int_equal(a->g, b->g);
    assert_int_equal(a->unusable, b->unusable);
}

/* Save, enter SMM, RSM: the state comes back whole (64- and 32-bit layouts). */
static void rsm_round_trip(void **state)
{
    (void)state;
    for (int lm = 1; lm >= 0; lm--) {
        struct soft_smm_cpu c = sample(), smm;
        if (!lm) {
            c.sregs.efer = 0;
            c.sregs.cs.l = 0;
            c.sregs.cs.db = 1;
            c.sregs.fs.base = 0x1000;
            c.sregs.gs.base = 0x2000;
            c.sregs.tr.base = 0x3000;
            c.sregs.gdt.base = 0x4000;
            c.sregs.idt.base = 0x6000;
            c.regs.rip = 0x80001234;
            __u64 *r = &c.regs.rax;
            for (int i = 0; i < 16; i++)
                r[i] = i < 8 ? (uint32_t)r[i] : 0;
        }
        uint8_t buf[SOFT_SMM_SAVE_SIZE];
        soft_smm_save(&c, lm, buf);
        smm = c;
        soft_smm_entry_state(&smm, lm);
        smm.smbase = 0;
        const char *why = NULL;
        assert_true(soft_smm_load(buf, lm, 0, EFER_RSVD, &smm, &why));
        assert_memory_equal(&smm.regs, &c.regs, sizeof c.regs);
        const struct kvm_segment *a[8] = {&smm.sregs.es, &smm.sregs.cs, &smm.sregs.ss, &smm.sregs.ds,
                                          &smm.sregs.fs, &smm.sregs.gs, &smm.sregs.tr, &smm.sregs.ldt};
        const struct kvm_segment *b[8] = {&c.sregs.es, &c.sregs.cs, &c.sregs.ss, &c.sregs.ds,
                                          &c.sregs.fs, &c.sregs.gs, &c.sregs.tr, &c.sregs.ldt};
        for (int i = 0; i < 8; i++)
            assert_seg_equal(a[i], b[i]);
        assert_int_equal(smm.sregs.gdt.base, c.sregs.gdt.base);
        assert_int_equal(smm.sregs.idt.limit, c.sregs.idt.limit);
        assert_int_equal(smm.sregs.cr0, c.sregs.cr0);
        assert_int_equal(smm.sregs.cr3, c.sregs.cr3);
        assert_int_equal(smm.sregs.cr4, c.sregs.cr4);
        assert_int_equal(smm.sregs.efer, c.sregs.efer); /* LMA back from LME and CR0.PG */
        assert_int_equal(smm.dr7, c.dr7);
        assert_int_equal(smm.smbase, 0x1000000);
    }
}

/* A limit goes through a descriptor's 20 bits: without G only its low 20 bits come back; not present: unusable. */
static void rsm_segment_rules(void **state)
{
    (void)state;
    struct soft_smm_cpu c = sample();
    c.sregs.ds.limit = 0x123456;
    c.sregs.ds.g = 0;
    c.sregs.es.present = 0;
    uint8_t buf[SOFT_SMM_SAVE_SIZE];
    soft_smm_save(&c, true, buf);
    const char *why;
    assert_true(soft_smm_load(buf, true, 0, EFER_RSVD, &c, &why));
    assert_int_equal(c.sregs.ds.limit, 0x23456);
    assert_true(c.sregs.es.unusable);
}

/* What KVM refuses while RSM loads the state: each one shuts the vCPU down. */
static void rsm_refusals(void **state)
{
    (void)state;
    struct {
        unsigned off, size;
        uint64_t val;
        uint64_t cr4_reserved;
    } cases[] = {
        {0x7f58, 8, X86_CR0_PG | X86_CR0_ET, 0},         /* CR0.PG without PE */
        {0x7f58, 8, X86_CR0_PE | X86_CR0_NW, 0},         /* NW without CD */
        {0x7f58, 8, 1ull << 32 | X86_CR0_PE, 0},         /* CR0 above bit 31 */
        {0x7f48, 8, X86_CR4_OSFXSR, 0},                  /* long mode without PAE */
        {0x7f48, 8, X86_CR4_PAE | (1u << 22), 1u << 22}, /* a reserved CR4 bit */
        {0x7f60, 8, 1ull << 32, 0},                      /* DR7 above bit 31 */
        {0x7ed0, 8, X86_EFER_LME | (1u << 3), 0},        /* a reserved EFER bit */
        {0x7ed8, 8, 1, 0},                               /* the SMI came in a nested guest: no SVM here */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct soft_smm_cpu c = sample();
        uint8_t buf[SOFT_SMM_SAVE_SIZE];
        soft_smm_save(&c, true, buf);
        memcpy(buf + cases[i].off - 0x7e00, &cases[i].val, cases[i].size);
        const char *why = NULL;
        assert_false(soft_smm_load(buf, true, cases[i].cr4_reserved, EFER_RSVD, &c, &why));
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
}

/* The MMIO gaps of each address space, cut at the other's slot edges: the long gap up to 4 GiB is the same in both. */
static void gaps_split(void **state)
{
    (void)state;
    static struct soft_vm vm, smram;
    static struct soft_vcpu v;
    memset(&vm, 0, sizeof vm);
    memset(&smram, 0, sizeof smram);
    v.vm = &vm;
    v.smm.in_smm = false;
    vm.slots[0] = (struct soft_slot){.used = true, .gpa = 0, .size = 1 << 20};
    uint64_t base[SOFT_MAX_SLOTS + 1] = {1 << 20}, end[SOFT_MAX_SLOTS + 1] = {1ull << 32};
    assert_int_equal(soft_smm_gaps_split(&v, base, end, 1, SOFT_MAX_SLOTS + 1), 1); /* no address space 1 */
    vm.smram = &smram;
    smram.slots[3] = (struct soft_slot){.used = true, .gpa = 0x1000000, .size = 0x10000};
    assert_int_equal(soft_smm_gaps_split(&v, base, end, 1, SOFT_MAX_SLOTS + 1), 3);
    assert_int_equal(base[0], 1 << 20);
    assert_int_equal(end[0], 0x1000000);
    assert_int_equal(base[1], 0x1000000);
    assert_int_equal(end[1], 0x1010000);
    assert_int_equal(base[2], 0x1010000);
    assert_int_equal(end[2], 1ull << 32);
    /* In SMM: address space 1's gaps, cut where address space 0's slot ends. */
    v.smm.in_smm = true;
    uint64_t sb[SOFT_MAX_SLOTS + 1] = {0, 0x1010000}, se[SOFT_MAX_SLOTS + 1] = {0x1000000, 1ull << 32};
    assert_int_equal(soft_smm_gaps_split(&v, sb, se, 2, SOFT_MAX_SLOTS + 1), 3);
    assert_int_equal(se[0], 1 << 20);
    assert_int_equal(sb[1], 1 << 20);
    assert_int_equal(se[1], 0x1000000);
    assert_int_equal(sb[2], 0x1010000);
    /* More pieces than the caller keeps: the gaps stay whole. */
    uint64_t tb[2] = {0, 0x1010000}, te[2] = {0x1000000, 1ull << 32};
    assert_int_equal(soft_smm_gaps_split(&v, tb, te, 2, 2), 2);
    assert_int_equal(te[0], 0x1000000);
}

/*
 * 0x1000: mov al,0x11; out 0x80,al; rsm (#UD outside SMM); 0x1100 (#UD): mov al,0x66; out 0x83,al;
 *         mov ecx,0x9e; rdmsr (#GP: SMBASE is the VMM's); 0x1200 (#GP): mov al,0x0d; out 0x84,al; hlt
 * SMRAM (address space 1) at SMBASE + 0x8000: mov al,[0x1000]; out 0x82,al; rsm
 */
static const uint8_t main_code[] = {0xb0, 0x11, 0xe6, 0x80, 0x0f, 0xaa};
static const uint8_t ud_code[] = {0xb0, 0x66, 0xe6, 0x83, 0x66, 0xb9, 0x9e, 0x00, 0x00, 0x00, 0x0f, 0x32};
static const uint8_t gp_code[] = {0xb0, 0x0d, 0xe6, 0x84, 0xf4};
static const uint8_t smi_handler[] = {0xa0, 0x00, 0x10, 0xe6, 0x82, 0x0f, 0xaa};

#define SMBASE    0x40000u
#define SMRAM_LEN 0x10000u

struct vm1 {
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_run *run;
    uint8_t *smram;
};

/* The VM, with the in-kernel irqchip (local APICs) when chip. */
static int vm1_make(void **state, bool chip)
{
    struct vm1 *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    *state = g;
    assert_int_equal(mvm_backend_pick("soft", &g->be), 0);
    assert_int_equal(vm_create(g->be, &g->vm), 0);
    if (chip && vm_irqchip_create(g->vm) < 0)
        fail_msg("vm_irqchip_create: %s", mvm_error());
    assert_int_equal(vm_mem_add(g->vm, 0, 1 << 20, 0), 0);
    assert_int_equal(vcpu_create(g->vm, 0, &g->vcpu), 0);
    if (vcpu_setup_mode(g->vcpu, MVM_MODE_REAL, 0x1000) < 0)
        fail_msg("vcpu_setup_mode: %s", mvm_error());
    assert_int_equal(vm_write(g->vm, 0x1000, main_code, sizeof main_code), 0);
    assert_int_equal(vm_write(g->vm, 0x1100, ud_code, sizeof ud_code), 0);
    assert_int_equal(vm_write(g->vm, 0x1200, gp_code, sizeof gp_code), 0);
    uint32_t ud = 0x1100, gp = 0x1200; /* real-mode vectors 6 and 13: offset, segment 0 */
    assert_int_equal(vm_write(g->vm, 6 * 4, &ud, 4), 0);
    assert_int_equal(vm_write(g->vm, 13 * 4, &gp, 4), 0);
    uint8_t hlt = 0xf4; /* address space 0 at SMBASE + 0x8000: never run */
    assert_int_equal(vm_write(g->vm, SMBASE + 0x8000, &hlt, 1), 0);
    g->smram = aligned_alloc(4096, SMRAM_LEN);
    assert_non_null(g->smram);
    memset(g->smram, 0, SMRAM_LEN);
    memcpy(g->smram + 0x8000, smi_handler, sizeof smi_handler);
    struct kvm_userspace_memory_region r = {.slot = 1u << 16 | 1,
                                            .guest_phys_addr = SMBASE,
                                            .memory_size = SMRAM_LEN,
                                            .userspace_addr = (uint64_t)(uintptr_t)g->smram};
    assert_int_equal(vm_ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION"), 0);
    g->run = vcpu_run_page(g->vcpu);
    return 0;
}

static int vm1_create(void **state)
{
    return vm1_make(state, false);
}

static int vm1_create_chip(void **state)
{
    return vm1_make(state, true);
}

static int vm1_destroy(void **state)
{
    struct vm1 *g = *state;
    vm_destroy(g->vm);
    free(g->smram);
    free(g);
    return 0;
}

static void enter(struct vm1 *g)
{
    alarm(10);
    int rc = vcpu_enter(g->vcpu);
    alarm(0);
    assert_int_equal(rc, 0);
}

static void expect_out(struct vm1 *g, uint16_t port, uint8_t data)
{
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.direction, KVM_EXIT_IO_OUT);
    assert_int_equal(g->run->io.port, port);
    assert_int_equal(((uint8_t *)g->run)[g->run->io.data_offset], data);
}

static uint64_t msr_get(struct vm1 *g, uint32_t idx)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = idx};
    assert_int_equal(vcpu_ioctl(g->vcpu, KVM_GET_MSRS, &m, "KVM_GET_MSRS"), 1);
    return m.e.data;
}

static void msr_set(struct vm1 *g, uint32_t idx, uint64_t val)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e;
    } m = {.h.nmsrs = 1, .e.index = idx, .e.data = val};
    assert_int_equal(vcpu_ioctl(g->vcpu, KVM_SET_MSRS, &m, "KVM_SET_MSRS"), 1);
}

/* KVM_SMI before the first instruction: the handler in SMRAM runs, sees no address-space-0 memory, RSM goes back. */
static void smi_handler_and_rsm(void **state)
{
    struct vm1 *g = *state;
    assert_int_equal(msr_get(g, X86_MSR_SMBASE), SOFT_SMM_SMBASE_RESET);
    msr_set(g, X86_MSR_SMBASE, SMBASE);
    assert_int_equal(msr_get(g, X86_MSR_SMBASE), SMBASE);
    struct kvm_sregs before, in_smm, after;
    assert_int_equal(vcpu_sregs_get(g->vcpu, &before), 0);
    assert_int_equal(vcpu_ioctl(g->vcpu, KVM_SMI, NULL, "KVM_SMI"), 0);
    /* The handler reads 0x1000: RAM in address space 0, nothing in address space 1, so an MMIO exit. */
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_MMIO);
    assert_int_equal(g->run->mmio.phys_addr, 0x1000);
    assert_int_equal(g->run->mmio.len, 1);
    assert_false(g->run->mmio.is_write);
    g->run->mmio.data[0] = 0x77;
    expect_out(g, 0x82, 0x77);
    struct kvm_regs r;
    assert_int_equal(vcpu_regs_get(g->vcpu, &r), 0);
    assert_int_equal(r.rip, 0x8003); /* at the OUT, an offset in CS (base SMBASE), as KVM reports it */
    assert_int_equal(vcpu_sregs_get(g->vcpu, &in_smm), 0);
    assert_int_equal(in_smm.cs.base, SMBASE);
    assert_int_equal(in_smm.cs.selector, SMBASE >> 4);
    assert_int_equal(in_smm.cs.limit, 0xffffffff);
    assert_int_equal(in_smm.cr0 & X86_CR0_PE, 0);
    /* The state-save area KVM wrote at SMBASE + 0xfe00: AMD64's layout, as the vCPU's CPUID (the kit's set-up
     * installs KVM's supported table) has long mode. */
    const uint8_t *save = g->smram + SOFT_SMM_SAVE_OFFSET;
    assert_int_equal(at(save, 0x7efc, 4), SOFT_SMM_REV_64);
    assert_int_equal(at(save, 0x7f00, 4), SMBASE);
    assert_int_equal(at(save, 0x7f78, 8), 0x1000);
    assert_int_equal(at(save, 0x7f58, 8), before.cr0);
    /* CS's attributes as KVM_GET_SREGS showed them: P, DPL, S, type. */
    assert_int_equal(at(save, 0x7e12, 2),
                     before.cs.present << 7 | before.cs.dpl << 5 | before.cs.s << 4 | before.cs.type);
    /* RSM: back at 0x1000 with the state it had. */
    expect_out(g, 0x80, 0x11);
    assert_int_equal(vcpu_sregs_get(g->vcpu, &after), 0);
    assert_int_equal(after.cs.base, before.cs.base);
    assert_int_equal(after.cs.selector, before.cs.selector);
    assert_int_equal(after.cs.limit, before.cs.limit);
    assert_int_equal(after.ss.base, before.ss.base);
    assert_int_equal(after.cr0, before.cr0);
    assert_int_equal(after.idt.limit, before.idt.limit);
    assert_int_equal(msr_get(g, X86_MSR_SMI_COUNT), 1);
    /* RSM outside SMM is #UD; the guest's RDMSR of SMBASE is #GP. */
    expect_out(g, 0x83, 0x66);
    expect_out(g, 0x84, 0x0d);
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_HLT);
}

/* A state-save area RSM cannot load (CR0.PG without PE): the vCPU shuts down. */
static void rsm_bad_state_shuts_down(void **state)
{
    struct vm1 *g = *state;
    msr_set(g, X86_MSR_SMBASE, SMBASE);
    assert_int_equal(vcpu_ioctl(g->vcpu, KVM_SMI, NULL, "KVM_SMI"), 0);
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_MMIO);
    uint64_t cr0 = X86_CR0_PG | X86_CR0_ET;
    memcpy(g->smram + SOFT_SMM_SAVE_OFFSET + (0x7f58 - 0x7e00), &cr0, 8);
    g->run->mmio.data[0] = 0x55;
    expect_out(g, 0x82, 0x55);
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_SHUTDOWN);
}

/*
 * The state of a vCPU in SMM moved to a new VM, as a migration (the selftests' vcpu_save_state) does it: the I/O of
 * the last exit completed by KVM_RUN with immediate_exit, registers, SMBASE and KVM_GET/SET_VCPU_EVENTS' smi.smm;
 * the new vCPU runs on in SMM, sees SMRAM, and RSM takes it back.
 */
static void smm_state_moves(void **state)
{
    struct vm1 *a = *state;
    if (vm_ioctl(a->vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_VCPU_EVENTS, "KVM_CHECK_EXTENSION") <= 0)
        skip(); /* no KVM_GET/SET_VCPU_EVENTS on this backend yet */
    msr_set(a, X86_MSR_SMBASE, SMBASE);
    assert_int_equal(vcpu_ioctl(a->vcpu, KVM_SMI, NULL, "KVM_SMI"), 0);
    struct kvm_vcpu_events ev;
    assert_int_equal(vcpu_ioctl(a->vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS"), 0);
    assert_true(ev.smi.pending);
    assert_false(ev.smi.smm);
    enter(a);
    assert_int_equal(a->run->exit_reason, KVM_EXIT_MMIO);
    a->run->mmio.data[0] = 0x33;
    expect_out(a, 0x82, 0x33);
    a->run->immediate_exit = 1;
    assert_int_equal(vcpu_enter(a->vcpu), -EINTR); /* the OUT completes first */
    a->run->immediate_exit = 0;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    assert_int_equal(vcpu_regs_get(a->vcpu, &regs), 0);
    assert_int_equal(vcpu_sregs_get(a->vcpu, &sregs), 0);
    assert_int_equal(vcpu_ioctl(a->vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS"), 0);
    assert_true(ev.smi.smm); /* still in SMM, at the RSM */
    assert_false(ev.smi.pending);
    assert_true(ev.flags & KVM_VCPUEVENT_VALID_SMM);
    assert_int_equal(regs.rip, 0x8005);
    void *bstate;
    assert_int_equal(vm1_create(&bstate), 0);
    struct vm1 *b = bstate;
    memcpy(b->smram, a->smram, SMRAM_LEN); /* SMRAM with the handler and the state-save area A wrote */
    msr_set(b, X86_MSR_SMBASE, msr_get(a, X86_MSR_SMBASE));
    assert_int_equal(vcpu_sregs_set(b->vcpu, &sregs), 0);
    assert_int_equal(vcpu_regs_set(b->vcpu, &regs), 0);
    assert_int_equal(vcpu_ioctl(b->vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS"), 0);
    expect_out(b, 0x80, 0x11); /* the handler's RSM, then the interrupted code */
    struct kvm_sregs back;
    assert_int_equal(vcpu_sregs_get(b->vcpu, &back), 0);
    assert_int_equal(back.cs.base, 0);
    assert_int_equal(vcpu_ioctl(b->vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS"), 0);
    assert_false(ev.smi.smm);
    vm1_destroy(&bstate);
}

/*
 * 0x1000: mov ecx,0x1b; rdmsr; or ah,0x0c; wrmsr (x2APIC on); mov ecx,0x830; mov eax,0x44200; xor edx,edx;
 *         wrmsr (ICR: SMI to self); mov al,0x11; out 0x80,al; hlt
 */
static const uint8_t self_smi_code[] = {0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00, 0x0f, 0x32, 0x80, 0xcc, 0x0c, 0x0f,
                                        0x30, 0x66, 0xb9, 0x30, 0x08, 0x00, 0x00, 0x66, 0xb8, 0x00, 0x42, 0x04,
                                        0x00, 0x66, 0x31, 0xd2, 0x0f, 0x30, 0xb0, 0x11, 0xe6, 0x80, 0xf4};

/* An SMI the guest sends itself through its local APIC (x2APIC ICR, delivery mode SMI): taken right after the WRMSR,
 * before the OUT that follows it in the same block. */
static void apic_self_smi(void **state)
{
    struct vm1 *g = *state;
    msr_set(g, X86_MSR_SMBASE, SMBASE);
    assert_int_equal(vm_write(g->vm, 0x1000, self_smi_code, sizeof self_smi_code), 0);
    enter(g);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_MMIO); /* the handler's read of 0x1000 */
    g->run->mmio.data[0] = 0x42;
    expect_out(g, 0x82, 0x42);
    expect_out(g, 0x80, 0x11);
    assert_int_equal(msr_get(g, X86_MSR_SMI_COUNT), 1);
}

/* The surface: the capabilities, address spaces 0 and 1 only, SMI_COUNT read-only for the guest but set by the VMM. */
static void smm_surface(void **state)
{
    struct vm1 *g = *state;
    assert_int_equal(vm_ioctl(g->vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_X86_SMM, "KVM_CHECK_EXTENSION"),
                     1);
    assert_int_equal(
        vm_ioctl(g->vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_MULTI_ADDRESS_SPACE, "KVM_CHECK_EXTENSION"), 2);
    struct kvm_userspace_memory_region r = {.slot = 2u << 16 | 1,
                                            .guest_phys_addr = 0x200000,
                                            .memory_size = 0x1000,
                                            .userspace_addr = (uint64_t)(uintptr_t)g->smram};
    assert_int_equal(vm_ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION"), -EINVAL);
    /* Two slots of one address space may not overlap; address space 1 overlapping address space 0 is fine. */
    r.slot = 1u << 16 | 2;
    r.guest_phys_addr = SMBASE;
    assert_int_equal(vm_ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, &r, "KVM_SET_USER_MEMORY_REGION"), -EEXIST);
    msr_set(g, X86_MSR_SMI_COUNT, 5);
    assert_int_equal(msr_get(g, X86_MSR_SMI_COUNT), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(save_64_layout),
        cmocka_unit_test(save_32_layout),
        cmocka_unit_test(entry_state),
        cmocka_unit_test(rsm_round_trip),
        cmocka_unit_test(rsm_segment_rules),
        cmocka_unit_test(rsm_refusals),
        cmocka_unit_test(gaps_split),
        cmocka_unit_test_setup_teardown(smi_handler_and_rsm, vm1_create, vm1_destroy),
        cmocka_unit_test_setup_teardown(rsm_bad_state_shuts_down, vm1_create, vm1_destroy),
        cmocka_unit_test_setup_teardown(smm_state_moves, vm1_create, vm1_destroy),
        cmocka_unit_test_setup_teardown(apic_self_smi, vm1_create_chip, vm1_destroy),
        cmocka_unit_test_setup_teardown(smm_surface, vm1_create, vm1_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
