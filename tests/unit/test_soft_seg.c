/* Unit tests of the soft backend's segments (soft_seg.h): descriptors, flat segments, limit checks, KVM's view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "soft_seg.h"

/* An 8-byte descriptor from its fields, through x86.h's layout. */
static uint64_t desc(uint32_t base, uint32_t limit, unsigned type, bool s, unsigned dpl, bool db, bool g)
{
    return ((uint64_t)(limit & 0xffff) << X86_DESC_LIMIT_LO_SHIFT) |
           ((uint64_t)(base & 0xffffff) << X86_DESC_BASE_LO_SHIFT) | ((uint64_t)type << X86_DESC_TYPE_SHIFT) |
           (s ? X86_DESC_S : 0) | ((uint64_t)dpl << X86_DESC_DPL_SHIFT) | X86_DESC_P |
           ((uint64_t)((limit >> 16) & 0xf) << X86_DESC_LIMIT_HI_SHIFT) | (db ? X86_DESC_DB : 0) |
           (g ? X86_DESC_G : 0) | ((uint64_t)(base >> 24) << X86_DESC_BASE_HI_SHIFT);
}

static struct soft_seg seg_of(uint64_t d)
{
    struct soft_seg s;
    soft_seg_from_desc(d, 0x10, &s);
    return s;
}

static void descriptors(void **state)
{
    (void)state;
    struct soft_seg s = seg_of(0x00cf9a000000ffffull); /* the flat 32-bit code segment every guest uses */
    assert_int_equal(s.selector, 0x10);
    assert_true(s.base == 0);
    assert_int_equal(s.limit, 0xffffffffu);
    assert_int_equal(s.flags, 0x00c09a00u);
    s = seg_of(desc(0x12345678, 0x2abcd, X86_SEG_TYPE_DATA_RW, true, 3, true, false));
    assert_true(s.base == 0x12345678);
    assert_int_equal(s.limit, 0x2abcd); /* G clear: bytes */
    assert_int_equal((s.flags >> SOFT_SEG_DPL_SHIFT) & 3, 3);
    assert_true(s.flags & SOFT_SEG_P);
    s = seg_of(desc(0, 0xf, X86_SEG_TYPE_DATA_RW, true, 0, false, true));
    assert_int_equal(s.limit, 0xffff); /* G set: 4 KiB units, the low 12 bits all ones */
    assert_true(s.flags & SOFT_SEG_G);
}

static void flat_segments(void **state)
{
    (void)state;
    struct soft_seg flat = seg_of(desc(0, 0xfffff, X86_SEG_TYPE_DATA_RW, true, 0, true, true));
    assert_true(soft_seg_flat(&flat));
    struct soft_seg small = seg_of(desc(0, 0xffff, X86_SEG_TYPE_DATA_RW, true, 0, true, false));
    assert_false(soft_seg_flat(&small));
    struct soft_seg down = seg_of(desc(0, 0xfffff, X86_SEG_TYPE_DATA_RW | X86_SEG_TYPE_DATA_DOWN, true, 0, true, true));
    assert_false(soft_seg_flat(&down)); /* expand-down with a 4 GiB limit allows nothing */
    struct soft_seg conforming =
        seg_of(desc(0, 0xfffff, X86_SEG_TYPE_CODE_XR | X86_SEG_TYPE_CONFORMING, true, 0, true, true));
    assert_true(soft_seg_flat(&conforming)); /* type bit 2 of code is "conforming", not expand-down */
    struct soft_seg absent = small;
    absent.flags &= ~SOFT_SEG_P;
    assert_true(soft_seg_flat(&absent));
}

