/*
 * Unit tests of the soft backend's CPUID table (soft_cpuid.h): lookups, the guest's view, the supported table and
 * the engine model behind it, KVM's runtime bits, its KVM_SET_SREGS and XCR0 rules; then a vCPU through the KVM API:
 * CR4 before and after KVM_SET_CPUID2, XSAVE in a guest, KVM_SET_CPUID2 after KVM_RUN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "backend.h"
#include "soft_cpuid.h"
#include "soft_priv.h"
#include "x86.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

static void lookup(void **state)
{
    static const struct kvm_cpuid_entry2 tab[] = {
        {.function = 1, .index = 0, .eax = 0x100},
        {.function = 7, .index = 0, .flags = SIG, .ebx = 0x70},
        {.function = 7, .index = 1, .flags = SIG, .ebx = 0x71},
    };
    (void)state;
    assert_ptr_equal(soft_cpuid_find(tab, 3, 7, 1), &tab[2]);
    assert_ptr_equal(soft_cpuid_find(tab, 3, 7, 0), &tab[1]);
    assert_null(soft_cpuid_find(tab, 3, 7, 2));               /* the subleaf counts for leaf 7 */
    assert_ptr_equal(soft_cpuid_find(tab, 3, 1, 5), &tab[0]); /* and not for leaf 1 */
    assert_null(soft_cpuid_find(tab, 3, 2, 0));
    assert_null(soft_cpuid_find(tab, 0, 1, 0)); /* KVM answers zeros until KVM_SET_CPUID2 */
}

static void guest_view(void **state)
{
    const uint32_t osxsave = 1u << 27;
    struct kvm_cpuid_entry2 leaf1 = {.function = 1, .eax = 1, .ebx = 2, .ecx = osxsave | 5, .edx = 4};
    struct kvm_cpuid_entry2 leaf7 = {.function = 7, .ecx = osxsave};
    uint32_t r[4];
    (void)state;
    soft_cpuid_guest_regs(&leaf1, 0, r);
    assert_true(r[0] == 1 && r[1] == 2 && r[2] == 5 && r[3] == 4); /* OSXSAVE off with CR4.OSXSAVE clear */
    leaf1.ecx = 5;
    soft_cpuid_guest_regs(&leaf1, X86_CR4_OSXSAVE, r);
    assert_int_equal(r[2], osxsave | 5); /* and on with it set, whatever the table says */
    soft_cpuid_guest_regs(&leaf7, 0, r);
    assert_int_equal(r[2], osxsave); /* other leaves as they are */
    soft_cpuid_guest_regs(NULL, X86_CR4_OSXSAVE, r);
    assert_true(r[0] == 0 && r[1] == 0 && r[2] == 0 && r[3] == 0);
}

static void supported_fixups(void **state)
{
    uint32_t r[4];
    (void)state;
    memset(r, 0xff, sizeof r);
    soft_cpuid_supported_fixup(1, r);
    assert_int_equal(r[1], 0x0000ffffu);                /* APIC ID: the VMM's */
    assert_int_equal(r[2], ~((1u << 24) | (1u << 27))); /* x2APIC offered (as KVM); no TSC deadline, OSXSAVE */
    r[2] = 0;
    soft_cpuid_supported_fixup(1, r);
    assert_int_equal(r[2], (1u << 31) | (1u << 21) | (1u << 26)); /* the hypervisor, x2APIC and XSAVE bits */
    memset(r, 0, sizeof r);
    soft_cpuid_supported_fixup(0x80000001, r);
    assert_int_equal(r[3], 1u << 29); /* long mode */
    memset(r, 0, sizeof r);
    soft_cpuid_supported_fixup(7, r);
    assert_true(r[0] == 0 && r[1] == (1u << 1) && r[2] == 0 && r[3] == 0); /* TSC_ADJUST, emulated as KVM does */
}

