/*
 * Hyper-V's enlightenments on the soft backend (soft_hyperv.h), as KVM 6.1's hyperv.c makes them: which synthetic
 * MSRs and hypercalls the Hyper-V CPUID allows under KVM_CAP_HYPERV_ENFORCE_CPUID, the reference TSC page's
 * arithmetic, then small real-mode guests through the KVM API: #GP without "Hv#1" in CPUID, the read-only MSRs,
 * HV_X64_MSR_TIME_REF_COUNT, the reference TSC page against KVM_GET_CLOCK and after KVM_SET_CLOCK, and #UD for a
 * hypercall in real mode.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include "backend.h"
#include "soft_test_vm.h"
#include "soft_hyperv.h"
#include "soft_msr.h"
#include "soft_priv.h"

#define GUEST_MEM   0x10000u
#define CODE        0x1000u
#define GP_HANDLER  0x2000u
#define UD_HANDLER  0x2100u
#define TSC_PAGE    0x5000u
#define PORT        0x10u
#define X86_MSR_TSC 0x10u

/* ---- the pure rules ---- */

static void msr_access_rules(void **state)
{
    (void)state;
    struct soft_hv_cpuid c = {0};
    /* Not enforcing: every Hyper-V MSR is open. */
    assert_true(soft_hv_msr_access(&c, false, HV_X64_MSR_GUEST_OS_ID));
    assert_true(soft_hv_msr_access(&c, false, HV_X64_MSR_CRASH_P0));
    /* Enforcing with no feature: none is. */
    static const uint32_t msrs[] = {HV_X64_MSR_GUEST_OS_ID,    HV_X64_MSR_HYPERCALL,
                                    HV_X64_MSR_VP_RUNTIME,     HV_X64_MSR_TIME_REF_COUNT,
                                    HV_X64_MSR_VP_INDEX,       HV_X64_MSR_RESET,
                                    HV_X64_MSR_REFERENCE_TSC,  HV_X64_MSR_EOM,
                                    HV_X64_MSR_STIMER0_CONFIG, HV_X64_MSR_EOI,
                                    HV_X64_MSR_TSC_FREQUENCY,  HV_X64_MSR_REENLIGHTENMENT_CONTROL,
                                    HV_X64_MSR_CRASH_P0,       HV_X64_MSR_SYNDBG_STATUS};
    for (size_t i = 0; i < sizeof msrs / sizeof msrs[0]; i++)
        assert_false(soft_hv_msr_access(&c, true, msrs[i]));
    /* Each with its own bit, and only that one. */
    struct {
        uint32_t msr, eax, edx;
    } t[] = {
        {HV_X64_MSR_GUEST_OS_ID, HV_MSR_HYPERCALL_AVAILABLE, 0},
        {HV_X64_MSR_HYPERCALL, HV_MSR_HYPERCALL_AVAILABLE, 0},
        {HV_X64_MSR_VP_RUNTIME, HV_MSR_VP_RUNTIME_AVAILABLE, 0},
        {HV_X64_MSR_TIME_REF_COUNT, HV_MSR_TIME_REF_COUNT_AVAILABLE, 0},
        {HV_X64_MSR_VP_INDEX, HV_MSR_VP_INDEX_AVAILABLE, 0},
        {HV_X64_MSR_RESET, HV_MSR_RESET_AVAILABLE, 0},
        {HV_X64_MSR_REFERENCE_TSC, HV_MSR_REFERENCE_TSC_AVAILABLE, 0},
        {HV_X64_MSR_EOM, HV_MSR_SYNIC_AVAILABLE, 0},
        {HV_X64_MSR_SINT15, HV_MSR_SYNIC_AVAILABLE, 0},
        {HV_X64_MSR_STIMER3_COUNT, HV_MSR_SYNTIMER_AVAILABLE, 0},
        {HV_X64_MSR_VP_ASSIST_PAGE, HV_MSR_APIC_ACCESS_AVAILABLE, 0},
        {HV_X64_MSR_APIC_FREQUENCY, HV_ACCESS_FREQUENCY_MSRS, 0},
        {HV_X64_MSR_TSC_EMULATION_STATUS, HV_ACCESS_REENLIGHTENMENT, 0},
        {HV_X64_MSR_CRASH_CTL, 0, HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE},
        {HV_X64_MSR_SYNDBG_OPTIONS, 0, HV_FEATURE_DEBUG_MSRS_AVAILABLE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct soft_hv_cpuid on = {.features_eax = t[i].eax, .features_edx = t[i].edx};
        struct soft_hv_cpuid others = {.features_eax = ~t[i].eax, .features_edx = ~t[i].edx};
        if (!soft_hv_msr_access(&on, true, t[i].msr) || soft_hv_msr_access(&others, true, t[i].msr))
            fail_msg("MSR 0x%x: allowed only with its CPUID bit (eax 0x%x edx 0x%x)", t[i].msr, t[i].eax, t[i].edx);
    }
    assert_true(soft_hv_msr_is(HV_X64_MSR_GUEST_OS_ID));
    assert_true(soft_hv_msr_is(HV_X64_MSR_SINT15));
    assert_true(soft_hv_msr_is(HV_X64_MSR_TSC_EMULATION_STATUS));
    assert_false(soft_hv_msr_is(0x4b564d00)); /* MSR_KVM_WALL_CLOCK_NEW: KVM's, not Hyper-V's */
    assert_false(soft_hv_msr_is(0x40000109));
}

static void hcall_access_rules(void **state)
{
    (void)state;
    struct soft_hv_cpuid c = {0};
    assert_true(soft_hv_hcall_access(&c, false, HVCALL_POST_MESSAGE));
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_POST_MESSAGE));
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_SIGNAL_EVENT));
    assert_true(soft_hv_hcall_access(&c, true, 0xbeef));                     /* unknown: INVALID_HYPERCALL_CODE */
    assert_true(soft_hv_hcall_access(&c, true, HVCALL_RESET_DEBUG_SESSION)); /* SynDBG off: INVALID_CODE too */
    c.syndbg_cap_eax = HV_X64_SYNDBG_CAP_ALLOW_KERNEL_DEBUGGING;
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_RESET_DEBUG_SESSION));
    c.features_ebx = HV_DEBUGGING;
    assert_true(soft_hv_hcall_access(&c, true, HVCALL_RESET_DEBUG_SESSION));
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE));
    c.enlightenments_eax = HV_X64_REMOTE_TLB_FLUSH_RECOMMENDED;
    assert_true(soft_hv_hcall_access(&c, true, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE));
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX)); /* needs EX masks too */
    c.enlightenments_eax |= HV_X64_EX_PROCESSOR_MASKS_RECOMMENDED;
    assert_true(soft_hv_hcall_access(&c, true, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX));
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_SEND_IPI_EX)); /* EX masks, but not cluster IPIs */
    c.enlightenments_eax |= HV_X64_CLUSTER_IPI_RECOMMENDED;
    assert_true(soft_hv_hcall_access(&c, true, HVCALL_SEND_IPI_EX));
    /* A long spin wait: a retry count other than 0 and "never" (0xffffffff). */
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_NOTIFY_LONG_SPIN_WAIT));
    c.enlightenments_ebx = 0xffffffffu;
    assert_false(soft_hv_hcall_access(&c, true, HVCALL_NOTIFY_LONG_SPIN_WAIT));
    c.enlightenments_ebx = 0xfff;
    assert_true(soft_hv_hcall_access(&c, true, HVCALL_NOTIFY_LONG_SPIN_WAIT));
}

