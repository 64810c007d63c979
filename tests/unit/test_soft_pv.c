/*
 * The soft backend's MSR exits to user space, hypercalls and Hyper-V CPUID (soft_pv.h), as KVM 6.1 on AMD makes
 * them: the MSR filter's rules, KVM_EXIT_X86_RDMSR/WRMSR and their completion, VMCALL patched into VMMCALL or #UD
 * (KVM_X86_QUIRK_FIX_HYPERCALL_INSN), KVM_CAP_ENFORCE_PV_FEATURE_CPUID, KVM_GET_SUPPORTED_HV_CPUID. The pure logic
 * alone, then small real-mode guests through the KVM API.
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

#include <asm/kvm_para.h>
#include <linux/kvm.h>
#include <linux/kvm_para.h>

#include "backend.h"
#include "soft_test_vm.h"
#include "soft_hyperv.h"
#include "soft_priv.h"
#include "soft_pv.h"

#define GUEST_MEM   0x10000u
#define CODE        0x1000u
#define GP_HANDLER  0x2000u
#define UD_HANDLER  0x2100u
#define PORT        0x10u
#define MSR_UNKNOWN 0xdeadbeefu
#define MSR_XSS     0xda0u

/* ---- the filter ---- */

static void filter_checks(void **state)
{
    (void)state;
    static uint8_t bits[KVM_MSR_FILTER_MAX_BITMAP_SIZE + 8];
    struct soft_msr_filter *f;
    struct kvm_msr_filter a = {.flags = 2};
    assert_int_equal(soft_msr_filter_build(&a, &f), -EINVAL); /* unknown flag */
    a = (struct kvm_msr_filter){.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    assert_int_equal(soft_msr_filter_build(&a, &f), -EINVAL); /* deny everything: KVM refuses it */
    a.ranges[0] = (struct kvm_msr_filter_range){.flags = 0, .base = 0, .nmsrs = 1, .bitmap = bits};
    assert_int_equal(soft_msr_filter_build(&a, &f), -EINVAL); /* a range for neither reads nor writes */
    a.ranges[0] = (struct kvm_msr_filter_range){.flags = 4, .base = 0, .nmsrs = 1, .bitmap = bits};
    assert_int_equal(soft_msr_filter_build(&a, &f), -EINVAL);
    a.ranges[0] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ, .nmsrs = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8 + 1, .bitmap = bits};
    assert_int_equal(soft_msr_filter_build(&a, &f), -EINVAL); /* a bitmap over 0x600 bytes */
    a.ranges[0].nmsrs = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8;
    assert_int_equal(soft_msr_filter_build(&a, &f), 0);
    soft_msr_filter_free(f);
    /* A range with no MSRs is left out whatever its flags, so an allow-all filter with one is fine. */
    a = (struct kvm_msr_filter){.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    a.ranges[3] = (struct kvm_msr_filter_range){.flags = 0xff, .nmsrs = 0};
    assert_int_equal(soft_msr_filter_build(&a, &f), 0);
    assert_int_equal(f->count, 0);
    assert_true(soft_msr_filter_allows(f, 0x10, KVM_MSR_FILTER_READ));
    soft_msr_filter_free(f);
}

static void filter_rules(void **state)
{
    (void)state;
    uint8_t deny_one = 0, first = 0x01, allow_all[8];
    memset(allow_all, 0xff, sizeof allow_all);
    struct kvm_msr_filter a = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    a.ranges[0] =
        (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ, .base = 0x100, .nmsrs = 1, .bitmap = &deny_one};
    a.ranges[1] = (struct kvm_msr_filter_range){
        .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, .base = 0x100, .nmsrs = 64, .bitmap = allow_all};
    a.ranges[2] =
        (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_WRITE, .base = 0x800, .nmsrs = 8, .bitmap = &first};
    struct soft_msr_filter *f;
    assert_int_equal(soft_msr_filter_build(&a, &f), 0);
    assert_int_equal(f->count, 3);
    /* The first range that holds the MSR for that access type decides. */
    assert_false(soft_msr_filter_allows(f, 0x100, KVM_MSR_FILTER_READ));
    assert_true(soft_msr_filter_allows(f, 0x100, KVM_MSR_FILTER_WRITE));
    assert_true(soft_msr_filter_allows(f, 0x13f, KVM_MSR_FILTER_READ));
    /* Outside every range: the default. */
    assert_false(soft_msr_filter_allows(f, 0x140, KVM_MSR_FILTER_READ));
    assert_false(soft_msr_filter_allows(f, 0xc0000080, KVM_MSR_FILTER_WRITE));
    /* x2APIC MSRs are never filtered. */
    assert_true(soft_msr_filter_allows(f, 0x801, KVM_MSR_FILTER_WRITE));
    assert_true(soft_msr_filter_allows(f, 0x8ff, KVM_MSR_FILTER_READ));
    soft_msr_filter_free(f);
    assert_true(soft_msr_filter_allows(NULL, 0x140, KVM_MSR_FILTER_READ));
    assert_int_equal(soft_msr_exit_reason(SOFT_MSR_FILTERED), KVM_MSR_EXIT_REASON_FILTER);
    assert_int_equal(soft_msr_exit_reason(SOFT_MSR_UNSUPPORTED), KVM_MSR_EXIT_REASON_UNKNOWN);
    assert_int_equal(soft_msr_exit_reason(SOFT_MSR_INVALID), KVM_MSR_EXIT_REASON_INVAL);
}

/* ---- PV features and hypercalls ---- */

static void pv_features(void **state)
{
    (void)state;
    assert_int_equal(soft_pv_msr_feature(MSR_KVM_SYSTEM_TIME), KVM_FEATURE_CLOCKSOURCE);
    assert_int_equal(soft_pv_msr_feature(MSR_KVM_WALL_CLOCK_NEW), KVM_FEATURE_CLOCKSOURCE2);
    assert_int_equal(soft_pv_msr_feature(MSR_KVM_ASYNC_PF_ACK), KVM_FEATURE_ASYNC_PF_INT);
    assert_int_equal(soft_pv_msr_feature(MSR_KVM_POLL_CONTROL), KVM_FEATURE_POLL_CONTROL);
    assert_int_equal(soft_pv_msr_feature(0x10), -1);
    /* KVM's leaves found at the first base with KVM's signature, here the second (a Hyper-V one comes first). */
    struct kvm_cpuid_entry2 tab[] = {
        {.function = 0x40000000, .ebx = 0x7263694d},
        {.function = 0x40000001, .eax = 0x31237648},
        {.function = 0x40000100, .eax = 0x40000101, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d},
        {.function = 0x40000101, .eax = 1u << KVM_FEATURE_PV_SCHED_YIELD},
    };
    uint32_t eax = 0;
    assert_true(soft_pv_cpuid_features(tab, 4, &eax));
    assert_int_equal(eax, 1u << KVM_FEATURE_PV_SCHED_YIELD);
    assert_false(soft_pv_cpuid_features(tab, 3, &eax)); /* signature, but no features leaf */
    assert_false(soft_pv_cpuid_features(tab, 2, &eax));
}

static void hypercalls(void **state)
{
    (void)state;
    const uint32_t yield = 1u << KVM_FEATURE_PV_SCHED_YIELD;
    struct soft_hc hc = soft_hypercall_decide(KVM_HC_SCHED_YIELD, 0, true, false, 0);
    assert_true(hc.yield);
    assert_int_equal(hc.ret, 0);
    hc = soft_hypercall_decide(KVM_HC_SCHED_YIELD, 0, true, true, 0); /* enforced, not in CPUID */
    assert_false(hc.yield);
    assert_int_equal(hc.ret, (uint64_t)-KVM_ENOSYS);
    hc = soft_hypercall_decide(KVM_HC_SCHED_YIELD, 0, true, true, yield);
    assert_true(hc.yield);
    hc = soft_hypercall_decide(KVM_HC_SCHED_YIELD, 3, true, false, yield);
    assert_int_equal(hc.ret, (uint64_t)-KVM_EPERM);
    hc = soft_hypercall_decide(KVM_HC_VAPIC_POLL_IRQ, 0, true, true, 0);
    assert_int_equal(hc.ret, 0);
    /* Not implemented here (and not in the supported CPUID): -KVM_ENOSYS. */
    assert_int_equal(soft_hypercall_decide(KVM_HC_KICK_CPU, 0, true, false, 0).ret, (uint64_t)-KVM_ENOSYS);
    assert_int_equal(soft_hypercall_decide(KVM_HC_SEND_IPI, 0, true, false, 0).ret, (uint64_t)-KVM_ENOSYS);
    /* Outside 64-bit mode the number and the result are 32 bits. */
    hc = soft_hypercall_decide(0xffffffff00000000ull | KVM_HC_SCHED_YIELD, 0, false, false, 0);
    assert_true(hc.yield);
    assert_int_equal(soft_hypercall_decide(77, 0, false, false, 0).ret, (uint32_t)-KVM_ENOSYS);
    assert_int_equal(soft_hypercall_decide(0xffffffff00000000ull | KVM_HC_SCHED_YIELD, 0, true, false, 0).ret,
                     (uint64_t)-KVM_ENOSYS);
}

static void hv_cpuid(void **state)
{
    (void)state;
    struct kvm_cpuid_entry2 e[SOFT_HV_CPUID_NENT];
    soft_hv_cpuid_entries(true, e);
    bool seen_nested = false;
    for (int i = 0; i < SOFT_HV_CPUID_NENT; i++) {
        assert_true(e[i].function >= 0x40000000 && e[i].function <= 0x40000082);
        assert_int_equal(e[i].index | e[i].flags | e[i].padding[0] | e[i].padding[1] | e[i].padding[2], 0);
        if (e[i].function == 0x40000000) {
            assert_int_equal(e[i].eax, 0x40000082);
            assert_memory_equal(&e[i].ebx, "Linux KVM Hv", 4);
        }
        if (e[i].function == 0x40000003) { /* no enlightenment the backend does not implement (soft_hyperv.c) */
            assert_int_equal(e[i].eax & (HV_MSR_SYNIC_AVAILABLE | HV_MSR_SYNTIMER_AVAILABLE), 0);
            assert_int_equal(e[i].ebx | e[i].ecx, 0); /* no POST_MESSAGES, SIGNAL_EVENTS or DEBUGGING */
            assert_int_equal(e[i].edx & (HV_STIMER_DIRECT_MODE_AVAILABLE | HV_FEATURE_DEBUG_MSRS_AVAILABLE), 0);
            assert_true(e[i].eax & HV_MSR_HYPERCALL_AVAILABLE);
        }
        if (e[i].function == 0x40000004)
            assert_int_equal(e[i].eax & (1u << 18), 0);
        if (e[i].function == 0x4000000a) {
            assert_true(e[i].eax & (1u << 19));
            seen_nested = true;
        }
    }
    assert_true(seen_nested);
    soft_hv_cpuid_entries(false, e);
    assert_int_equal(e[4].function, 0x40000004);
    assert_true(e[4].eax & (1u << 18)); /* no SMT on the host: no core sharing */
}

/* ---- end to end: a real-mode guest through the KVM API ---- */

static const struct mvm_backend *be = &mvm_backend_soft;

/* Guest bytes: 16-bit code. */
#define MOV_EAX(x) 0x66, 0xb8, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define MOV_ECX(x) 0x66, 0xb9, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define MOV_EDX(x) 0x66, 0xba, (x)&0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24)
#define OUT_EAX    0x66, 0xe7, PORT
#define RDMSR      0x0f, 0x32
#define WRMSR      0x0f, 0x30
#define HLT        0xf4

static void g_create(struct soft_test_vm *g, const uint8_t *code, size_t n)
{
    static const uint8_t gp[] = {MOV_EAX(0xbad0000d), OUT_EAX, HLT}, ud[] = {MOV_EAX(0xbad00006), OUT_EAX, HLT};
    soft_test_vm_open(be, g, GUEST_MEM);
    memcpy(g->mem + CODE, code, n);
    memcpy(g->mem + GP_HANDLER, gp, sizeof gp);
    memcpy(g->mem + UD_HANDLER, ud, sizeof ud);
    uint32_t ivt_gp = GP_HANDLER, ivt_ud = UD_HANDLER; /* segment 0 */
    memcpy(g->mem + 13 * 4, &ivt_gp, 4);
    memcpy(g->mem + 6 * 4, &ivt_ud, 4);
    soft_test_vcpu_open(be, g);
    struct kvm_sregs s;
    assert_int_equal(be->ioctl(g->vcpu, KVM_GET_SREGS, (unsigned long)&s), 0);
    s.cs.base = 0;
    s.cs.selector = 0;
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_SREGS, (unsigned long)&s), 0);
    struct kvm_regs regs = {.rip = CODE, .rflags = 2, .rsp = 0x8000};
    assert_int_equal(be->ioctl(g->vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
}

static void g_destroy(struct soft_test_vm *g)
{
    soft_test_vm_close(be, g);
}

static void g_run(struct soft_test_vm *g, uint32_t want_reason)
{
    assert_int_equal(be->ioctl(g->vcpu, KVM_RUN, 0), 0);
    if (g->run->exit_reason != want_reason)
        fail_msg("exit reason %u, expected %u (%s)", g->run->exit_reason, want_reason, be->last_error());
}

/* The next exit is the guest's OUT of EAX to PORT: its value. */
static uint32_t g_out(struct soft_test_vm *g)
{
    g_run(g, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, PORT);
    assert_int_equal(g->run->io.size, 4);
    uint32_t v;
    memcpy(&v, (uint8_t *)g->run + g->run->io.data_offset, 4);
    return v;
}

static void user_space_msr_exits(void **state)
{
    (void)state;
    static const uint8_t code[] = {
        MOV_ECX(MSR_UNKNOWN), RDMSR,           OUT_EAX,              /* unknown MSR: KVM_EXIT_X86_RDMSR, UNKNOWN */
        MOV_ECX(MSR_XSS),     MOV_EAX(0x1234), MOV_EDX(0x56), WRMSR, /* denied by the filter: the VMM says #GP */
    };
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    assert_int_equal(be->ioctl(g.sys, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR), 1);
    assert_int_equal(be->ioctl(g.sys, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER), 1);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args[0] = 8};
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), -EINVAL);
    cap.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER;
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    uint8_t deny = 0;
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
    f.ranges[0] =
        (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_WRITE, .base = MSR_XSS, .nmsrs = 1, .bitmap = &deny};
    assert_int_equal(be->ioctl(g.vm, KVM_X86_SET_MSR_FILTER, (unsigned long)&f), 0);

    g_run(&g, KVM_EXIT_X86_RDMSR);
    assert_int_equal(g.run->msr.index, MSR_UNKNOWN);
    assert_int_equal(g.run->msr.reason, KVM_MSR_EXIT_REASON_UNKNOWN);
    assert_int_equal(g.run->msr.error, 0);
    struct kvm_regs regs;
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_REGS, (unsigned long)&regs), 0);
    assert_int_equal(regs.rip, CODE + 6); /* at the RDMSR during the exit */
    g.run->msr.data = 0x0000000700c0ffeeull;
    assert_int_equal(g_out(&g), 0x00c0ffee); /* EAX from the VMM's answer */
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_REGS, (unsigned long)&regs), 0);
    assert_int_equal(regs.rdx & 0xffffffff, 7);

    g_run(&g, KVM_EXIT_X86_WRMSR);
    assert_int_equal(g.run->msr.index, MSR_XSS);
    assert_int_equal(g.run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
    assert_int_equal(g.run->msr.data, 0x0000005600001234ull);
    g.run->msr.error = 1;
    assert_int_equal(g_out(&g), 0xbad0000d); /* #GP in the guest */
    g_destroy(&g);
}

