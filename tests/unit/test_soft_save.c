/*
 * The soft backend's vCPU state save and restore (soft_save.h): the XSAVE layout rules on their own, then
 * KVM_GET/SET_XSAVE, XSAVE2, XCRS, FPU, VCPU_EVENTS and DEBUGREGS end to end on a small real-mode guest that
 * reads back what was set (XMM1, XCR0, an injected exception, an NMI and its mask until IRET), and the answers
 * KVM gives to wrong uses.
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

#include "lab.h"
#include "mvm.h"
#include "soft_save.h"

/*
 * 0x1000: movd eax,xmm1; out 0x80,eax; fld1; hlt
 * 0x1100 (NMI): mov al,'N'; out 0x81,al; iret
 * 0x1200 (#UD): mov al,'U'; out 0x82,al; iret
 * 0x1300: xor ecx,ecx; xgetbv; out 0x80,eax; hlt
 */
static const uint8_t code[] = {0x66, 0x0f, 0x7e, 0xc8, 0x66, 0xe7, 0x80, 0xd9, 0xe8, 0xf4};
static const uint8_t nmi_handler[] = {0xb0, 'N', 0xe6, 0x81, 0xcf};
static const uint8_t ud_handler[] = {0xb0, 'U', 0xe6, 0x82, 0xcf};
static const uint8_t xgetbv_code[] = {0x66, 0x31, 0xc9, 0x0f, 0x01, 0xd0, 0x66, 0xe7, 0x80, 0xf4};

struct vm1 {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_run *run;
};

static void vm1_create(struct vm1 *g)
{
    const struct mvm_backend *be;
    memset(g, 0, sizeof *g);
    assert_int_equal(mvm_backend_pick("soft", &be), 0);
    assert_int_equal(vm_create(be, &g->vm), 0);
    assert_int_equal(vm_mem_add(g->vm, 0, 1 << 20, 0), 0);
    assert_int_equal(vcpu_create(g->vm, 0, &g->vcpu), 0);
    if (vcpu_setup_mode(g->vcpu, MVM_MODE_REAL, 0x1000) < 0)
        fail_msg("vcpu_setup_mode: %s", mvm_error());
    assert_int_equal(vm_write(g->vm, 0x1000, code, sizeof code), 0);
    assert_int_equal(vm_write(g->vm, 0x1100, nmi_handler, sizeof nmi_handler), 0);
    assert_int_equal(vm_write(g->vm, 0x1200, ud_handler, sizeof ud_handler), 0);
    assert_int_equal(vm_write(g->vm, 0x1300, xgetbv_code, sizeof xgetbv_code), 0);
    struct kvm_sregs s;
    assert_int_equal(vcpu_sregs_get(g->vcpu, &s), 0);
    s.cr4 |= 1u << 9; /* OSFXSR: SSE instructions run */
    assert_int_equal(vcpu_sregs_set(g->vcpu, &s), 0);
    uint32_t nmi = 0x1100, ud = 0x1200; /* offset, segment 0 */
    assert_int_equal(vm_write(g->vm, 2 * 4, &nmi, 4), 0);
    assert_int_equal(vm_write(g->vm, 6 * 4, &ud, 4), 0);
    g->run = vcpu_run_page(g->vcpu);
}

static int ioc(struct vm1 *g, unsigned long req, void *arg)
{
    return vcpu_ioctl(g->vcpu, req, arg, "state ioctl");
}

/* KVM_RUN until the next exit, which must be an OUT of `size` bytes to `port`; the data. */
static uint32_t expect_out(struct vm1 *g, uint16_t port, unsigned size)
{
    alarm(10);
    int rc = vcpu_enter(g->vcpu);
    alarm(0);
    assert_int_equal(rc, 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_IO);
    assert_int_equal(g->run->io.port, port);
    assert_int_equal(g->run->io.size, size);
    uint32_t x = 0;
    memcpy(&x, (uint8_t *)g->run + g->run->io.data_offset, size);
    return x;
}

