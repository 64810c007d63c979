/* Unit tests of the soft backend's SYSCALL transition (soft_syscall.h), against the SDM's and the APM's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "soft_syscall.h"

#define STAR   0x0023001000000000ull /* Linux's: kernel CS 0x10, user base 0x23 */
#define LSTAR  0xffffffff81a00080ull
#define CSTAR  0xffffffff81a01c40ull
#define SFMASK 0x257fd5ull /* Linux's: CF PF AF ZF SF TF IF DF OF IOPL NT RF AC ID */

static struct soft_syscall_in long_mode(uint64_t rflags)
{
    return (struct soft_syscall_in){.efer = X86_EFER_SCE | X86_EFER_LMA,
                                    .star = STAR,
                                    .lstar = LSTAR,
                                    .cstar = CSTAR,
                                    .sfmask = SFMASK,
                                    .rflags = rflags,
                                    .next_rip = 0x40432d,
                                    .pe = true,
                                    .lma = true,
                                    .cs64 = true};
}

/* The segment cache of a GDT descriptor, less the limit and base bits the descriptor's high dword also holds. */
static uint32_t attrs_of(uint64_t desc)
{
    struct soft_seg s;
    soft_seg_from_desc(desc, 0, &s);
    return s.flags & ~0xff0f00ffu;
}

static void undefined(void **state)
{
    (void)state;
    struct soft_syscall_out out;
    struct soft_syscall_in in = long_mode(0x202);
    in.efer &= ~(uint64_t)X86_EFER_SCE;
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.vector, X86_VEC_UD);
    in = long_mode(0x202);
    in.pe = in.lma = in.cs64 = false;
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.vector, X86_VEC_UD); /* real mode */
    in.pe = true;
    in.rflags |= X86_RFLAGS_VM;
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.vector, X86_VEC_UD); /* virtual-8086 mode */
}

static void long_mode_64(void **state)
{
    (void)state;
    struct soft_syscall_out out;
    uint64_t user = 0x246 | X86_RFLAGS_RF | X86_RFLAGS_AC;
    struct soft_syscall_in in = long_mode(user);
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.vector, -1);
    assert_true(out.rip == LSTAR);
    assert_true(out.rcx == 0x40432d);
    assert_true(out.set_r11);
    assert_true(out.r11 == (user & ~(uint64_t)X86_RFLAGS_RF));
    assert_true(out.rflags == X86_RFLAGS_FIXED); /* Linux's SFMASK leaves only the fixed bit */
    assert_int_equal(out.cs.selector, 0x10);
    assert_int_equal(out.ss.selector, 0x18);
    assert_true(out.cs.base == 0 && out.ss.base == 0);
    assert_int_equal(out.cs.limit, 0xffffffffu);
    /* The caches match the flat descriptors Linux's GDT holds for __KERNEL_CS and __KERNEL_DS (accessed). */
    assert_int_equal(out.cs.flags, attrs_of(0x00af9b000000ffffull));
    assert_int_equal(out.ss.flags, attrs_of(0x00cf93000000ffffull));
    assert_int_equal((out.cs.flags >> SOFT_SEG_DPL_SHIFT) & 3, 0);

    in.sfmask = X86_RFLAGS_IF | X86_RFLAGS_TF;
    in.rflags = 0x8d7 | X86_RFLAGS_IF;
    soft_syscall_compute(&in, &out);
    assert_true(out.rflags == 0x8d7);
    assert_true(out.r11 == (0x8d7 | X86_RFLAGS_IF));

    in.star = 0x002b001b00000000ull; /* an RPL in STAR[47:32] is dropped */
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.cs.selector, 0x18);
    assert_int_equal(out.ss.selector, 0x20);
}

static void compatibility_mode(void **state)
{
    (void)state;
    struct soft_syscall_out out;
    struct soft_syscall_in in = long_mode(0x202);
    in.cs64 = false;
    in.next_rip = 0x8048123;
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.vector, -1);
    assert_true(out.rip == CSTAR);
    assert_true(out.rcx == 0x8048123);
    assert_true(out.cs.flags & (1u << SOFT_SEG_L_SHIFT)); /* into 64-bit code all the same */
}

static void legacy_mode(void **state)
{
    (void)state;
    struct soft_syscall_out out;
    struct soft_syscall_in in = long_mode(0x246 | X86_RFLAGS_RF | X86_RFLAGS_DF);
    in.efer = X86_EFER_SCE;
    in.lma = in.cs64 = false;
    in.star = 0x0023001012345678ull;
    in.next_rip = 0x1000;
    soft_syscall_compute(&in, &out);
    assert_int_equal(out.vector, -1);
    assert_true(out.rip == 0x12345678); /* EIP = STAR[31:0] */
    assert_true(out.rcx == 0x1000);
    assert_false(out.set_r11);
    assert_true(out.rflags == (0x46 | X86_RFLAGS_DF)); /* IF, RF and VM clear; SFMASK is long mode's */
    assert_int_equal(out.cs.flags, attrs_of(0x00cf9b000000ffffull));
    assert_int_equal(out.ss.selector, 0x18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(undefined),
        cmocka_unit_test(long_mode_64),
        cmocka_unit_test(compatibility_mode),
        cmocka_unit_test(legacy_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