/* KVM_RUN with immediate_exit after an exit only completes it (-EINTR): the MSR exit comes on the next KVM_RUN. */
static void msr_exit_after_immediate_exit(void **state)
{
    (void)state;
    static const uint8_t code[] = {MOV_EAX(5), OUT_EAX, MOV_ECX(MSR_UNKNOWN), RDMSR, OUT_EAX};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args[0] = KVM_MSR_EXIT_REASON_UNKNOWN};
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    assert_int_equal(g_out(&g), 5);
    g.run->immediate_exit = 1;
    assert_int_equal(be->ioctl(g.vcpu, KVM_RUN, 0), -EINTR);
    g.run->immediate_exit = 0;
    g_run(&g, KVM_EXIT_X86_RDMSR);
    assert_int_equal(g.run->msr.index, MSR_UNKNOWN);
    g.run->msr.data = 0x77;
    assert_int_equal(g_out(&g), 0x77);
    g_destroy(&g);
}

static void msr_gp_without_user_space(void **state)
{
    (void)state;
    static const uint8_t code[] = {MOV_ECX(MSR_UNKNOWN), RDMSR, MOV_EAX(1), OUT_EAX};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    /* The filter's reason is asked for, not UNKNOWN's: KVM injects #GP. */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR, .args[0] = KVM_MSR_EXIT_REASON_FILTER};
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    assert_int_equal(g_out(&g), 0xbad0000d);
    g_destroy(&g);
}

