/* Lab 3 visible tests: page tables (4 KiB, 2 MiB, higher half), the GVA -> GPA walker, long mode, an MMIO exit from a
 * RAM hole. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "lab_parts.h"

/* A VM with 2 MiB of RAM and no vCPU: enough to build and walk page tables. */
static struct mvm_vm *vm_small(void)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;

    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    return vm;
}

/*
 * The test's own walk, independent of lab3_gva_to_gpa: follows present
 * entries down from cr3. Returns the leaf level (1: 4 KiB, 2: 2 MiB) and sets
 * *gpa and *leaf_entry, or 0 with *missing set to the level that was not present.
 */
static int walk_ref(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t *gpa, uint64_t *leaf_entry, int *missing)
{
    uint64_t table = cr3 & X86_PTE_ADDR_MASK, e;

    for (int level = 4; level >= 1; level--) {
        uint64_t mask = (1ull << (12 + 9 * (level - 1))) - 1;

        if (vm_read(vm, table + X86_PT_INDEX(gva, level) * 8, &e, 8) < 0 || !(e & X86_PTE_P)) {
            *missing = level;
            return 0;
        }
        if (level == 1 || (level == 2 && (e & X86_PTE_PS))) {
            *gpa = (e & X86_PTE_ADDR_MASK & ~mask) | (gva & mask);
            *leaf_entry = e;
            return level;
        }
        table = e & X86_PTE_ADDR_MASK;
    }
    return 0;
}

static const char *const level_names[] = {"", "PT", "PD", "PDPT", "PML4"};

static void expect_mapping(struct mvm_vm *vm, uint64_t cr3, uint64_t gva, uint64_t want_gpa, int want_leaf)
{
    uint64_t gpa = 0, e = 0;
    int missing = 0, leaf = walk_ref(vm, cr3, gva, &gpa, &e, &missing);

    if (!leaf)
        fail_msg("gva 0x%llx should map to gpa 0x%llx, but its %s entry is not present", (unsigned long long)gva,
                 (unsigned long long)want_gpa, level_names[missing]);
    if (leaf != want_leaf)
        fail_msg("gva 0x%llx: expected a %s page (leaf in the %s), got a %s page (entry 0x%llx%s)",
                 (unsigned long long)gva, want_leaf == 1 ? "4 KiB" : "2 MiB", level_names[want_leaf],
                 leaf == 1 ? "4 KiB" : "2 MiB", (unsigned long long)e, leaf == 2 ? ": PS set" : "");
    if (gpa != want_gpa)
        fail_msg("gva 0x%llx maps to gpa 0x%llx, expected 0x%llx", (unsigned long long)gva, (unsigned long long)gpa,
                 (unsigned long long)want_gpa);
    if (!(e & X86_PTE_RW))
        fail_msg("gva 0x%llx: leaf entry 0x%llx is not writable (RW, bit 1)", (unsigned long long)gva,
                 (unsigned long long)e);
}

static void expect_unmapped(struct mvm_vm *vm, uint64_t cr3, uint64_t gva)
{
    uint64_t gpa = 0, e = 0;
    int missing = 0;

    if (walk_ref(vm, cr3, gva, &gpa, &e, &missing))
        fail_msg("gva 0x%llx must not be mapped, but maps to gpa 0x%llx", (unsigned long long)gva,
                 (unsigned long long)gpa);
}

static void page_map_4k_and_2m(void **state)
{
    struct mvm_vm *vm = vm_small();
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    int rc;

    (void)state;
    rc = lab3_page_map(vm, &pool, 0x5000, 0x9000, X86_PAGE_SIZE, X86_PTE_RW);
    if (rc != 0)
        fail_msg("lab3_page_map(gva 0x5000 -> gpa 0x9000, 4 KiB) failed: %s", mvm_error());
    if (pool.pml4_gpa != MVM_BOOT_PT_POOL_GPA || pool.used != 4 * X86_PAGE_SIZE)
        fail_msg("one 4 KiB mapping into empty tables takes 4 pages from the pool (PML4, PDPT, PD, PT) and the "
                 "first is the PML4; pool.used = 0x%llx, pool.pml4_gpa = 0x%llx",
                 (unsigned long long)pool.used, (unsigned long long)pool.pml4_gpa);
    rc = lab3_page_map(vm, &pool, 0x40200000, 0x600000, X86_LARGE_PAGE_SIZE, X86_PTE_RW);
    if (rc != 0)
        fail_msg("lab3_page_map(gva 0x40200000 -> gpa 0x600000, 2 MiB) failed: %s", mvm_error());
    if (pool.used != 5 * X86_PAGE_SIZE)
        fail_msg("a 2 MiB page under a new PDPT entry needs 1 more page (the PD that PDPT entry 1 points at; the "
                 "PDE itself is the leaf); pool.used = 0x%llx",
                 (unsigned long long)pool.used);
    expect_mapping(vm, pool.pml4_gpa, 0x5abc, 0x9abc, 1);
    expect_mapping(vm, pool.pml4_gpa, 0x40212345, 0x612345, 2);
    expect_unmapped(vm, pool.pml4_gpa, 0x6000);
    expect_unmapped(vm, pool.pml4_gpa, 0x40000000);
    vm_destroy(vm);
}

