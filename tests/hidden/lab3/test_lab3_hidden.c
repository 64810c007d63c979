/* Lab 3 hidden tests: bad mappings refused, 1 GiB pages in the walker, guest-made mappings, exact exit dumps of RAM
 * holes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "lab_parts.h"

static struct mvm_vm *vm_small(void)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;

    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    return vm;
}

static void page_map_rejects(void **state)
{
    struct mvm_vm *vm = vm_small();
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    struct lab3_pt_pool tiny = {.base_gpa = MVM_BOOT_PT_POOL_GPA + 0x8000, .size = 2 * X86_PAGE_SIZE};
    struct lab3_pt_pool outside = {.base_gpa = 0x10000000, .size = MVM_BOOT_PT_POOL_SIZE};
    struct {
        const char *what;
        struct lab3_pt_pool *pool;
        uint64_t gva, gpa, size;
        int want;
    } cases[] = {
        {"gva not 4 KiB aligned", &pool, 0x5008, 0x5000, X86_PAGE_SIZE, -EINVAL},
        {"gpa not 2 MiB aligned", &pool, 0x200000, 0x201000, X86_LARGE_PAGE_SIZE, -EINVAL},
        {"page size 8 KiB", &pool, 0x2000, 0x2000, 0x2000, -EINVAL},
        {"non-canonical gva", &pool, 0x0000800000000000ull, 0, X86_PAGE_SIZE, -EINVAL},
        {"the first mapping", &pool, 0x3000, 0x3000, X86_PAGE_SIZE, 0},
        {"the same page again", &pool, 0x3000, 0x4000, X86_PAGE_SIZE, -EEXIST},
        {"a 4 KiB page inside a 2 MiB one", &pool, 0x0, 0x0, X86_PAGE_SIZE, 0},
        {"a 2 MiB page over an existing PT", &pool, 0x0, 0x0, X86_LARGE_PAGE_SIZE, -EEXIST},
        {"a pool of 2 pages for 4 tables", &tiny, 0x1000, 0x1000, X86_PAGE_SIZE, -ENOSPC},
        {"a pool outside guest RAM", &outside, 0x1000, 0x1000, X86_PAGE_SIZE, -EFAULT},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = lab3_page_map(vm, cases[i].pool, cases[i].gva, cases[i].gpa, cases[i].size, X86_PTE_RW);

        if (rc != cases[i].want)
            fail_msg("lab3_page_map, %s (gva 0x%llx gpa 0x%llx size 0x%llx): expected %d, got %d (%s)", cases[i].what,
                     (unsigned long long)cases[i].gva, (unsigned long long)cases[i].gpa,
                     (unsigned long long)cases[i].size, cases[i].want, rc, rc ? mvm_error() : "no error");
    }
    vm_destroy(vm);
}

/* The walker meets a PDPT entry with PS: a 1 GiB page, which lab3_page_map never makes but a guest may. */
static void walker_1g_page(void **state)
{
    struct mvm_vm *vm = vm_small();
    uint64_t pml4 = 0x10000, pdpt = 0x11000, e, gpa = 0;
    int rc;

    (void)state;
    e = pdpt | X86_PTE_P | X86_PTE_RW;
    assert_int_equal(vm_write(vm, pml4, &e, 8), 0);
    e = 0xc0000000ull | X86_PTE_P | X86_PTE_RW | X86_PTE_PS; /* PDPT entry 2: gva 2 GiB -> gpa 3 GiB */
    assert_int_equal(vm_write(vm, pdpt + 2 * 8, &e, 8), 0);
    rc = lab3_gva_to_gpa(vm, pml4, 0x80000000ull + 0x2345678, &gpa);
    if (rc != 0 || gpa != 0xc2345678ull)
        fail_msg("a 1 GiB page (PDPT entry with PS): gva 0x82345678 must map to gpa 0xc2345678; got rc %d gpa 0x%llx "
                 "(%s)",
                 rc, (unsigned long long)gpa, rc ? mvm_error() : "the offset keeps 30 bits");
    vm_destroy(vm);
}