static void expect_hlt(struct vm1 *g)
{
    assert_int_equal(vcpu_enter(g->vcpu), 0);
    assert_int_equal(g->run->exit_reason, KVM_EXIT_HLT);
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static uint32_t ld32(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* A full-state image in its initial configuration (FCW 0x37f, MXCSR 0x1f80, the rest 0). */
static void full_init(uint8_t *full)
{
    uint16_t fcw = SOFT_FCW_INIT;
    uint32_t mxcsr[2] = {SOFT_MXCSR_INIT, SOFT_MXCSR_MASK};
    memset(full, 0, SOFT_XSAVE_FULL_SIZE);
    memcpy(full + SOFT_XSAVE_FCW, &fcw, 2);
    memcpy(full + SOFT_XSAVE_MXCSR, mxcsr, 8);
}

static void layout_rules(void **state)
{
    uint8_t full[SOFT_XSAVE_FULL_SIZE], out[SOFT_XSAVE_FULL_SIZE], back[SOFT_XSAVE_FULL_SIZE];
    const uint64_t fpsse = SOFT_XFEATURE_FP | SOFT_XFEATURE_SSE;
    (void)state;
    full_init(full);
    assert_int_equal(soft_xsave_inuse(full), 0);
    full[SOFT_XSAVE_XMM + 16 * 3] = 7;
    assert_int_equal(soft_xsave_inuse(full), SOFT_XFEATURE_SSE);
    full[SOFT_XSAVE_FTW] = 0x80;
    assert_int_equal(soft_xsave_inuse(full), fpsse);
    full[SOFT_XSAVE_YMM + 5] = 1;
    assert_int_equal(soft_xsave_inuse(full), fpsse | SOFT_XFEATURE_YMM);

    /* Out: only the components asked for; the others read as initial; the header and the software word. */
    soft_xsave_to_uabi(full, SOFT_XFEATURE_SSE, fpsse, out, sizeof out);
    assert_int_equal(ld64(out + SOFT_XSAVE_HDR), SOFT_XFEATURE_SSE);
    assert_int_equal(ld64(out + SOFT_XSAVE_SW), fpsse);
    assert_int_equal(out[SOFT_XSAVE_FTW], 0);
    assert_int_equal(out[SOFT_XSAVE_FCW], 0x7f);
    assert_int_equal(out[SOFT_XSAVE_XMM + 16 * 3], 7);
    assert_int_equal(out[SOFT_XSAVE_YMM + 5], 0);
    assert_int_equal(ld32(out + SOFT_XSAVE_MXCSR + 4), SOFT_MXCSR_MASK);

    /* In: a component given is loaded, one not given goes to its initial state; MXCSR stays without x87/SSE/AVX. */
    memcpy(back, full, sizeof back);
    uint32_t mx = 0x1fa0;
    memcpy(back + SOFT_XSAVE_MXCSR, &mx, 4);
    soft_xsave_from_uabi(back, out);
    assert_int_equal(back[SOFT_XSAVE_FTW], 0);
    assert_int_equal(back[SOFT_XSAVE_XMM + 16 * 3], 7);
    assert_int_equal(back[SOFT_XSAVE_YMM + 5], 0);
    assert_int_equal(ld32(back + SOFT_XSAVE_MXCSR), SOFT_MXCSR_INIT); /* SSE given: the buffer's */
    memset(out + SOFT_XSAVE_HDR, 0, 8);
    memcpy(back + SOFT_XSAVE_MXCSR, &mx, 4);
    soft_xsave_from_uabi(back, out);
    assert_int_equal(ld32(back + SOFT_XSAVE_MXCSR), mx);
    assert_int_equal(back[SOFT_XSAVE_XMM + 16 * 3], 0);

    /* KVM_SET_XSAVE's refusals. */
    soft_xsave_to_uabi(full, fpsse, fpsse, out, sizeof out);
    assert_int_equal(soft_xsave_check(out, fpsse), 0);
    out[SOFT_XSAVE_HDR] |= SOFT_XFEATURE_YMM;
    assert_int_equal(soft_xsave_check(out, fpsse), -EINVAL);
    out[SOFT_XSAVE_HDR] &= (uint8_t)~SOFT_XFEATURE_YMM;
    out[SOFT_XSAVE_HDR + 8] = 1; /* XCOMP_BV: the compacted format */
    assert_int_equal(soft_xsave_check(out, fpsse), -EINVAL);
    out[SOFT_XSAVE_HDR + 8] = 0;
    out[SOFT_XSAVE_HDR + 40] = 1;
    assert_int_equal(soft_xsave_check(out, fpsse), -EINVAL);
    out[SOFT_XSAVE_HDR + 40] = 0;
    out[SOFT_XSAVE_MXCSR + 2] = 1; /* MXCSR bit 16 */
    assert_int_equal(soft_xsave_check(out, fpsse), -EINVAL);
    memset(out + SOFT_XSAVE_HDR, 0, 8); /* no x87/SSE/AVX given: MXCSR is not looked at */
    assert_int_equal(soft_xsave_check(out, fpsse), 0);
}

static void xsave_fpu_xcrs(void **state)
{
    struct vm1 g, h;
    (void)state;
    vm1_create(&g);
    int xsave2 = vm_ioctl(g.vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_XSAVE2, "KVM_CHECK_EXTENSION");
    assert_true(xsave2 >= (int)sizeof(struct kvm_xsave));
    assert_int_equal(vm_ioctl(g.vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_XSAVE, "KVM_CHECK_EXTENSION"), 1);

    /* A new vCPU: KVM's initial x87/SSE state, every component initial, XCR0 = x87. */
    struct kvm_fpu fpu;
    assert_int_equal(ioc(&g, KVM_GET_FPU, &fpu), 0);
    assert_int_equal(fpu.fcw, SOFT_FCW_INIT);
    assert_int_equal(fpu.ftwx, 0);
    static struct kvm_xsave xs, xs2;
    assert_int_equal(ioc(&g, KVM_GET_XSAVE, &xs), 0);
    const uint8_t *b = (const uint8_t *)xs.region;
    assert_int_equal(ld64(b + SOFT_XSAVE_HDR), 0);
    assert_int_equal(ld32(b + SOFT_XSAVE_MXCSR), SOFT_MXCSR_INIT);
    struct kvm_xcrs xcrs;
    assert_int_equal(ioc(&g, KVM_GET_XCRS, &xcrs), 0);
    assert_int_equal(xcrs.nr_xcrs, 1);
    assert_int_equal(xcrs.xcrs[0].xcr, 0);
    assert_int_equal(xcrs.xcrs[0].value, SOFT_XFEATURE_FP);

    /* KVM_SET_XSAVE reaches the engine: the guest reads XMM1; then FLD1 shows in KVM_GET_FPU. */
    uint8_t *w = (uint8_t *)xs.region;
    const uint64_t x1[2] = {0x5566778811223344ull, 0x99aabbccddeeff00ull};
    uint16_t fcw = 0x27f;
    uint32_t mxcsr = 0x1fa0;
    memcpy(w + SOFT_XSAVE_XMM + 16, x1, 16);
    memcpy(w + SOFT_XSAVE_FCW, &fcw, 2);
    memcpy(w + SOFT_XSAVE_MXCSR, &mxcsr, 4);
    w[SOFT_XSAVE_HDR] = SOFT_XFEATURE_FP | SOFT_XFEATURE_SSE;
    assert_int_equal(ioc(&g, KVM_SET_XSAVE, &xs), 0);
    assert_int_equal(expect_out(&g, 0x80, 4), 0x11223344u);
    expect_hlt(&g);
    assert_int_equal(ioc(&g, KVM_GET_FPU, &fpu), 0);
    assert_int_equal(fpu.fcw, 0x27f);
    assert_int_equal((fpu.fsw >> 11) & 7, 7);                  /* TOP after one push */
    assert_int_equal(fpu.ftwx, 0x80);                          /* physical register 7 in use */
    assert_int_equal(ld64(fpu.fpr[0]), 0x8000000000000000ull); /* ST0 = 1.0 */
    assert_int_equal(fpu.fpr[0][8] | fpu.fpr[0][9] << 8, 0x3fff);
    assert_int_equal(fpu.mxcsr, 0); /* KVM 6.1's KVM_GET_FPU leaves MXCSR out */
    assert_int_equal(ld64(fpu.xmm[1]), x1[0]);
    memset(&xs, 0, sizeof xs);
    assert_int_equal(ioc(&g, KVM_GET_XSAVE2, &xs), 0);
    assert_int_equal(ld64(b + SOFT_XSAVE_HDR), SOFT_XFEATURE_FP | SOFT_XFEATURE_SSE);
    assert_int_equal(ld32(b + SOFT_XSAVE_MXCSR), mxcsr);
    assert_memory_equal(b + SOFT_XSAVE_XMM + 16, x1, 16);

    /* The state moves to another VM's vCPU unchanged. */
    vm1_create(&h);
    assert_int_equal(ioc(&h, KVM_SET_XSAVE, &xs), 0);
    assert_int_equal(ioc(&h, KVM_GET_XSAVE, &xs2), 0);
    assert_memory_equal(xs.region, xs2.region, sizeof xs.region);

    /* Refusals: a component the backend does not offer, and XCR0 values KVM refuses. */
    w[SOFT_XSAVE_HDR] |= SOFT_XFEATURE_YMM;
    assert_int_equal(ioc(&h, KVM_SET_XSAVE, &xs), -EINVAL);
    /* CPUID with XSAVE (leaf 1) and no leaf 0xD: only x87 may be set; with leaf 0xD offering x87|SSE, 3 is taken and
     * the guest's XGETBV sees it. */
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[3];
    } cpuid = {.c.nent = 2,
               .e = {{.function = 0, .eax = 0xd},
                     {.function = 1, .ecx = 1u << 26, .edx = (1u << 0) | (1u << 24) | (1u << 25) | (1u << 26)},
                     {.function = 0xd, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 3}}};
    assert_int_equal(ioc(&h, KVM_SET_CPUID2, &cpuid), 0);
    xcrs.xcrs[0].value = 3;
    assert_int_equal(ioc(&h, KVM_SET_XCRS, &xcrs), -EINVAL);
    cpuid.c.nent = 3;
    assert_int_equal(ioc(&h, KVM_SET_CPUID2, &cpuid), 0);
    assert_int_equal(ioc(&h, KVM_SET_XCRS, &xcrs), 0);
    xcrs.xcrs[0].value = 2; /* x87 clear */
    assert_int_equal(ioc(&h, KVM_SET_XCRS, &xcrs), -EINVAL);
    xcrs.xcrs[0].value = 3;
    xcrs.flags = 1;
    assert_int_equal(ioc(&h, KVM_SET_XCRS, &xcrs), -EINVAL);
    xcrs.flags = 0;
    xcrs.nr_xcrs = KVM_MAX_XCRS + 1;
    assert_int_equal(ioc(&h, KVM_SET_XCRS, &xcrs), -EINVAL);
    memset(&xcrs, 0, sizeof xcrs);
    assert_int_equal(ioc(&h, KVM_GET_XCRS, &xcrs), 0);
    assert_int_equal(xcrs.xcrs[0].value, 3);
    struct kvm_sregs s;
    assert_int_equal(vcpu_sregs_get(h.vcpu, &s), 0);
    s.cr4 |= (1u << 18) | (1u << 9); /* OSXSAVE, OSFXSR */
    assert_int_equal(vcpu_sregs_set(h.vcpu, &s), 0);
    struct kvm_regs r;
    assert_int_equal(vcpu_regs_get(h.vcpu, &r), 0);
    r.rip = 0x1300;
    assert_int_equal(vcpu_regs_set(h.vcpu, &r), 0);
    assert_int_equal(expect_out(&h, 0x80, 4), 3);

    /* An XSAVE buffer with no component puts x87 and SSE back to their initial state. */
    memset(&xs2, 0, sizeof xs2);
    assert_int_equal(ioc(&g, KVM_SET_XSAVE, &xs2), 0);
    assert_int_equal(ioc(&g, KVM_GET_FPU, &fpu), 0);
    assert_int_equal(fpu.fcw, SOFT_FCW_INIT);
    assert_int_equal(fpu.ftwx, 0);
    assert_int_equal(ld64(fpu.xmm[1]), 0);
    vm_destroy(h.vm);
    vm_destroy(g.vm);
}

static void events(void **state)
{
    struct vm1 g;
    struct kvm_vcpu_events e;
    (void)state;
    vm1_create(&g);
    assert_int_equal(vm_ioctl(g.vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_VCPU_EVENTS, "check"), 1);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_int_equal(e.flags, KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM);
    assert_false(e.exception.injected || e.interrupt.injected || e.nmi.pending || e.nmi.masked || e.smi.smm);

    /* Refusals: unknown flags, a payload or triple fault whose capability is off, a vector that is no exception. */
    struct kvm_vcpu_events bad = e;
    bad.flags |= 0x80;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &bad), -EINVAL);
    bad = e;
    bad.flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &bad), -EINVAL);
    bad = e;
    bad.flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &bad), -EINVAL);
    bad = e;
    bad.exception.injected = 1;
    bad.exception.nr = 2;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &bad), -EINVAL);
    bad.exception.nr = 32;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &bad), -EINVAL);

    /* Round trips: the interrupt shadow (AMD reports both kinds), an interrupt (also in KVM_GET_SREGS), SMM. */
    struct kvm_vcpu_events set = e;
    set.interrupt.shadow = KVM_X86_SHADOW_INT_MOV_SS;
    set.interrupt.injected = 1;
    set.interrupt.nr = 0x30;
    set.smi.smm = 1;
    set.smi.smm_inside_nmi = 1;
    set.smi.pending = 1;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &set), 0);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_int_equal(e.interrupt.shadow, KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI);
    assert_int_equal(e.interrupt.injected, 1);
    assert_int_equal(e.interrupt.nr, 0x30);
    assert_true(e.smi.smm && e.smi.smm_inside_nmi && e.smi.pending);
    struct kvm_sregs s;
    assert_int_equal(vcpu_sregs_get(g.vcpu, &s), 0);
    assert_true(s.interrupt_bitmap[0] & (1ull << 0x30));
    set = e;
    set.interrupt.shadow = 0;
    set.interrupt.injected = 0;
    set.smi.smm = 0;
    set.smi.pending = 0;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &set), 0);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_false(e.interrupt.shadow || e.interrupt.injected || e.smi.smm || e.smi.smm_inside_nmi || e.smi.pending);

    /* An injected exception goes through the IVT at the next KVM_RUN; its handler's IRET comes back. */
    set = e;
    set.exception.injected = 1;
    set.exception.nr = 6;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &set), 0);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_true(e.exception.injected && e.exception.nr == 6 && !e.exception.has_error_code);
    assert_int_equal(expect_out(&g, 0x82, 1), 'U');
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_false(e.exception.injected);
    assert_int_equal(expect_out(&g, 0x80, 4), 0);

    /* A pending NMI: delivered, masked in its handler, unmasked by the handler's IRET. */
    vm_destroy(g.vm);
    vm1_create(&g);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    e.nmi.pending = 1;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &e), 0);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_true(e.nmi.pending && !e.nmi.masked);
    assert_int_equal(expect_out(&g, 0x81, 1), 'N');
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_true(!e.nmi.pending && e.nmi.masked);
    assert_int_equal(expect_out(&g, 0x80, 4), 0);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_false(e.nmi.masked);
    /* A pending NMI waits while masked; setting the mask is what KVM_SET_VCPU_EVENTS restores. */
    e.nmi.pending = 1;
    e.nmi.masked = 1;
    assert_int_equal(ioc(&g, KVM_SET_VCPU_EVENTS, &e), 0);
    expect_hlt(&g);
    assert_int_equal(ioc(&g, KVM_GET_VCPU_EVENTS, &e), 0);
    assert_true(e.nmi.pending && e.nmi.masked);
    vm_destroy(g.vm);
}