static void tables_identity_and_higher_half(void **state)
{
    struct mvm_vm *vm = vm_small();
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    uint64_t cr3 = 0;

    (void)state;
    if (lab3_page_tables_build(vm, &pool, &cr3) != 0)
        fail_msg("lab3_page_tables_build failed: %s", mvm_error());
    assert_int_equal(cr3, pool.pml4_gpa);
    expect_unmapped(vm, cr3, 0);                /* page 0: NULL faults */
    expect_mapping(vm, cr3, 0x1000, 0x1000, 1); /* the image */
    expect_mapping(vm, cr3, 0x1fffff, 0x1fffff, 1);
    expect_mapping(vm, cr3, 0x400000, 0x400000, 2); /* beyond RAM, still mapped */
    expect_mapping(vm, cr3, 0x3fffffff, 0x3fffffff, 2);
    expect_unmapped(vm, cr3, 0x40000000);
    expect_mapping(vm, cr3, MVM_HIGHER_HALF_GVA + 0x1234, 0x1234, 2);
    expect_mapping(vm, cr3, MVM_HIGHER_HALF_GVA + 0x3fffffff, 0x3fffffff, 2);
    expect_unmapped(vm, cr3, MVM_HIGHER_HALF_GVA + 0x40000000);
    vm_destroy(vm);
}

/*
 * Tables written by the test itself, so the walker is tested on its own:
 * gva 0x5000 -> gpa 0x9000 (4 KiB), gva 0x400000 -> gpa 0x600000 (2 MiB),
 * gva 0xffffffff80000000 -> gpa 0 (2 MiB, PML4 entry 511, PDPT entry 510).
 */
static uint64_t tables_by_hand(struct mvm_vm *vm)
{
    const uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000, hpdpt = 0x14000, hpd = 0x15000;
    const uint64_t up = X86_PTE_P | X86_PTE_RW, big = up | X86_PTE_PS;
    const struct {
        uint64_t gpa, value;
    } entries[] = {
        {pml4 + 0 * 8, pdpt | up},   {pdpt + 0 * 8, pd | up},      {pd + 0 * 8, pt | up},
        {pt + 5 * 8, 0x9000 | up},   {pd + 2 * 8, 0x600000 | big}, {pml4 + 511 * 8, hpdpt | up},
        {hpdpt + 510 * 8, hpd | up}, {hpd + 0 * 8, 0 | big},
    };

    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        assert_int_equal(vm_write(vm, entries[i].gpa, &entries[i].value, 8), 0);
    return pml4;
}

static void walker_translates(void **state)
{
    static const struct {
        uint64_t gva, gpa;
    } cases[] = {
        {0x5000, 0x9000},
        {0x5abc, 0x9abc},
        {0x5fff, 0x9fff}, /* 4 KiB: 12 bits of offset */
        {0x400000, 0x600000},
        {0x5fffff, 0x7fffff},
        {0x412345, 0x612345},                   /* 2 MiB: 21 bits */
        {MVM_HIGHER_HALF_GVA + 0x1234, 0x1234}, /* the top of the address space */
    };
    static const uint64_t unmapped[] = {0x4000, 0x6000, 0x200000, 0x40000000, 0x8000000000ull};
    struct mvm_vm *vm = vm_small();
    uint64_t cr3 = tables_by_hand(vm), gpa;
    int rc;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gpa = ~0ull;
        rc = lab3_gva_to_gpa(vm, cr3, cases[i].gva, &gpa);
        if (rc != 0 || gpa != cases[i].gpa)
            fail_msg("lab3_gva_to_gpa(gva 0x%llx): expected gpa 0x%llx, got rc %d gpa 0x%llx (%s)",
                     (unsigned long long)cases[i].gva, (unsigned long long)cases[i].gpa, rc, (unsigned long long)gpa,
                     rc ? mvm_error() : "wrong address");
    }
    for (size_t i = 0; i < sizeof(unmapped) / sizeof(unmapped[0]); i++) {
        rc = lab3_gva_to_gpa(vm, cr3, unmapped[i], &gpa);
        if (rc != -EFAULT)
            fail_msg("lab3_gva_to_gpa(0x%llx), not mapped: expected -EFAULT, got %d", (unsigned long long)unmapped[i],
                     rc);
    }
    rc = lab3_gva_to_gpa(vm, cr3, 0x0000800000000000ull, &gpa);
    if (rc != -EINVAL)
        fail_msg("lab3_gva_to_gpa(0x0000800000000000), not canonical (bits 63:47 differ): expected -EINVAL, got %d",
                 rc);
    vm_destroy(vm);
}