static void supported_table(void **state)
{
    struct kvm_cpuid_entry2 tab[SOFT_MAX_CPUID];
    (void)state;
    int n = soft_supported_cpuid(tab, SOFT_MAX_CPUID);
    assert_true(n > 4);
    const struct kvm_cpuid_entry2 *sig = soft_cpuid_find(tab, n, 0x40000000, 0);
    assert_non_null(sig);
    char name[13] = "";
    memcpy(name, &sig->ebx, 4);
    memcpy(name + 4, &sig->ecx, 4);
    memcpy(name + 8, &sig->edx, 4);
    assert_string_equal(name, "KVMKVMKVM");
    const struct kvm_cpuid_entry2 *feat = soft_cpuid_find(tab, n, 0x40000001, 0);
    assert_non_null(feat);
    /* CLOCKSOURCE, CLOCKSOURCE2, STEAL_TIME, PV_SCHED_YIELD, CLOCKSOURCE_STABLE_BIT */
    assert_int_equal(feat->eax, (1u << 0) | (1u << 3) | (1u << 5) | (1u << 13) | (1u << 24));
    const struct kvm_cpuid_entry2 *l1 = soft_cpuid_find(tab, n, 1, 0);
    assert_non_null(l1);
    assert_true(l1->ecx & (1u << 31));
    const struct kvm_cpuid_entry2 *ext = soft_cpuid_find(tab, n, 0x80000001, 0);
    assert_non_null(ext);
    assert_true(ext->edx & (1u << 29));
    for (int i = 0; i < n; i++)
        assert_int_equal(!!(tab[i].flags & SIG),
                         tab[i].function == 4 || tab[i].function == 7 || tab[i].function == 0xd);
    /* XSAVE with x87 and SSE (cr4_cpuid_sync_test needs it), and the size of their image; no XSAVES (xss_msr_test) */
    assert_true(l1->ecx & (1u << 26));
    assert_true(soft_cpuid_find(tab, n, 0, 0)->eax >= 0xd);
    const struct kvm_cpuid_entry2 *d0 = soft_cpuid_find(tab, n, 0xd, 0), *d1 = soft_cpuid_find(tab, n, 0xd, 1);
    assert_non_null(d0);
    assert_non_null(d1);
    assert_true(d0->eax == 3 && d0->ebx == 576 && d0->ecx == 576 && d0->edx == 0);
    assert_int_equal(d1->eax & ((1u << 1) | (1u << 3)), 0);
    assert_null(soft_cpuid_find(tab, n, 0xd, 2));
    assert_int_equal(soft_supported_cpuid(tab, 2), 2); /* never more than asked for */
}

/* Every feature the supported table offers, the engines' CPU model runs (the backend's own emulation aside). */
static void engine_runs_the_table(void **state)
{
    static uint8_t ram[0x2000] __attribute__((aligned(4096)));
    struct kvm_cpuid_entry2 tab[SOFT_MAX_CPUID];
    static uc_engine *uc; /* kept, not closed: Unicorn 2.1.1 leaks 32 bytes closing an engine that has run */
    (void)state;
    int n = soft_supported_cpuid(tab, SOFT_MAX_CPUID);
    assert_int_equal(soft_uc_open(&uc), UC_ERR_OK);
    assert_int_equal(uc_mem_map_ptr(uc, 0, sizeof ram, UC_PROT_ALL, ram), UC_ERR_OK);
    ram[0x1000] = 0x0f; /* cpuid; hlt */
    ram[0x1001] = 0xa2;
    ram[0x1002] = 0xf4;
    uc_ctl_exits_enable(uc);
    static const struct {
        uint32_t leaf;
        int reg;      /* 1 EBX, 2 ECX, 3 EDX */
        uint32_t own; /* bits the backend emulates itself */
    } words[] = {
        {1, 2, (1u << 31) | (1u << 21)}, /* hypervisor, x2APIC (soft_irqchip.c) */
        {1, 3, 0},
        {7, 1, 1u << 1}, /* TSC_ADJUST (soft_msr.c) */
        {7, 2, 0},
        {0x80000001, 2, 0},
        {0x80000001, 3, 0},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        uint64_t a = words[i].leaf, c = 0;
        uc_reg_write(uc, UC_X86_REG_RAX, &a);
        uc_reg_write(uc, UC_X86_REG_RCX, &c);
        assert_int_equal(uc_emu_start(uc, 0x1000, 0, 0, 0), UC_ERR_OK);
        static const int ids[4] = {UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX};
        uint64_t model = 0;
        uc_reg_read(uc, ids[words[i].reg], &model);
        const struct kvm_cpuid_entry2 *e = soft_cpuid_find(tab, n, words[i].leaf, 0);
        assert_non_null(e);
        const uint32_t regs[4] = {e->eax, e->ebx, e->ecx, e->edx};
        uint32_t offered = regs[words[i].reg] & ~words[i].own;
        if (offered & ~(uint32_t)model)
            fail_msg("CPUID 0x%x reg %d: the table offers 0x%x that the engine's model lacks (model 0x%x)",
                     words[i].leaf, words[i].reg, offered & ~(uint32_t)model, (uint32_t)model);
    }
}