static void debugregs(void **state)
{
    struct vm1 g;
    struct kvm_debugregs d;
    (void)state;
    vm1_create(&g);
    assert_int_equal(vm_ioctl(g.vm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_DEBUGREGS, "check"), 1);
    assert_int_equal(ioc(&g, KVM_GET_DEBUGREGS, &d), 0);
    assert_int_equal(d.dr6, 0xffff0ff0u); /* KVM's reset values */
    assert_int_equal(d.dr7, 0x400);
    d.db[0] = 0x1234;
    d.db[3] = 0xffffffff80001000ull;
    d.dr7 = 0x401;
    assert_int_equal(ioc(&g, KVM_SET_DEBUGREGS, &d), 0);
    struct kvm_debugregs back;
    assert_int_equal(ioc(&g, KVM_GET_DEBUGREGS, &back), 0);
    assert_int_equal(back.db[0], 0x1234);
    assert_int_equal(back.db[3], d.db[3]);
    assert_int_equal(back.dr7, 0x401);
    d.dr7 |= 1ull << 32;
    assert_int_equal(ioc(&g, KVM_SET_DEBUGREGS, &d), -EINVAL);
    d.dr7 = 0x400;
    d.flags = 1;
    assert_int_equal(ioc(&g, KVM_SET_DEBUGREGS, &d), -EINVAL);
    vm_destroy(g.vm);
}

