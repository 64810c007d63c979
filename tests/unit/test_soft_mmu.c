/* Unit tests of the soft backend's page walker (soft_mmu.h): every paging mode, page sizes, faults and error codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "soft_mmu.h"
#include "soft_priv.h"
#include "x86.h"

#define RAM_SIZE (4u << 20)
#define P        X86_PTE_P
#define RW       X86_PTE_RW
#define US       X86_PTE_US
#define PS       X86_PTE_PS

static uint8_t *ram;
static struct soft_vm vm;

static int setup(void **state)
{
    (void)state;
    ram = aligned_alloc(4096, RAM_SIZE);
    if (!ram)
        return -1;
    memset(ram, 0, RAM_SIZE);
    memset(&vm, 0, sizeof vm);
    vm.slots[0] = (struct soft_slot){.used = true, .gpa = 0, .size = RAM_SIZE, .hva = ram};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram);
    return 0;
}

static void pte64(uint64_t table, unsigned idx, uint64_t e)
{
    memcpy(ram + table + idx * 8, &e, 8);
}

static void pte32(uint64_t table, unsigned idx, uint32_t e)
{
    memcpy(ram + table + idx * 4, &e, 4);
}

static struct soft_walk walk(const struct soft_paging *pg, uint64_t lin, bool write, bool user)
{
    return soft_mmu_walk(&vm, pg, lin, write, user);
}

static const struct soft_paging lm = {.cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP,
                                      .cr3 = 0x1000,
                                      .cr4 = X86_CR4_PAE,
                                      .efer = X86_EFER_LME | X86_EFER_LMA};

/* PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000, for gva with indices 1, 2, 3, 4. */
#define GVA4 ((1ull << 39) | (2ull << 30) | (3ull << 21) | (4ull << 12))

static void four_level_tables(uint64_t pt_flags)
{
    pte64(0x1000, 1, 0x2000 | P | RW | US);
    pte64(0x2000, 2, 0x3000 | P | RW | US);
    pte64(0x3000, 3, 0x4000 | P | RW | US);
    pte64(0x4000, 4, 0x200000 | pt_flags);
}

static void no_paging(void **state)
{
    struct soft_paging pe = {.cr0 = X86_CR0_PE}, lma = {.cr0 = X86_CR0_PE, .efer = X86_EFER_LMA};
    (void)state;
    struct soft_walk w = walk(&pe, 0x123456789ull, true, true);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == 0x23456789ull); /* a 32-bit linear address */
    w = walk(&lma, 0x123456789ull, false, false);
    assert_true(w.gpa == 0x123456789ull);
}

static void four_level_4k(void **state)
{
    (void)state;
    four_level_tables(P | RW | US);
    struct soft_walk w = walk(&lm, GVA4 | 0x123, true, true);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == 0x200123);
    w = walk(&lm, GVA4 + 0x1000, false, false); /* PT entry 5: not present */
    assert_true(w.fault);
    assert_int_equal(w.pferr, 0);
    w = walk(&lm, GVA4 + 0x1000, true, true);
    assert_int_equal(w.pferr, X86_PF_ERR_WRITE | X86_PF_ERR_USER);
    w = walk(&lm, 0x0, false, false); /* PML4 entry 0: not present */
    assert_true(w.fault);
    assert_int_equal(w.pferr, 0);
}

static void four_level_large_pages(void **state)
{
    (void)state;
    /* 2 MiB: a PD entry with PS; the PAT bit (12) and bits 20:13 are not part of the address */
    pte64(0x1000, 0, 0x2000 | P | RW);
    pte64(0x2000, 0, 0x3000 | P | RW);
    pte64(0x3000, 5, 0x200000 | (1ull << 12) | (1ull << 15) | P | RW | PS);
    struct soft_walk w = walk(&lm, (5ull << 21) | 0x1abcde, false, false);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == (0x200000 | 0x1abcde));
    /* 1 GiB: a PDPT entry with PS; the frame need not be RAM, only the tables must */
    pte64(0x2000, 3, 0x40000000 | P | RW | PS);
    w = walk(&lm, (3ull << 30) | 0x12345678, true, false);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == (0x40000000ull | 0x12345678));
    /* PS in a PML4 entry means nothing: the walk goes on to a PDPT */
    pte64(0x1000, 2, 0x5000 | P | RW | PS);
    pte64(0x5000, 0, 0x80000000ull | P | RW | PS);
    w = walk(&lm, (2ull << 39) | 0x42, false, false);
    assert_true(w.gpa == (0x80000000ull | 0x42));
}

