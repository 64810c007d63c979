/* Unit tests of the soft backend's exception rules (soft_event.h): error codes, double faults, KVM's own #GPs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>

#include "soft_event.h"
#include "x86.h"

static void error_codes(void **state)
{
    (void)state;
    for (int v = 0; v < 32; v++) {
        bool want = v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
        assert_int_equal(soft_vector_has_error(v), want);
    }
}

static void double_faults(void **state)
{
    (void)state;
    assert_true(soft_event_double_fault(X86_VEC_GP, X86_VEC_GP));
    assert_true(soft_event_double_fault(X86_VEC_DE, X86_VEC_TS));
    assert_true(soft_event_double_fault(X86_VEC_NP, X86_VEC_SS));
    assert_true(soft_event_double_fault(X86_VEC_PF, X86_VEC_PF));
    assert_true(soft_event_double_fault(X86_VEC_PF, X86_VEC_GP));
    assert_false(soft_event_double_fault(X86_VEC_GP, X86_VEC_PF)); /* contributory then #PF: the #PF is delivered */
    assert_false(soft_event_double_fault(X86_VEC_UD, X86_VEC_GP)); /* a benign first event */
    assert_false(soft_event_double_fault(X86_VEC_GP, X86_VEC_UD));
    assert_false(soft_event_double_fault(X86_VEC_PF, X86_VEC_UD));
    assert_false(soft_event_double_fault(32, X86_VEC_GP)); /* an external interrupt */
}

/* KVM's MSR list: the ones guests use are known; anything else is #GP. */
static void msrs_kvm_knows(void **state)
{
    (void)state;
    assert_true(soft_msr_kvm_knows(X86_MSR_EFER));
    assert_true(soft_msr_kvm_knows(X86_MSR_TSC));
    assert_true(soft_msr_kvm_knows(0x277)); /* PAT */
    assert_true(soft_msr_kvm_knows(0x4b564d01));
    assert_false(soft_msr_kvm_knows(0x1234));
    assert_false(soft_msr_kvm_knows(0xdeadbeef));
    assert_false(soft_msr_kvm_knows(0xc0000085));
}

/* CR4: the architectural bits KVM allows minus the features the CPUID table lacks. */
static void cr4_reserved_bits(void **state)
{
    (void)state;
    uint64_t none = soft_cr4_reserved(NULL, 0);
    assert_true(none & (1u << 15));
    assert_true(none & (1ull << 32));
    assert_true(none & X86_CR4_OSXSAVE); /* no XSAVE in an empty table */
    assert_true(none & (1u << 13));      /* no VMX: VMXE */
    assert_true(none & (1u << 14));      /* SMXE: KVM never allows it */
    assert_false(none & (X86_CR4_PAE | X86_CR4_PSE | X86_CR4_OSFXSR | (1u << 10)));
    struct kvm_cpuid_entry2 t[2] = {{.function = 1, .ecx = 1u << 26}, {.function = 7, .index = 0, .ebx = 1u << 7}};
    uint64_t some = soft_cr4_reserved(t, 2);
    assert_false(some & X86_CR4_OSXSAVE);
    assert_false(some & (1u << 20)); /* SMEP */
    assert_true(some & (1u << 21));  /* no SMAP */
    assert_true(some & (1u << 15));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_codes),
        cmocka_unit_test(double_faults),
        cmocka_unit_test(msrs_kvm_knows),
        cmocka_unit_test(cr4_reserved_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