static void expand_up_limits(void **state)
{
    (void)state;
    struct soft_seg s = seg_of(desc(0x10000, 0xffff, X86_SEG_TYPE_DATA_RW, true, 0, true, false));
    assert_true(soft_seg_access_ok(&s, 0x10000, 4));
    assert_true(soft_seg_access_ok(&s, 0x10000 + 0xfffc, 4));
    assert_true(soft_seg_access_ok(&s, 0x10000 + 0xffff, 1));
    assert_false(soft_seg_access_ok(&s, 0x10000 + 0xfffe, 4)); /* straddles the limit */
    assert_false(soft_seg_access_ok(&s, 0x10000 + 0x10000, 1));
    assert_false(soft_seg_access_ok(&s, 0xffff, 1)); /* below the base: the offset wraps to 4 GiB */
    struct soft_seg g = seg_of(desc(0, 0x1, X86_SEG_TYPE_DATA_RW, true, 0, true, true));
    assert_true(soft_seg_access_ok(&g, 0x1fff, 1)); /* limit 1 with G: 0x1fff */
    assert_false(soft_seg_access_ok(&g, 0x1fff, 2));
}

static void expand_down_limits(void **state)
{
    (void)state;
    unsigned down = X86_SEG_TYPE_DATA_RW | X86_SEG_TYPE_DATA_DOWN;
    /* B clear: valid offsets are (limit, 0xffff] */
    struct soft_seg s16 = seg_of(desc(0, 0x0fff, down, true, 0, false, false));
    assert_false(soft_seg_access_ok(&s16, 0x0fff, 1));
    assert_false(soft_seg_access_ok(&s16, 0x0000, 1));
    assert_true(soft_seg_access_ok(&s16, 0x1000, 1));
    assert_true(soft_seg_access_ok(&s16, 0xfffe, 2));
    assert_false(soft_seg_access_ok(&s16, 0xffff, 2)); /* runs past 64 KiB */
    assert_false(soft_seg_access_ok(&s16, 0x10000, 1));
    /* B set: valid offsets are (limit, 4 GiB) */
    struct soft_seg s32 = seg_of(desc(0, 0x0fff, down, true, 0, true, false));
    assert_true(soft_seg_access_ok(&s32, 0x10000, 4));
    assert_true(soft_seg_access_ok(&s32, 0xfffffffc, 4));
    assert_false(soft_seg_access_ok(&s32, 0xfff, 4));
    /* with G the limit scales: 0x0000f -> 0xffff, so the first valid offset is 0x10000 */
    struct soft_seg sg = seg_of(desc(0, 0xf, down, true, 0, true, true));
    assert_false(soft_seg_access_ok(&sg, 0xffff, 1));
    assert_true(soft_seg_access_ok(&sg, 0x10000, 1));
}

static void kvm_segments(void **state)
{
    (void)state;
    struct kvm_segment k = {.base = 0xabc000,
                            .limit = 0xfffff,
                            .selector = 0x2b,
                            .type = 3,
                            .present = 1,
                            .dpl = 3,
                            .db = 1,
                            .s = 1,
                            .l = 0,
                            .g = 1,
                            .avl = 1};
    struct soft_seg s;
    struct kvm_segment back;
    soft_seg_from_kvm(&s, &k);
    assert_int_equal(s.flags, SOFT_SEG_TYPE(3) | SOFT_SEG_P | (3u << SOFT_SEG_DPL_SHIFT) | (1u << SOFT_SEG_B_SHIFT) |
                                  SOFT_SEG_S | SOFT_SEG_G | SOFT_SEG_AVL);
    soft_seg_to_kvm(&s, &back);
    assert_true(back.base == k.base && back.limit == k.limit && back.selector == k.selector);
    assert_true(back.type == 3 && back.present && back.dpl == 3 && back.db && back.s && !back.l && back.g && back.avl);
    assert_false(back.unusable);
    k.unusable = 1; /* an unusable segment keeps base, limit and selector, and has no flags */
    soft_seg_from_kvm(&s, &k);
    assert_int_equal(s.flags, 0);
    soft_seg_to_kvm(&s, &back);
    assert_true(back.unusable && !back.present);
    struct kvm_segment code64 = {.type = 11, .present = 1, .s = 1, .l = 1};
    soft_seg_from_kvm(&s, &code64);
    assert_int_equal((s.flags >> SOFT_SEG_L_SHIFT) & 1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptors),        cmocka_unit_test(flat_segments), cmocka_unit_test(expand_up_limits),
        cmocka_unit_test(expand_down_limits), cmocka_unit_test(kvm_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