static void cpuid_parse(void **state)
{
    (void)state;
    struct kvm_cpuid_entry2 tab[3] = {
        {.function = 0x40000001, .eax = 0x31237648},
        {.function = 0x40000003, .eax = 0x123, .ebx = 0x30, .edx = 0x10},
        {.function = 0x40000004, .eax = 0x4, .ebx = 0xfff},
    };
    struct soft_hv_cpuid c;
    assert_true(soft_hv_cpuid_parse(tab, 3, &c));
    assert_int_equal(c.features_eax, 0x123);
    assert_int_equal(c.features_ebx, 0x30);
    assert_int_equal(c.features_edx, 0x10);
    assert_int_equal(c.enlightenments_eax, 0x4);
    assert_int_equal(c.enlightenments_ebx, 0xfff);
    tab[0].eax = 0x31237649; /* not "Hv#1": Hyper-V is off and nothing is cached */
    assert_false(soft_hv_cpuid_parse(tab, 3, &c));
    assert_int_equal(c.features_eax, 0);
}

/* The TSC page read at the kvmclock page's own instant gives kvmclock / 100; a scale that cannot fit is refused. */
static void tsc_page_arithmetic(void **state)
{
    (void)state;
    static const uint64_t khz[] = {1000000, 2445000, 3000000, 4999999};
    for (size_t i = 0; i < sizeof khz / sizeof khz[0]; i++) {
        uint32_t mul;
        int8_t shift;
        soft_pvclock_scale(khz[i], &mul, &shift);
        uint64_t tsc0 = 123456789012ull, ns0 = 987654321000ull, scale;
        int64_t offset;
        assert_true(soft_hv_tsc_page_params(tsc0, ns0, mul, shift, true, &scale, &offset));
        for (uint64_t dt = 0; dt < 4000000000000ull; dt = dt * 7 + 1000003) {
            uint64_t d = shift >= 0 ? dt << shift : dt >> -shift;
            uint64_t ns = ns0 + (uint64_t)(((unsigned __int128)d * mul) >> 32); /* the kvmclock page's formula */
            uint64_t ref = soft_hv_mul_shr64(tsc0 + dt, scale) + (uint64_t)offset;
            int64_t diff = (int64_t)(ref - ns / 100);
            if (diff < -2 || diff > 2)
                fail_msg("%llu kHz, %llu ticks later: TSC page %llu, kvmclock/100 %llu", (unsigned long long)khz[i],
                         (unsigned long long)dt, (unsigned long long)ref, (unsigned long long)(ns / 100));
        }
    }
    uint64_t scale;
    int64_t offset;
    assert_false(soft_hv_tsc_page_params(0, 0, 0x80000000u, 1, false, &scale, &offset)); /* not TSC-stable */
    /* 100 << (32 - shift) is the limit: 100 ns per tick or slower does not fit the 64-bit scale. */
    assert_false(soft_hv_tsc_page_params(0, 0, 100u << 25, 7, true, &scale, &offset));
    assert_true(soft_hv_tsc_page_params(0, 0, (100u << 25) - 1, 7, true, &scale, &offset));
}