static void vmcall_fixed(void **state)
{
    (void)state;
    static const uint8_t code[] = {MOV_EAX(KVM_HC_SCHED_YIELD), 0x0f, 0x01, 0xc1 /* vmcall */, OUT_EAX};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    assert_true(be->ioctl(g.sys, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2) & KVM_X86_QUIRK_FIX_HYPERCALL_INSN);
    assert_int_equal(g_out(&g), 0); /* SCHED_YIELD's answer, through the VMMCALL KVM wrote there */
    static const uint8_t vmmcall[] = {0x0f, 0x01, 0xd9};
    assert_memory_equal(g.mem + CODE + 6, vmmcall, 3);
    g_destroy(&g);
}

/* With TF set, KVM's emulation of the VMCALL (the patch) completes an instruction: #DB with RIP at it, now VMMCALL. */
static void vmcall_fixed_single_step(void **state)
{
    (void)state;
    static const uint8_t code[] = {0x0f, 0x01, 0xc1, OUT_EAX};
    static const uint8_t db[] = {0x66, 0x58 /* pop eax: IP, CS */, OUT_EAX, HLT};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    memcpy(g.mem + 0x2200, db, sizeof db);
    uint32_t ivt_db = 0x2200;
    memcpy(g.mem + 1 * 4, &ivt_db, 4);
    struct kvm_regs regs = {.rip = CODE, .rflags = 0x102 /* TF */, .rsp = 0x8000, .rax = KVM_HC_SCHED_YIELD};
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_REGS, (unsigned long)&regs), 0);
    assert_int_equal(g_out(&g), CODE); /* the #DB's return address: the patched instruction, not run yet */
    struct kvm_debugregs d;
    if (be->ioctl(g.vcpu, KVM_GET_DEBUGREGS, (unsigned long)&d) == 0)
        assert_true(d.dr6 & (1u << 14)); /* BS */
    else
        print_message("KVM_GET_DEBUGREGS not offered by this backend: DR6.BS not checked\n");
    g_destroy(&g);
}