static void runtime_bits(void **state)
{
    struct kvm_cpuid_entry2 t[4] = {
        {.function = 1, .ecx = (1u << 27) | 1, .edx = 0x10},
        {.function = 0xd, .index = 0, .flags = SIG, .eax = 3},
        {.function = 0xd, .index = 1, .flags = SIG, .eax = 1u << 1}, /* XSAVEC: its size follows XCR0 */
        {.function = 0xd, .index = 2, .flags = SIG, .ebx = 0x55},
    };
    (void)state;
    soft_cpuid_update_runtime(t, 4, 0, 0xfee00900);
    assert_int_equal(t[0].ecx, 1);            /* OSXSAVE off with CR4.OSXSAVE clear */
    assert_int_equal(t[0].edx, 0x10 | 0x200); /* APIC on: IA32_APIC_BASE.EN */
    assert_int_equal(t[1].ebx, 576);
    assert_int_equal(t[2].ebx, 576);
    assert_int_equal(t[3].ebx, 0x55);
    soft_cpuid_update_runtime(t, 4, X86_CR4_OSXSAVE, 0xfee00000);
    assert_int_equal(t[0].ecx, (1u << 27) | 1);
    assert_int_equal(t[0].edx, 0x10);
    soft_cpuid_update_runtime(NULL, 0, 0, 0); /* no table: nothing to do */
}

static void maxphyaddr_and_xcr0(void **state)
{
    struct kvm_cpuid_entry2 t[3] = {
        {.function = 0x80000000, .eax = 0x80000008},
        {.function = 0x80000008, .eax = 0x3028},
        {.function = 0xd, .flags = SIG, .eax = 7, .edx = 1},
    };
    (void)state;
    assert_int_equal(soft_cpuid_maxphyaddr(t, 3), 40);
    assert_int_equal(soft_cpuid_maxphyaddr(t, 0), 36);
    t[0].eax = 0x80000004;
    assert_int_equal(soft_cpuid_maxphyaddr(t, 3), 36); /* the leaf is beyond the table's maximum */
    assert_int_equal(soft_cpuid_guest_xcr0(t, 3), 3);  /* AVX and bit 32 asked for: x87 and SSE given */
    assert_int_equal(soft_cpuid_guest_xcr0(t, 2), 0);
    assert_true(soft_xcr0_valid(1, 0)); /* x87 always */
    assert_true(soft_xcr0_valid(3, 3));
    assert_false(soft_xcr0_valid(0, 3)); /* no x87 */
    assert_false(soft_xcr0_valid(2, 3));
    assert_false(soft_xcr0_valid(3, 1)); /* SSE not offered */
    assert_false(soft_xcr0_valid(5, 7)); /* AVX without SSE */
    assert_true(soft_xcr0_valid(7, 7));
    assert_false(soft_xcr0_valid(0x9, 0x1f)); /* BNDREGS without BNDCSR */
    assert_true(soft_xcr0_valid(0x19, 0x1f));
}

static void sregs_rules(void **state)
{
    const uint64_t rsvd = ~0x403ffull; /* bits 0-10 and OSXSAVE allowed */
    struct kvm_sregs lm = {.cr0 = X86_CR0_PE | X86_CR0_PG | (1u << 5),
                           .cr3 = 0x1000,
                           .cr4 = X86_CR4_PAE,
                           .efer = X86_EFER_LME | X86_EFER_LMA,
                           .apic_base = 0xfee00900};
    lm.cs.l = 1;
    struct kvm_sregs s;
    (void)state;
    assert_int_equal(soft_sregs_check(&lm, rsvd, 40, false), 0);
    s = lm, s.cr4 = 0;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* long mode without PAE */
    s = lm, s.efer = X86_EFER_LME;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* nor without LMA */
    s = lm, s.cr3 = 1ull << 40;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* CR3 beyond MAXPHYADDR */
    s = lm, s.cr0 = X86_CR0_PE;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* LMA and CS.L without paging */
    s.efer = X86_EFER_LME;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* CS.L still */
    s.cs.l = 0;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), 0);
    s.cr4 = 1u << 14; /* SMXE */
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL);
    s.cr4 = X86_CR4_OSXSAVE | X86_CR4_OSFXSR;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), 0);
    s.cr0 = X86_CR0_PE | X86_CR0_NW;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* NW without CD */
    s.cr0 = X86_CR0_PG;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* PG without PE */
    s.cr0 = 1ull << 32;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL);
    s.cr0 = X86_CR0_PE;
    s.apic_base = 1u << 10; /* x2APIC mode without the enable bit */
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, true), -EINVAL);
    s.apic_base = 1u << 11;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), 0);
    s.apic_base = (1u << 11) | (1u << 10);
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, false), -EINVAL); /* x2APIC not in CPUID */
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, true), 0);
    s.apic_base = 0xfee00800 | 0x1;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, true), -EINVAL); /* reserved bit 0 */
    s.apic_base = (1ull << 40) | 0x800;
    assert_int_equal(soft_sregs_check(&s, rsvd, 40, true), -EINVAL); /* beyond MAXPHYADDR */
}