static void user_supervisor_and_write_faults(void **state)
{
    (void)state;
    /* read-only, supervisor-only at the PT level */
    four_level_tables(P);
    struct soft_walk w = walk(&lm, GVA4, false, false);
    assert_false(w.fault);
    w = walk(&lm, GVA4, false, true);
    assert_true(w.fault);
    assert_int_equal(w.pferr, X86_PF_ERR_PRESENT | X86_PF_ERR_USER);
    w = walk(&lm, GVA4, true, true);
    assert_int_equal(w.pferr, X86_PF_ERR_PRESENT | X86_PF_ERR_WRITE | X86_PF_ERR_USER);
    /* a supervisor write to a read-only page faults only with CR0.WP */
    w = walk(&lm, GVA4, true, false);
    assert_true(w.fault);
    assert_int_equal(w.pferr, X86_PF_ERR_PRESENT | X86_PF_ERR_WRITE);
    struct soft_paging nowp = lm;
    nowp.cr0 &= ~(uint64_t)X86_CR0_WP;
    w = walk(&nowp, GVA4, true, false);
    assert_false(w.fault);
    assert_true(w.gpa == 0x200000);
    /* rights are the AND over all levels: U/S clear in the PD entry alone denies the user */
    four_level_tables(P | RW | US);
    pte64(0x3000, 3, 0x4000 | P | RW);
    w = walk(&lm, GVA4, false, true);
    assert_true(w.fault);
    assert_int_equal(w.pferr, X86_PF_ERR_PRESENT | X86_PF_ERR_USER);
    pte64(0x3000, 3, 0x4000 | P | RW | US);
}

static void reserved_bits_are_not_checked(void **state)
{
    (void)state;
    /* NX and bits 62:52 do not reach the address and raise no fault (the walker reports no PFERR_RSVD) */
    four_level_tables(P | RW | US | X86_PTE_NX | (0x7ffull << 52));
    struct soft_walk w = walk(&lm, GVA4 | 0x10, true, true);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == 0x200010);
}

static void tables_outside_ram(void **state)
{
    struct soft_paging far = lm;
    (void)state;
    far.cr3 = 0x10000000; /* PML4 beyond the slot */
    struct soft_walk w = walk(&far, GVA4, false, false);
    assert_true(w.bad);
    assert_false(w.fault);
    pte64(0x1000, 1, 0x20000000 | P | RW); /* PDPT beyond the slot */
    w = walk(&lm, GVA4, false, false);
    assert_true(w.bad);
}

static void legacy_32bit(void **state)
{
    struct soft_paging pg = {.cr0 = X86_CR0_PE | X86_CR0_PG, .cr3 = 0x8000};
    (void)state;
    /* gva 0x00c03456: PD index 3, PT index 3 */
    pte32(0x8000, 3, 0x9000 | P | RW | US);
    pte32(0x9000, 3, 0x300000 | P | RW | US);
    struct soft_walk w = walk(&pg, 0x00c03456, false, true);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == 0x300456);
    w = walk(&pg, 0x100000000ull | 0x00c03456, false, true); /* the linear address is 32 bits */
    assert_true(w.gpa == 0x300456);
    w = walk(&pg, 0x00c04000, true, false);
    assert_true(w.fault);
    assert_int_equal(w.pferr, X86_PF_ERR_WRITE);
    /* a 4 MiB page needs CR4.PSE; without it PS is ignored and the entry points at a page table */
    pte32(0x8000, 5, 0x01400000 | P | RW | PS);
    pg.cr4 = X86_CR4_PSE;
    w = walk(&pg, (5u << 22) | 0x2abcde, false, false);
    assert_false(w.fault);
    assert_true(w.gpa == (0x01400000 | 0x2abcde));
    pte32(0x8000, 6, 0xa000 | P | RW | PS);
    pte32(0xa000, 1, 0x301000 | P);
    pg.cr4 = 0;
    w = walk(&pg, (6u << 22) | 0x1234, false, false);
    assert_true(w.gpa == 0x301234);
}

static void pae(void **state)
{
    /* CR3 points at a 32-byte-aligned PDPT of 4 entries; then 2-level 8-byte tables */
    struct soft_paging pg = {.cr0 = X86_CR0_PE | X86_CR0_PG, .cr3 = 0xb020, .cr4 = X86_CR4_PAE};
    (void)state;
    pte64(0xb020, 1, 0xc000 | P);
    pte64(0xc000, 2, 0xd000 | P | RW | US);
    pte64(0xd000, 3, 0x310000 | P | RW | US);
    struct soft_walk w = walk(&pg, (1u << 30) | (2u << 21) | (3u << 12) | 0x99, true, true);
    assert_false(w.fault || w.bad);
    assert_true(w.gpa == 0x310099);
    pte64(0xc000, 4, 0x600000 | P | RW | PS); /* 2 MiB */
    w = walk(&pg, (1u << 30) | (4u << 21) | 0x54321, false, false);
    assert_true(w.gpa == (0x600000 | 0x54321));
    w = walk(&pg, (2u << 30) | 0x1000, true, false); /* PDPT entry 2: not present */
    assert_true(w.fault);
    assert_int_equal(w.pferr, X86_PF_ERR_WRITE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(four_level_4k, setup, teardown),
        cmocka_unit_test_setup_teardown(four_level_large_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(user_supervisor_and_write_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(reserved_bits_are_not_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(tables_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(legacy_32bit, setup, teardown),
        cmocka_unit_test_setup_teardown(pae, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
