/* Unit tests of the soft backend's MSR tables and kvmclock arithmetic (soft_msr.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "soft_msr.h"
#include "soft_priv.h"
#include "x86.h"

static void index_list(void **state)
{
    uint32_t n;
    (void)state;
    const uint32_t *idx = soft_msr_index_list(&n);
    assert_int_equal(n, 22);
    bool efer = false, tsc = false, kvmclock = false, steal = false;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = i + 1; j < n; j++)
            assert_int_not_equal(idx[i], idx[j]);
        efer |= idx[i] == X86_MSR_EFER;
        tsc |= idx[i] == X86_MSR_TSC;
        kvmclock |= idx[i] == 0x4b564d01; /* MSR_KVM_SYSTEM_TIME_NEW */
        steal |= idx[i] == 0x4b564d03;    /* MSR_KVM_STEAL_TIME */
    }
    assert_true(efer && tsc && kvmclock && steal);
}

static void engine_msrs(void **state)
{
    static const uint32_t engine[] = {X86_MSR_EFER,           X86_MSR_STAR,        X86_MSR_STAR + 1,
                                      X86_MSR_SFMASK,         X86_MSR_FS_BASE,     X86_MSR_GS_BASE,
                                      X86_MSR_KERNEL_GS_BASE, X86_MSR_SYSENTER_CS, X86_MSR_SYSENTER_EIP};
    static const uint32_t backend[] = {X86_MSR_TSC, X86_MSR_APIC_BASE, 0x11,  0x12, 0x4b564d00,
                                       0x4b564d01,  0xc0000103,        0x173, 0x177};
    (void)state;
    for (size_t i = 0; i < sizeof engine / sizeof engine[0]; i++)
        assert_true(soft_msr_in_engine(engine[i]));
    for (size_t i = 0; i < sizeof backend / sizeof backend[0]; i++)
        assert_false(soft_msr_in_engine(backend[i]));
}

/* ns for delta TSC ticks, as a guest's kvmclock computes them. */
static uint64_t pvclock_ns(uint64_t delta, uint32_t mul, int8_t shift)
{
    delta = shift >= 0 ? delta << shift : delta >> -shift;
    return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

static void pvclock_scale(void **state)
{
    static const uint64_t khz[] = {100000, 1000000, 1234567, 2500000, 3000000, 3999999, 5200000};
    uint32_t mul;
    int8_t shift;
    (void)state;
    soft_pvclock_scale(1000000, &mul, &shift); /* 1 GHz: exactly one ns a tick */
    assert_int_equal(mul, 0x80000000u);
    assert_int_equal(shift, 1);
    for (size_t i = 0; i < sizeof khz / sizeof khz[0]; i++) {
        soft_pvclock_scale(khz[i], &mul, &shift);
        assert_true(mul >= 0x80000000u);                     /* mul keeps its full 32 bits of precision */
        uint64_t ns = pvclock_ns(khz[i] * 1000, mul, shift); /* one second of ticks */
        assert_true(ns <= 1000000000ull && ns >= 1000000000ull - 10);
    }
}

/* KVM_SET_TSC_KHZ with KVM's answers (a host with TSC scaling, AMD's 32.32 ratio), and the scaled guest TSC. */
static void tsc_khz_set(void **state)
{
    struct soft_vcpu *v = calloc(1, sizeof(*v));
    uint64_t host = soft_tsc_khz(), h0, h1, g;
    (void)state;
    assert_non_null(v);
    v->tsc_ratio = SOFT_TSC_RATIO_ONE;
    assert_int_equal(soft_vcpu_set_tsc_khz(v, 0), 0); /* 0: the host's rate */
    assert_int_equal(v->tsc_khz, host);
    assert_true(v->tsc_ratio == SOFT_TSC_RATIO_ONE);
    assert_int_equal(soft_vcpu_set_tsc_khz(v, (uint32_t)(host + host / 10000)), 0); /* 100 ppm: within tolerance */
    assert_true(v->tsc_ratio == SOFT_TSC_RATIO_ONE);
    assert_int_equal(soft_vcpu_set_tsc_khz(v, (uint32_t)(2 * host)), 0);
    assert_true(v->tsc_ratio == 2 * SOFT_TSC_RATIO_ONE);
    assert_int_equal(v->tsc_khz, 2 * host);
    assert_int_equal(soft_vcpu_set_tsc_khz(v, (uint32_t)(300 * host > 0xffffffffu ? 0xffffffffu : 300 * host)),
                     -EINVAL); /* past 256 times the host's: refused, nothing changed */
    assert_true(v->tsc_ratio == 2 * SOFT_TSC_RATIO_ONE);
    /* The guest TSC at ratio 2 with offset 0: twice a host TSC read between two host reads around it. */
    v->tsc_offset = 0;
    h0 = soft_host_tsc();
    g = soft_guest_tsc(v);
    h1 = soft_host_tsc();
    assert_true(g >= 2 * h0 && g <= 2 * h1);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_list),
        cmocka_unit_test(engine_msrs),
        cmocka_unit_test(pvclock_scale),
        cmocka_unit_test(tsc_khz_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