/* A vCPU of the soft backend, through the KVM API. */
struct kvm1 {
    int sys, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *ram;
};

static void kvm1_create(struct kvm1 *k)
{
    const struct mvm_backend *b = &mvm_backend_soft;
    k->sys = b->open_dev();
    assert_true(k->sys >= 0);
    k->vm = b->ioctl(k->sys, KVM_CREATE_VM, 0);
    assert_true(k->vm >= 0);
    k->ram = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(k->ram != MAP_FAILED);
    struct kvm_userspace_memory_region m = {.memory_size = 0x10000, .userspace_addr = (uintptr_t)k->ram};
    assert_int_equal(b->ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, (unsigned long)&m), 0);
    k->vcpu = b->ioctl(k->vm, KVM_CREATE_VCPU, 0);
    assert_true(k->vcpu >= 0);
    k->run_size = (size_t)b->ioctl(k->sys, KVM_GET_VCPU_MMAP_SIZE, 0);
    k->run = b->mmap_run(k->vcpu, k->run_size);
    assert_non_null(k->run);
}

static void kvm1_destroy(struct kvm1 *k)
{
    const struct mvm_backend *b = &mvm_backend_soft;
    b->munmap_run(k->run, k->run_size);
    b->close(k->vcpu);
    b->close(k->vm);
    b->close(k->sys);
    munmap(k->ram, 0x10000);
}

static int kvm1_ioctl(struct kvm1 *k, unsigned long req, void *arg)
{
    return mvm_backend_soft.ioctl(k->vcpu, req, (unsigned long)arg);
}

struct cpuid_buf {
    struct kvm_cpuid2 c;
    struct kvm_cpuid_entry2 e[SOFT_MAX_CPUID];
};

/* KVM_SET_SREGS's CR4 and APIC base checks, before and after KVM_SET_CPUID2 (set_sregs_test's cases). */
static void vcpu_cr4_rules(void **state)
{
    struct kvm1 k;
    struct kvm_sregs s, back;
    struct cpuid_buf t = {.c.nent = SOFT_MAX_CPUID};
    (void)state;
    kvm1_create(&k);
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_SREGS, &s), 0);
    s.cr4 |= X86_CR4_OSXSAVE | X86_CR4_OSFXSR | X86_CR4_PAE; /* all the backend offers, before any CPUID table */
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &s), 0);
    const uint64_t refused[] = {1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 16,
                                1u << 17, 1u << 20, 1u << 21, 1u << 22};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct kvm_sregs bad = s;
        bad.cr4 |= refused[i];
        assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &bad), -EINVAL);
        assert_int_equal(kvm1_ioctl(&k, KVM_GET_SREGS, &back), 0);
        assert_memory_equal(&back, &s, sizeof s); /* nothing changed */
    }
    /* A table without XSAVE: CR4.OSXSAVE is refused from then on (the one already set stays, as on KVM). */
    assert_int_equal(mvm_backend_soft.ioctl(k.sys, KVM_GET_SUPPORTED_CPUID, (unsigned long)&t), 0);
    for (uint32_t i = 0; i < t.c.nent; i++)
        if (t.e[i].function == 1)
            t.e[i].ecx &= ~(1u << 26);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_CPUID2, &t), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &s), -EINVAL);
    s.cr4 &= ~(uint64_t)X86_CR4_OSXSAVE;
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &s), 0);
    s.apic_base = 1u << 10;
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &s), -EINVAL);
    s.apic_base = 1u << 11;
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &s), 0);
    kvm1_destroy(&k);
}

/*
 * A real-mode guest with the supported table: XSETBV to x87+SSE, XGETBV, XSAVE, then an XSETBV of AVX, which KVM
 * refuses with #GP (the IVT's handler marks BX). CPUID.1:ECX.OSXSAVE follows CR4; after the run, KVM_SET_CPUID2
 * takes the same table only.
 */
