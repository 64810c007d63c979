/* Unit tests of the soft backend's exception rules (soft_event.h): error codes, double faults. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_codes),
        cmocka_unit_test(double_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