static void setup_long_sregs(void **state)
{
    struct mvm_vm *vm = vm_small();
    struct mvm_vcpu *vcpu;
    struct kvm_sregs s;
    struct kvm_regs r;
    uint64_t cr3 = 0;

    (void)state;
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    cr3 = tables_by_hand(vm);
    if (lab3_vcpu_setup_long(vcpu, 0x1000, cr3) != 0)
        fail_msg("lab3_vcpu_setup_long failed: %s", mvm_error());
    assert_int_equal(vcpu_sregs_get(vcpu, &s), 0);
    assert_int_equal(vcpu_regs_get(vcpu, &r), 0);
    if ((s.cr0 & (X86_CR0_PE | X86_CR0_PG)) != (X86_CR0_PE | X86_CR0_PG) || !(s.cr4 & X86_CR4_PAE) ||
        (s.efer & (X86_EFER_LME | X86_EFER_LMA)) != (X86_EFER_LME | X86_EFER_LMA) || s.cr3 != cr3)
        fail_msg("long mode needs CR0.PE+PG, CR4.PAE, EFER.LME+LMA and CR3 = the PML4; got CR0 0x%llx CR4 0x%llx "
                 "EFER 0x%llx CR3 0x%llx (want 0x%llx)",
                 (unsigned long long)s.cr0, (unsigned long long)s.cr4, (unsigned long long)s.efer,
                 (unsigned long long)s.cr3, (unsigned long long)cr3);
    if (s.cs.selector != MVM_SEL_CODE64 || !s.cs.l || s.cs.db)
        fail_msg("CS: expected selector 0x18 with L=1 and D=0 (64-bit code), got 0x%x L=%u D=%u", s.cs.selector, s.cs.l,
                 s.cs.db);
    if (r.rip != 0x1000)
        fail_msg("RIP: expected 0x1000, got 0x%llx", (unsigned long long)r.rip);
    vm_destroy(vm);
}

static void hello64_runs(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab3/hello64", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "Hello from 64-bit long mode!\n") ||
        !strstr(run.console, "higher-half alias of the greeting at 0xffffffff8") ||
        !strstr(run.console, "identity and higher-half views agree\n"))
        fail_msg("lab3/hello64's output is not what long mode with a higher-half alias gives:\n%s", run.console);
    /* The guest passed a higher-half address to the test port: the VMM found the struct with your walker. */
    if (!strstr(run.console, "printed from a higher-half address\n"))
        fail_msg("the ucall sent by its higher-half address was not printed:\n%s", run.console);
    harness_free(&run);
}

/* The VMM's answer to an access where no slot is: add 2 MiB of RAM there and complete the access from it. */
static int hotplug_mmio(struct mvm_vcpu *vcpu, void *opaque, uint64_t gpa, bool is_write, uint8_t *data, uint32_t len)
{
    struct mvm_vm *vm = vcpu_vm(vcpu);
    uint8_t *hva;
    int rc;

    (void)opaque;
    rc = vm_mem_add(vm, 0x400000, X86_LARGE_PAGE_SIZE, 0);
    if (rc < 0)
        return rc;
    hva = vm_gpa_to_hva(vm, gpa, len);
    if (!hva)
        return mvm_fail(EFAULT, "hotplug: gpa 0x%llx not in the new slot", (unsigned long long)gpa);
    if (is_write)
        memcpy(hva, data, len);
    else
        memcpy(data, hva, len);
    return 0;
}

static int hotplug_register(struct mvm_vm *vm, void *opaque)
{
    (void)opaque;
    return vm_mmio_register(vm, 0x400000, X86_LARGE_PAGE_SIZE, hotplug_mmio, NULL);
}

static void mmio_exit_adds_slot(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab3/mmio", HARNESS_MODE_LONG, hotplug_register, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (run.res.by_reason[KVM_EXIT_MMIO] != 1 ||
        harness_count_exits(&run, "MMIO read gpa=0x0000000000400000 len=4 data=00000000") != 1)
        fail_msg("the guest's page tables map gpa 0x400000, but no memory slot backs it: the first read must be "
                 "exactly one KVM_EXIT_MMIO, and after the VMM adds a slot none follow. Exits:\n%s",
                 run.exits);
    if (!strstr(run.console, "1024 writes and reads there, no further exits"))
        fail_msg("lab3/mmio did not finish its checks on the new RAM:\n%s", run.console);
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_map_4k_and_2m), cmocka_unit_test(tables_identity_and_higher_half),
        cmocka_unit_test(walker_translates),  cmocka_unit_test(setup_long_sregs),
        cmocka_unit_test(hello64_runs),       cmocka_unit_test(mmio_exit_adds_slot),
    };

    return harness_main(argc, argv, "lab3", tests, sizeof(tests) / sizeof(tests[0]));
}