static void pagefault_guest_handles(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab3/pagefault", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "#PF cr2=0x40000000 error=0x0") || !strstr(run.console, "3 page faults"))
        fail_msg("lab3/pagefault: expected its handler to map 3 pages on demand:\n%s", run.console);
    /* The ucall struct sat in a page the guest mapped itself: the walker follows the guest's tables, not ours. */
    if (!strstr(run.console, "printed from a page the guest mapped\n"))
        fail_msg("the ucall sent from a guest-mapped page was not printed:\n%s", run.console);
    if (run.res.by_reason[KVM_EXIT_MMIO] || run.res.exits != run.res.by_reason[KVM_EXIT_IO])
        fail_msg("guest page faults are handled inside the guest: only IO exits expected, got:\n%s", run.exits);
    harness_free(&run);
}

/* Without a slot or a handler, the read is one MMIO exit that reads as all ones, as on a PC bus. */
static void mmio_without_slot(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab3/mmio", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (harness_count_exits(&run, "MMIO read gpa=0x0000000000400000 len=4 data=ffffffff") != 1 ||
        run.res.by_reason[KVM_EXIT_MMIO] != 1)
        fail_msg("expected exactly one 'MMIO read gpa=0x0000000000400000 len=4 data=ffffffff', exits:\n%s", run.exits);
    if (!strstr(run.console, "no memory slot"))
        fail_msg("lab3/mmio should have seen all ones:\n%s", run.console);
    harness_free(&run);
}

/*
 * hello64's exits, exactly: serial OUTs matching the console, the ucall of
 * the higher-half print (its 32-bit address has the top bit set: the VMM
 * sign-extends it to 0xffffffff8...), more serial OUTs, GUEST_DONE's ucall.
 */
static void hello64_exit_dump_exact(void **state)
{
    struct guest_run run;
    const char *line, *c;
    int ucalls = 0, lines = 0;
    unsigned byte, addr[4];

    (void)state;
    harness_run_guest_mode("lab3/hello64", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    c = run.console;
    for (line = run.exits; line && *line; lines++) {
        const char *nl = strchr(line, '\n');

        if (sscanf(line, "IO out port=0x03f8 size=1 count=1 data=%2x", &byte) == 1) {
            if (*c != (char)byte)
                fail_msg("exit %d wrote 0x%02x to the serial port, but the console has '%c' there", lines + 1, byte,
                         *c ? *c : '?');
            c++;
        } else if (sscanf(line, "IO out port=0x0500 size=4 count=1 data=%2x%2x%2x%2x", &addr[0], &addr[1], &addr[2],
                          &addr[3]) == 4) {
            if (++ucalls == 1) {
                static const char print[] = "printed from a higher-half address\n";

                if (addr[3] != 0x80)
                    fail_msg("the first ucall's address should be the higher-half alias (0x80xxxxxx), got %s", line);
                if (strncmp(c, print, strlen(print)))
                    fail_msg("the higher-half print should come here in the console: \"%s\"", c);
                c += strlen(print);
            }
        } else {
            fail_msg("exit %d is unexpected: %.60s", lines + 1, line);
        }
        line = nl ? nl + 1 : NULL;
    }
    if (ucalls != 2 || *c)
        fail_msg("expected 2 ucalls (the print, GUEST_DONE) and every console byte from an exit; got %d ucalls, "
                 "left over: \"%s\"",
                 ucalls, c);
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_map_rejects),        cmocka_unit_test(walker_1g_page),
        cmocka_unit_test(pagefault_guest_handles), cmocka_unit_test(mmio_without_slot),
        cmocka_unit_test(hello64_exit_dump_exact),
    };

    return harness_main(argc, argv, "lab3_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