static void vmcall_ud_with_quirk_disabled(void **state)
{
    (void)state;
    static const uint8_t code[] = {MOV_EAX(KVM_HC_SCHED_YIELD), 0x0f, 0x01, 0xc1, OUT_EAX};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_DISABLE_QUIRKS2, .args[0] = 1u << 30};
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), -EINVAL); /* not a quirk */
    cap.args[0] = KVM_X86_QUIRK_FIX_HYPERCALL_INSN;
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    assert_int_equal(g_out(&g), 0xbad00006); /* #UD */
    static const uint8_t vmcall[] = {0x0f, 0x01, 0xc1};
    assert_memory_equal(g.mem + CODE + 6, vmcall, 3); /* left as it was */
    g_destroy(&g);
}

/* MONITOR and MWAIT: NOPs while KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS is on; without it, #UD unless CPUID has MWAIT. */
static void monitor_mwait(void **state)
{
    (void)state;
    static const uint8_t code[] = {0x0f, 0x01, 0xc8, 0x0f,       0x01,   0xc9, MOV_EAX(1), OUT_EAX, /* monitor; mwait */
                                   0x0f, 0x01, 0xc8, MOV_EAX(2), OUT_EAX};
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[1];
    } c = {.h.nent = 1, .e = {{.function = 1, .ecx = 1 /* SSE3, no MWAIT */}}};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
    assert_int_equal(g_out(&g), 1); /* the quirk: both are NOPs */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_DISABLE_QUIRKS2, .args[0] = KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS};
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    assert_int_equal(g_out(&g), 0xbad00006); /* #UD */
    g_destroy(&g);
}

