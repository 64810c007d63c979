/* Unit tests of the soft backend's CPUID table (soft_cpuid.h): lookups, the guest's view, the supported table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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
    assert_int_equal(r[2], (1u << 31) | (1u << 21)); /* the hypervisor and x2APIC bits */
    memset(r, 0, sizeof r);
    soft_cpuid_supported_fixup(0x80000001, r);
    assert_int_equal(r[3], 1u << 29); /* long mode */
    memset(r, 0, sizeof r);
    soft_cpuid_supported_fixup(7, r);
    assert_true(r[0] == 0 && r[1] == 0 && r[2] == 0 && r[3] == 0);
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
    /* CLOCKSOURCE, CLOCKSOURCE2, STEAL_TIME, CLOCKSOURCE_STABLE_BIT */
    assert_int_equal(feat->eax, (1u << 0) | (1u << 3) | (1u << 5) | (1u << 24));
    const struct kvm_cpuid_entry2 *l1 = soft_cpuid_find(tab, n, 1, 0);
    assert_non_null(l1);
    assert_true(l1->ecx & (1u << 31));
    const struct kvm_cpuid_entry2 *ext = soft_cpuid_find(tab, n, 0x80000001, 0);
    assert_non_null(ext);
    assert_true(ext->edx & (1u << 29));
    for (int i = 0; i < n; i++)
        assert_int_equal(!!(tab[i].flags & SIG), tab[i].function == 4 || tab[i].function == 7);
    assert_int_equal(soft_supported_cpuid(tab, 2), 2); /* never more than asked for */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup),
        cmocka_unit_test(guest_view),
        cmocka_unit_test(supported_fixups),
        cmocka_unit_test(supported_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