/* ---- end to end: a real-mode guest through the KVM API ---- */

static const struct mvm_backend *be = &mvm_backend_soft;

#define MOV_EAX(x) 0x66, 0xb8, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define MOV_ECX(x) 0x66, 0xb9, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define MOV_EDX(x) 0x66, 0xba, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define OUT_EAX    0x66, 0xe7, PORT
#define RDMSR      0x0f, 0x32
#define WRMSR      0x0f, 0x30
#define VMMCALL    0x0f, 0x01, 0xd9
#define HLT        0xf4

static void g_create_chip(struct soft_test_vm *g, const uint8_t *code, size_t n, bool irqchip)
{
    static const uint8_t gp[] = {MOV_EAX(0xbad0000d), OUT_EAX, HLT}, ud[] = {MOV_EAX(0xbad00006), OUT_EAX, HLT};
    soft_test_vm_open(be, g, GUEST_MEM);
    memcpy(g->mem + CODE, code, n);
    memcpy(g->mem + GP_HANDLER, gp, sizeof gp);
    memcpy(g->mem + UD_HANDLER, ud, sizeof ud);
    uint32_t ivt_gp = GP_HANDLER, ivt_ud = UD_HANDLER;
    memcpy(g->mem + 13 * 4, &ivt_gp, 4);
    memcpy(g->mem + 6 * 4, &ivt_ud, 4);
    if (irqchip)
        assert_int_equal(be->ioctl(g->vm, KVM_CREATE_IRQCHIP, 0), 0);
    soft_test_vcpu_open(be, g);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    s.cs.base = 0;
    s.cs.selector = 0;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = CODE, .rflags = 2, .rsp = 0x8000};
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void g_create(struct soft_test_vm *g, const uint8_t *code, size_t n)
{
    g_create_chip(g, code, n, false);
}