/* Without KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT, IA32_MISC_ENABLE.MWAIT sets CPUID.1.ECX.MWAIT (with SSE3 only). */
static void misc_enable_mwait(void **state)
{
    (void)state;
    static const uint8_t code[] = {MOV_EAX(1), 0x0f, 0xa2 /* cpuid */, 0x66, 0x89, 0xc8 /* mov eax, ecx */, OUT_EAX};
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[1];
    } c = {.h.nent = 1, .e = {{.function = 1, .ecx = 0}}};
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[1];
    } m = {.h.nmsrs = 1, .e = {{.index = SOFT_MSR_MISC_ENABLE}}};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_MSRS, (unsigned long)&m), 1);
    assert_int_equal(m.e[0].data, (1u << 11) | (1u << 12)); /* KVM's value at creation: BTS and PEBS unavailable */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_DISABLE_QUIRKS2, .args[0] = KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT};
    assert_int_equal(be->ioctl(g.vm, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    m.e[0].data |= 1u << 18;
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_MSRS, (unsigned long)&m), 0); /* no SSE3: refused */
    c.e[0].ecx = 1;
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_MSRS, (unsigned long)&m), 1);
    assert_int_equal(g_out(&g) & 9, 9); /* SSE3 and now MWAIT */
    g_destroy(&g);
}