static void vcpu_xsave_and_cpuid_after_run(void **state)
{
    static const uint8_t code[] = {
        0x31, 0xc9,                         /* xor cx, cx */
        0x66, 0x31, 0xd2,                   /* xor edx, edx */
        0x66, 0xb8, 0x03, 0x00, 0x00, 0x00, /* mov eax, 3 */
        0x0f, 0x01, 0xd1,                   /* xsetbv */
        0x66, 0x31, 0xc0,                   /* xor eax, eax */
        0x0f, 0x01, 0xd0,                   /* xgetbv */
        0x66, 0x89, 0xc6,                   /* mov esi, eax */
        0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, 1 */
        0x0f, 0xa2,                         /* cpuid */
        0x66, 0x89, 0xcf,                   /* mov edi, ecx */
        0x66, 0x83, 0xc8, 0xff,             /* or eax, -1 */
        0x66, 0x83, 0xca, 0xff,             /* or edx, -1 */
        0x0f, 0xae, 0x26, 0x00, 0x20,       /* xsave [0x2000] */
        0x31, 0xc9,                         /* xor cx, cx */
        0x66, 0x31, 0xd2,                   /* xor edx, edx */
        0x66, 0xb8, 0x07, 0x00, 0x00, 0x00, /* mov eax, 7 */
        0x0f, 0x01, 0xd1,                   /* xsetbv: #GP */
        0xf4,                               /* hlt */
    };
    struct kvm1 k;
    struct kvm_sregs s;
    struct kvm_regs r = {.rip = 0x1000, .rflags = 2, .rsp = 0x8000};
    struct cpuid_buf t = {.c.nent = SOFT_MAX_CPUID}, t2;
    (void)state;
    kvm1_create(&k);
    memcpy(k.ram + 0x1000, code, sizeof code);
    const uint8_t gp_handler[] = {0xbb, 0x77, 0x00, 0xf4}; /* mov bx, 0x77; hlt */
    memcpy(k.ram + 0x1100, gp_handler, sizeof gp_handler);
    const uint8_t ivt13[] = {0x00, 0x11, 0x00, 0x00};
    memcpy(k.ram + 13 * 4, ivt13, sizeof ivt13);
    assert_int_equal(mvm_backend_soft.ioctl(k.sys, KVM_GET_SUPPORTED_CPUID, (unsigned long)&t), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_CPUID2, &t), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_SREGS, &s), 0);
    s.cs.base = 0;
    s.cs.selector = 0;
    s.idt.base = 0;
    s.idt.limit = 0x3ff;
    s.cr4 |= X86_CR4_OSXSAVE | X86_CR4_OSFXSR;
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_SREGS, &s), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_REGS, &r), 0);
    t2 = t;
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_CPUID2, &t2), 0);
    const struct kvm_cpuid_entry2 *l1 = soft_cpuid_find(t2.e, (int)t2.c.nent, 1, 0);
    assert_true(l1 && (l1->ecx & (1u << 27))); /* OSXSAVE now set in the vCPU's table, as KVM updates it */
    assert_int_equal(kvm1_ioctl(&k, KVM_RUN, NULL), 0);
    assert_int_equal(k.run->exit_reason, KVM_EXIT_HLT);
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_REGS, &r), 0);
    assert_int_equal(r.rsi & 0xffffffff, 3); /* XGETBV: the XCR0 XSETBV set */
    assert_true(r.rdi & (1u << 27));         /* the guest's CPUID: OSXSAVE */
    assert_int_equal(r.rbx & 0xffff, 0x77);  /* XSETBV of AVX: #GP */
    uint64_t bv;
    memcpy(&bv, k.ram + 0x2000 + 512, sizeof bv);
    assert_int_equal(bv, 3); /* XSAVE's header: x87 and SSE */
    /* After KVM_RUN: the same table again (with its runtime bits as KVM keeps them), never another one. */
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_CPUID2, &t2), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_CPUID2, &t2), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_CPUID2, &t), 0); /* OSXSAVE differs only as a runtime bit */
    t2.e[0].ebx ^= 1;
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_CPUID2, &t2), -EINVAL);
    t2.e[0].ebx ^= 1;
    t2.c.nent--;
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_CPUID2, &t2), -EINVAL);
    kvm1_destroy(&k);
}