/* KVM_SET_CPUID2 with Hyper-V's interface leaf ("Hv#1" unless hv is false) and feature leaf. */
static void g_hv_cpuid(struct soft_test_vm *g, bool hv, uint32_t features_eax)
{
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[2];
    } c = {.c.nent = 2};
    c.e[0] = (struct kvm_cpuid_entry2){.function = 0x40000001, .eax = hv ? 0x31237648 : 0};
    c.e[1] = (struct kvm_cpuid_entry2){.function = 0x40000003, .eax = features_eax};
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
}

static void g_destroy(struct soft_test_vm *g)
{
    soft_test_vm_close(be, g);
}

static uint32_t g_out(struct soft_test_vm *g)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    if (g->run->exit_reason != KVM_EXIT_IO)
        fail_msg("exit reason %u, expected KVM_EXIT_IO (%s)", g->run->exit_reason, be->last_error());
    assert_int_equal(g->run->io.port, PORT);
    uint32_t v;
    memcpy(&v, (uint8_t *)g->run + g->run->io.data_offset, 4);
    return v;
}

static int g_msr(struct soft_test_vm *g, uint32_t idx, uint64_t *val, bool set)
{
    struct {
        struct kvm_msrs m;
        struct kvm_msr_entry e;
    } m = {.m.nmsrs = 1, .e = {.index = idx, .data = *val}};
    int r = be->ioctl(g->vcpu, set ? KVM_SET_MSRS : KVM_GET_MSRS, (unsigned long)&m);
    *val = m.e.data;
    return r;
}

static void caps(void **state)
{
    (void)state;
    int sys = be->open_dev();
    assert_true(sys >= 0);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV), 1);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_TIME), 1);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_VP_INDEX), 1);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_ENFORCE_CPUID), 1);
    /* No synthetic timer fires and no SynIC message is delivered here: not offered. */
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_SYNIC), 0);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_SYNIC2), 0);
    be->close(sys);
}

/* Without "Hv#1" in CPUID the guest's access is #GP; the VMM's still works. */
static void gp_without_hyperv_cpuid(void **state)
{
    (void)state;
    static const uint8_t code[] = {MOV_ECX(HV_X64_MSR_GUEST_OS_ID), RDMSR, MOV_EAX(1), OUT_EAX};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    g_hv_cpuid(&g, false, ~0u);
    assert_int_equal(g_out(&g), 0xbad0000d);
    uint64_t v = 0x1234;
    assert_int_equal(g_msr(&g, HV_X64_MSR_GUEST_OS_ID, &v, true), 1);
    v = 0;
    assert_int_equal(g_msr(&g, HV_X64_MSR_GUEST_OS_ID, &v, false), 1);
    assert_int_equal(v, 0x1234);
    g_destroy(&g);
}