static void enforce_pv_cpuid(void **state)
{
    (void)state;
    static const uint8_t code[] = {
        MOV_ECX(MSR_KVM_SYSTEM_TIME_NEW), RDMSR, MOV_EAX(2), OUT_EAX, /* allowed: CLOCKSOURCE2 in CPUID */
        MOV_ECX(MSR_KVM_STEAL_TIME),      RDMSR, MOV_EAX(3), OUT_EAX, /* #GP: STEAL_TIME is not */
    };
    static const uint8_t code2[] = {MOV_EAX(KVM_HC_SCHED_YIELD), 0x0f, 0x01, 0xd9, OUT_EAX};
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[2];
    } c = {.h.nent = 2,
           .e = {{.function = KVM_CPUID_SIGNATURE,
                  .eax = KVM_CPUID_FEATURES,
                  .ebx = 0x4b4d564b,
                  .ecx = 0x564b4d56,
                  .edx = 0x4d},
                 {.function = KVM_CPUID_FEATURES, .eax = 1u << KVM_FEATURE_CLOCKSOURCE2}}};
    struct soft_test_vm g;
    g_create(&g, code, sizeof code);
    assert_int_equal(be->ioctl(g.sys, KVM_CHECK_EXTENSION, KVM_CAP_ENFORCE_PV_FEATURE_CPUID), 1);
    struct kvm_enable_cap cap = {.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args[0] = 1};
    assert_int_equal(be->ioctl(g.vcpu, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
    assert_int_equal(g_out(&g), 2);
    assert_int_equal(g_out(&g), 0xbad0000d);
    /* The VMM's KVM_GET_MSRS stops at the same MSR: kvm_get_msr_common refuses it whoever asks. */
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[2];
    } m = {.h.nmsrs = 2, .e = {{.index = MSR_KVM_SYSTEM_TIME_NEW}, {.index = MSR_KVM_STEAL_TIME}}};
    assert_int_equal(be->ioctl(g.vcpu, KVM_GET_MSRS, (unsigned long)&m), 1);
    g_destroy(&g);

    g_create(&g, code2, sizeof code2);
    assert_int_equal(be->ioctl(g.vcpu, KVM_ENABLE_CAP, (unsigned long)&cap), 0);
    assert_int_equal(be->ioctl(g.vcpu, KVM_SET_CPUID2, (unsigned long)&c), 0);
    assert_int_equal(g_out(&g), (uint32_t)-KVM_ENOSYS); /* no PV_SCHED_YIELD in CPUID */
    g_destroy(&g);
}