/* Every MSR in KVM_GET_MSR_INDEX_LIST reads, and takes back what it read (what a restore writes), as on KVM. */
static void msr_list_round_trip(void **state)
{
    const struct mvm_backend *be;
    struct vm1 g;
    (void)state;
    assert_int_equal(mvm_backend_pick("soft", &be), 0);
    int sys = be->open_dev();
    assert_true(sys >= 0);
    struct kvm_msr_list probe = {.nmsrs = 0};
    assert_int_equal(be->ioctl(sys, KVM_GET_MSR_INDEX_LIST, (unsigned long)&probe), -E2BIG);
    uint32_t n = probe.nmsrs;
    assert_true(n > 0 && n < 256);
    struct kvm_msr_list *list = calloc(1, sizeof *list + n * sizeof list->indices[0]);
    struct kvm_msrs *m = calloc(1, sizeof *m + n * sizeof m->entries[0]);
    assert_non_null(list);
    assert_non_null(m);
    list->nmsrs = n;
    assert_int_equal(be->ioctl(sys, KVM_GET_MSR_INDEX_LIST, (unsigned long)list), 0);
    be->close(sys);
    vm1_create(&g);
    m->nmsrs = n;
    for (uint32_t i = 0; i < n; i++)
        m->entries[i].index = list->indices[i];
    int got = ioc(&g, KVM_GET_MSRS, m);
    if (got != (int)n)
        fail_msg("KVM_GET_MSRS stopped at MSR 0x%x (%d of %u)", got >= 0 && got < (int)n ? list->indices[got] : 0, got,
                 n);
    int set = ioc(&g, KVM_SET_MSRS, m);
    if (set != (int)n)
        fail_msg("KVM_SET_MSRS refused MSR 0x%x, value 0x%llx (%d of %u)",
                 set >= 0 && set < (int)n ? list->indices[set] : 0,
                 set >= 0 && set < (int)n ? (unsigned long long)m->entries[set].data : 0ull, set, n);
    struct kvm_msrs *back = calloc(1, sizeof *m + n * sizeof m->entries[0]);
    assert_non_null(back);
    back->nmsrs = n;
    for (uint32_t i = 0; i < n; i++)
        back->entries[i].index = list->indices[i];
    assert_int_equal(ioc(&g, KVM_GET_MSRS, back), (int)n);
    for (uint32_t i = 0; i < n; i++) {
        if (list->indices[i] == 0x10) /* IA32_TSC runs on */
            assert_true(back->entries[i].data >= m->entries[i].data);
        else if (back->entries[i].data != m->entries[i].data)
            fail_msg("MSR 0x%x: wrote 0x%llx, read 0x%llx", list->indices[i], (unsigned long long)m->entries[i].data,
                     (unsigned long long)back->entries[i].data);
    }
    free(back);
    free(m);
    free(list);
    vm_destroy(g.vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_rules), cmocka_unit_test(xsave_fpu_xcrs),      cmocka_unit_test(events),
        cmocka_unit_test(debugregs),    cmocka_unit_test(msr_list_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