/* KVM_CAP_HYPERV_ENFORCE_CPUID: the MSRs the CPUID offers, their read-only rules, the VMM's view. */
static void enforced_msrs(void **state)
{
    (void)state;
    static const uint8_t code[] = {
        MOV_ECX(HV_X64_MSR_VP_INDEX),       RDMSR, OUT_EAX,             /* 0 */
        MOV_ECX(HV_X64_MSR_TIME_REF_COUNT), RDMSR, OUT_EAX,             /* the reference counter */
        MOV_ECX(HV_X64_MSR_TIME_REF_COUNT), RDMSR, OUT_EAX,             /* later: larger */
        MOV_ECX(HV_X64_MSR_RESET),          RDMSR, MOV_EAX(2), OUT_EAX, /* not offered: #GP */
    };
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_HYPERV_ENFORCE_CPUID, .args[0] = 1};
    assert_int_equal(be->ioctl(g.vcpu, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    g_hv_cpuid(&g, true, HV_MSR_VP_INDEX_AVAILABLE | HV_MSR_TIME_REF_COUNT_AVAILABLE);
    assert_int_equal(g_out(&g), 0);
    uint32_t t1 = g_out(&g), t2 = g_out(&g);
    assert_true(t2 > t1);
    assert_int_equal(g_out(&g), 0xbad0000d);
    /* The VMM: VP_INDEX is writable by it alone, TSC_FREQUENCY is KVM_GET_TSC_KHZ in Hz, writes to it ignored. */
    uint64_t v = 3;
    assert_int_equal(g_msr(&g, HV_X64_MSR_VP_INDEX, &v, true), 1);
    v = 0;
    assert_int_equal(g_msr(&g, HV_X64_MSR_VP_INDEX, &v, false), 1);
    assert_int_equal(v, 3);
    v = 1024;
    assert_int_equal(g_msr(&g, HV_X64_MSR_VP_INDEX, &v, true), 0); /* KVM_MAX_VCPUS (1024) or more: refused */
    v = 1023;
    assert_int_equal(g_msr(&g, HV_X64_MSR_VP_INDEX, &v, true), 1);
    int khz = be->ioctl(g.vcpu, KVM_GET_TSC_KHZ, 0);
    assert_true(khz > 0);
    v = 0;
    assert_int_equal(g_msr(&g, HV_X64_MSR_TSC_FREQUENCY, &v, false), 1);
    assert_int_equal(v, (uint64_t)khz * 1000);
    v = 1;
    assert_int_equal(g_msr(&g, HV_X64_MSR_TSC_FREQUENCY, &v, true), 1);
    v = 0;
    assert_int_equal(g_msr(&g, HV_X64_MSR_TSC_FREQUENCY, &v, false), 1);
    assert_int_equal(v, (uint64_t)khz * 1000);
    g_destroy(&g);
}

/* The reference TSC page: clean while disabled; enabled, it gives KVM_GET_CLOCK / 100; KVM_SET_CLOCK moves it. */
static void reference_tsc_page(void **state)
{
    (void)state;
    static const uint8_t code[] = {
        MOV_ECX(HV_X64_MSR_GUEST_OS_ID),
        MOV_EAX(0),
        MOV_EDX(0x81000000u),
        WRMSR,
        MOV_ECX(HV_X64_MSR_REFERENCE_TSC),
        MOV_EAX(TSC_PAGE),
        MOV_EDX(0),
        WRMSR,
        MOV_EAX(1),
        OUT_EAX,
        MOV_ECX(HV_X64_MSR_REFERENCE_TSC),
        MOV_EAX(TSC_PAGE | 1),
        WRMSR,
        MOV_EAX(2),
        OUT_EAX,
        MOV_EAX(3),
        OUT_EAX,
    };
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    g_hv_cpuid(&g, true, 0);
    assert_int_equal(g_out(&g), 1);
    static const uint8_t zero[24];
    assert_memory_equal(g.mem + TSC_PAGE, zero, sizeof zero); /* disabled: untouched */
    assert_int_equal(g_out(&g), 2);
    uint32_t seq;
    uint64_t scale;
    int64_t offset;
    memcpy(&seq, g.mem + TSC_PAGE, 4);
    memcpy(&scale, g.mem + TSC_PAGE + 8, 8);
    memcpy(&offset, g.mem + TSC_PAGE + 16, 8);
    assert_true(seq != 0 && seq != 0xffffffffu);
    assert_true(scale != 0);
    struct kvm_clock_data clock;
    uint64_t tsc = 0;
    assert_int_equal(g_msr(&g, X86_MSR_TSC, &tsc, false), 1);
    assert_int_equal(be->ioctl(g.vm, KVM_GET_CLOCK, (unsigned long)&clock), 0);
    uint64_t page = soft_hv_mul_shr64(tsc, scale) + (uint64_t)offset;
    int64_t diff = (int64_t)(clock.clock / 100 - page);
    if (diff < 0 || diff > 100000) /* the clock read after the TSC, within 10 ms */
        fail_msg("TSC page %llu, KVM_GET_CLOCK/100 %llu", (unsigned long long)page,
                 (unsigned long long)(clock.clock / 100));
    uint64_t ref = 0;
    assert_int_equal(g_msr(&g, HV_X64_MSR_TIME_REF_COUNT, &ref, false), 1);
    assert_true(ref >= page && ref - page < 100000); /* the counter reads the page once it is set */
    /* KVM_SET_CLOCK to 0: the page follows (a new offset), the time it gives is near 0. */
    struct kvm_clock_data zero_clock = {0};
    assert_int_equal(be->ioctl(g.vm, KVM_SET_CLOCK, (unsigned long)&zero_clock), 0);
    int64_t offset2;
    memcpy(&offset2, g.mem + TSC_PAGE + 16, 8);
    assert_true(offset2 != offset);
    assert_int_equal(g_msr(&g, X86_MSR_TSC, &tsc, false), 1);
    assert_true(soft_hv_mul_shr64(tsc, scale) + (uint64_t)offset2 < 100000);
    assert_int_equal(g_out(&g), 3);
    g_destroy(&g);
}

/* Hyper-V's hypercalls are #UD in real mode (kvm_hv_hypercall), where KVM's own would answer. */
static void hypercall_ud_in_real_mode(void **state)
{
    (void)state;
    static const uint8_t code[] = {
        MOV_ECX(HV_X64_MSR_GUEST_OS_ID),
        MOV_EAX(0),
        MOV_EDX(0x81000000u),
        WRMSR,
        MOV_ECX(0xbeef),
        VMMCALL,
        MOV_EAX(1),
        OUT_EAX,
    };
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    g_hv_cpuid(&g, true, HV_MSR_HYPERCALL_AVAILABLE);
    assert_int_equal(g_out(&g), 0xbad00006);
    g_destroy(&g);
}

/* 32-bit protected mode, flat: Hyper-V's hypercalls through the hypercall page, with KVM's status codes. */
#define HC_PAGE         0x6000u
#define P32_MOV_EAX(x)  0xb8, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define P32_MOV_ECX(x)  0xb9, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define P32_MOV_EDX(x)  0xba, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define P32_MOV_EBP(x)  0xbd, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define P32_OUT_EAX     0xe7, PORT
#define P32_CALL_EBP    0xff, 0xd5
#define P32_XOR_EBX     0x31, 0xdb
#define P32_HCALL(code) P32_MOV_EAX(code), P32_MOV_EDX(0), P32_XOR_EBX, P32_MOV_ECX(0x7000), P32_CALL_EBP, P32_OUT_EAX

static void hypercalls_protected_mode(void **state)
{
    (void)state;
    static const uint8_t code[] = {
        P32_MOV_ECX(HV_X64_MSR_GUEST_OS_ID),
        P32_MOV_EAX(0),
        P32_MOV_EDX(0x81000000u),
        WRMSR,
        P32_MOV_ECX(HV_X64_MSR_HYPERCALL),
        P32_MOV_EAX(HC_PAGE | 1),
        P32_MOV_EDX(0),
        WRMSR,
        P32_MOV_EBP(HC_PAGE),
        P32_HCALL(0xbeef),                                  /* unknown: HV_STATUS_INVALID_HYPERCALL_CODE */
        P32_HCALL(HVCALL_POST_MESSAGE),                     /* not in CPUID: HV_STATUS_ACCESS_DENIED */
        P32_HCALL(HVCALL_SIGNAL_EVENT),                     /* offered, no SynIC: HV_STATUS_INVALID_HYPERCALL_INPUT */
        P32_HCALL(HVCALL_NOTIFY_LONG_SPIN_WAIT),            /* 0xfff retries offered: HV_STATUS_SUCCESS */
        P32_HCALL(HVCALL_NOTIFY_LONG_SPIN_WAIT | 1u << 27), /* a reserved bit: HV_STATUS_INVALID_HYPERCALL_INPUT */
        P32_HCALL(HVCALL_SIGNAL_EVENT),                     /* with SynIC on: KVM_EXIT_HYPERV, the VMM's answer */
        P32_MOV_EAX(0x600d),
        P32_OUT_EAX,
    };
    struct soft_test_vm g;
    g_create_chip(&g, code, sizeof code, true);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_HYPERV_ENFORCE_CPUID, .args[0] = 1};
    assert_int_equal(be->ioctl(g.vcpu, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[3];
    } c = {.c.nent = 3};
    c.e[0] = (struct kvm_cpuid_entry2){.function = 0x40000001, .eax = 0x31237648};
    c.e[1] =
        (struct kvm_cpuid_entry2){.function = 0x40000003, .eax = HV_MSR_HYPERCALL_AVAILABLE, .ebx = HV_SIGNAL_EVENTS};
    c.e[2] = (struct kvm_cpuid_entry2){.function = 0x40000004, .ebx = 0xfff};
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    struct kvm_segment flat = {.base = 0, .limit = 0xffffffff, .present = 1, .db = 1, .s = 1, .g = 1};
    s.cs = flat;
    s.cs.selector = 8;
    s.cs.type = 11;
    flat.selector = 0x10;
    flat.type = 3;
    s.ds = s.es = s.fs = s.gs = s.ss = flat;
    s.cr0 |= 1;
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    assert_int_equal(g_out(&g), HV_STATUS_INVALID_HYPERCALL_CODE);
    static const uint8_t page[] = {0x0f, 0x01, 0xd9, 0xc3}; /* VMMCALL; RET, as KVM on AMD writes it */
    assert_memory_equal(g.mem + HC_PAGE, page, sizeof page);
    uint64_t v = 0;
    assert_int_equal(g_msr(&g, HV_X64_MSR_HYPERCALL, &v, false), 1);
    assert_int_equal(v, HC_PAGE | 1);
    assert_int_equal(g_out(&g), HV_STATUS_ACCESS_DENIED);
    assert_int_equal(g_out(&g), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(g_out(&g), HV_STATUS_SUCCESS);
    assert_int_equal(g_out(&g), HV_STATUS_INVALID_HYPERCALL_INPUT);
    struct kvm_enable_cap synic = {.cap = KVM_CAP_HYPERV_SYNIC2, .args[0] = 1};
    assert_int_equal(be->ioctl(g.vcpu, KVM_ENABLE_CAP, (unsigned long)&synic), -EINVAL); /* takes no argument */
    synic.args[0] = 0;
    assert_int_equal(be->ioctl(g.vcpu, KVM_ENABLE_CAP, (unsigned long)&synic), 0);
    g.mem[0x7000] = 0x42; /* SIGNAL_EVENT's input: connection 0x42, which no eventfd serves in the kernel */
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), 0);
    if (g.run->exit_reason != KVM_EXIT_HYPERV)
        fail_msg("exit reason %u, expected KVM_EXIT_HYPERV (%s)", g.run->exit_reason, be->last_error());
    assert_int_equal(g.run->hyperv.type, KVM_EXIT_HYPERV_HCALL);
    assert_int_equal(g.run->hyperv.u.hcall.input, HVCALL_SIGNAL_EVENT);
    assert_int_equal(g.run->hyperv.u.hcall.params[0], 0x42); /* KVM passes the connection ID read from the page */
    g.run->hyperv.u.hcall.result = 0x12;
    assert_int_equal(g_out(&g), 0x12); /* the VMM's status, RIP past the VMMCALL */
    assert_int_equal(g_out(&g), 0x600d);
    g_destroy(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msr_access_rules),
        cmocka_unit_test(hcall_access_rules),
        cmocka_unit_test(cpuid_parse),
        cmocka_unit_test(tsc_page_arithmetic),
        cmocka_unit_test(caps),
        cmocka_unit_test(gp_without_hyperv_cpuid),
        cmocka_unit_test(enforced_msrs),
        cmocka_unit_test(reference_tsc_page),
        cmocka_unit_test(hypercall_ud_in_real_mode),
        cmocka_unit_test(hypercalls_protected_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