static void hv_cpuid_ioctl(void **state)
{
    (void)state;
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[12];
    } c = {.h.nent = 9};
    int sys = be->open_dev();
    assert_true(sys >= 0);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_CPUID), 1);
    assert_int_equal(be->ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID), 1);
    assert_int_equal(be->ioctl(sys, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&c), -E2BIG);
    c.h.nent = 12;
    assert_int_equal(be->ioctl(sys, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&c), 0);
    assert_int_equal(c.h.nent, 10);
    int vm = be->ioctl(sys, KVM_CREATE_VM, 0), vcpu = be->ioctl(vm, KVM_CREATE_VCPU, 0);
    assert_true(vcpu >= 0);
    c.h.nent = 10;
    assert_int_equal(be->ioctl(vcpu, KVM_GET_SUPPORTED_HV_CPUID, (unsigned long)&c), 0);
    assert_int_equal(c.e[0].eax, 0x40000082);
    be->close(vcpu);
    be->close(vm);
    be->close(sys);
}

/* No nested guests: the supported CPUID has no SVM (nor VMX), so tests that need them skip as on KVM without nested. */
static void no_nested(void **state)
{
    (void)state;
    struct {
        struct kvm_cpuid2 h;
        struct kvm_cpuid_entry2 e[100];
    } c = {.h.nent = 100};
    int sys = be->open_dev();
    assert_true(sys >= 0);
    assert_int_equal(be->ioctl(sys, KVM_GET_SUPPORTED_CPUID, (unsigned long)&c), 0);
    bool ext = false;
    for (uint32_t i = 0; i < c.h.nent; i++) {
        if (c.e[i].function == 1)
            assert_int_equal(c.e[i].ecx & (1u << 5), 0); /* VMX */
        if (c.e[i].function == 0x80000001) {
            assert_int_equal(c.e[i].ecx & (1u << 2), 0); /* SVM */
            ext = true;
        }
    }
    assert_true(ext);
    be->close(sys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filter_checks),
        cmocka_unit_test(filter_rules),
        cmocka_unit_test(pv_features),
        cmocka_unit_test(hypercalls),
        cmocka_unit_test(hv_cpuid),
        cmocka_unit_test(user_space_msr_exits),
        cmocka_unit_test(msr_exit_after_immediate_exit),
        cmocka_unit_test(msr_gp_without_user_space),
        cmocka_unit_test(vmcall_fixed),
        cmocka_unit_test(vmcall_fixed_single_step),
        cmocka_unit_test(vmcall_ud_with_quirk_disabled),
        cmocka_unit_test(monitor_mwait),
        cmocka_unit_test(misc_enable_mwait),
        cmocka_unit_test(enforce_pv_cpuid),
        cmocka_unit_test(hv_cpuid_ioctl),
        cmocka_unit_test(no_nested),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