/* EFER: a guest's WRMSR (set_efer and __kvm_valid_efer), and the VMM's KVM_SET_MSRS (reserved bits, LMA kept). */
static void efer_rules(void **state)
{
    struct kvm_cpuid_entry2 t[1] = {{.function = 0x80000001, .edx = (1u << 29) | (1u << 20)}};
    const uint64_t lme = X86_EFER_LME, nx = X86_EFER_NXE, sce = X86_EFER_SCE;
    (void)state;
    assert_true(soft_efer_guest_ok(t, 1, 0, lme | nx | sce, 0));
    assert_false(soft_efer_guest_ok(t, 1, 0, 1u << 12, 0)); /* SVME: no nested SVM here */
    assert_false(soft_efer_guest_ok(t, 1, 0, 1u << 14, 0)); /* FFXSR */
    assert_false(soft_efer_guest_ok(t, 1, 0, 1ull << 40, 0));
    assert_false(soft_efer_guest_ok(t, 1, lme, 0, X86_CR0_PG | X86_CR0_PE)); /* LME changed while paging */
    assert_true(soft_efer_guest_ok(t, 1, lme, lme | nx, X86_CR0_PG | X86_CR0_PE));
    t[0].edx = 0;
    assert_false(soft_efer_guest_ok(t, 1, 0, lme, 0)); /* no LM in CPUID */
    assert_false(soft_efer_guest_ok(t, 1, 0, nx, 0));  /* no NX */
    assert_true(soft_efer_guest_ok(t, 1, 0, sce, 0));
    assert_false(soft_efer_guest_ok(NULL, 0, 0, lme, 0));

    struct kvm1 k;
    struct kvm_sregs s;
    struct {
        struct kvm_msrs m;
        struct kvm_msr_entry e[1];
    } msrs = {.m.nmsrs = 1, .e[0] = {.index = X86_MSR_EFER, .data = X86_EFER_LMA | X86_EFER_SCE}};
    kvm1_create(&k);
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_MSRS, &msrs), 1);
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_SREGS, &s), 0);
    assert_int_equal(s.efer, X86_EFER_SCE); /* LMA is the vCPU's, not the VMM's to write */
    msrs.e[0].data = 1u << 12;              /* SVME: reserved here */
    assert_int_equal(kvm1_ioctl(&k, KVM_SET_MSRS, &msrs), 0);
    assert_int_equal(kvm1_ioctl(&k, KVM_GET_SREGS, &s), 0);
    assert_int_equal(s.efer, X86_EFER_SCE);
    kvm1_destroy(&k);
}

/* CPUID beyond the table (kvm_cpuid): zeros for an AMD vendor; an Intel one gets the highest basic leaf. */
static void lookup_out_of_range(void **state)
{
    struct kvm_cpuid_entry2 t[4] = {
        {.function = 0, .eax = 0xd, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69}, /* GenuineIntel */
        {.function = 0xd, .index = 0, .flags = SIG, .eax = 3},
        {.function = 0xd, .index = 1, .flags = SIG, .eax = 1},
        {.function = 0x80000000, .eax = 0x80000008},
    };
    (void)state;
    assert_ptr_equal(soft_cpuid_lookup(t, 4, 0xd, 1), &t[2]);
    assert_ptr_equal(soft_cpuid_lookup(t, 4, 0x20, 0), &t[1]);       /* beyond leaf 0's maximum */
    assert_ptr_equal(soft_cpuid_lookup(t, 4, 0x80000009, 1), &t[2]); /* beyond 0x80000000's, the subleaf kept */
    assert_ptr_equal(soft_cpuid_lookup(t, 4, 0x40000001, 0), &t[1]); /* no 0x40000000 entry at all */
    assert_null(soft_cpuid_lookup(t, 4, 5, 0));                      /* in range, not in the table */
    assert_null(soft_cpuid_lookup(t, 4, 0x80000002, 0));
    t[0].ebx = 0x68747541, t[0].ecx = 0x444d4163, t[0].edx = 0x69746e65; /* AuthenticAMD */
    assert_null(soft_cpuid_lookup(t, 4, 0x20, 0));
    assert_null(soft_cpuid_lookup(t, 0, 1, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup),
        cmocka_unit_test(guest_view),
        cmocka_unit_test(supported_fixups),
        cmocka_unit_test(supported_table),
        cmocka_unit_test(engine_runs_the_table),
        cmocka_unit_test(runtime_bits),
        cmocka_unit_test(maxphyaddr_and_xcr0),
        cmocka_unit_test(sregs_rules),
        cmocka_unit_test(vcpu_cr4_rules),
        cmocka_unit_test(vcpu_xsave_and_cpuid_after_run),
        cmocka_unit_test(efer_rules),
        cmocka_unit_test(lookup_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
