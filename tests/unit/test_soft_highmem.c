/*
 * Guest-physical memory above 4 GiB on the soft backend (soft_lazy.c): a 64 GiB slot is mapped into the engine
 * a chunk at a time as the guest touches it, so creating, running and destroying the VM costs the pages it used,
 * counted here in pages (soft_pages_mapped, soft_pages_unmapped), not timed; page tables inside such a slot,
 * which the engine's page walker reads without the unmapped-memory hook; and the slot limit, MAXPHYADDR.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lab_parts.h"
#include "mvm.h"
#include "soft_priv.h"

#define GIB         (1ull << 30)
#define LOW_RAM     (2ull << 20)
#define BIG_GPA     (4 * GIB)
#define BIG_SIZE    (64 * GIB)
#define CHUNK_PAGES (SOFT_LAZY_CHUNK / SOFT_PAGE)

/* `mov rax, imm64` then `mov qword [rax], imm32` */
static size_t emit_store(uint8_t *p, uint64_t gpa, uint32_t val)
{
    p[0] = 0x48;
    p[1] = 0xb8;
    memcpy(p + 2, &gpa, 8);
    p[10] = 0x48;
    p[11] = 0xc7;
    p[12] = 0x00;
    memcpy(p + 13, &val, 4);
    return 17;
}

/* `mov rax, imm64` then `mov rcx, [rax]` */
static size_t emit_load_rcx(uint8_t *p, uint64_t gpa)
{
    p[0] = 0x48;
    p[1] = 0xb8;
    memcpy(p + 2, &gpa, 8);
    p[10] = 0x48;
    p[11] = 0x8b;
    p[12] = 0x08;
    return 13;
}

/* A VM on soft: LOW_RAM at 0, BIG_SIZE at BIG_GPA, long mode with the page tables in a pool at pt_gpa. */
static void vm_big_create(struct mvm_vm **vm, struct mvm_vcpu **vcpu, uint64_t pt_gpa, const uint64_t *map, int nmap)
{
    const struct mvm_backend *soft;
    struct lab3_pt_pool pool = {.base_gpa = pt_gpa, .size = 0x10000};
    uint64_t cr3;

    assert_int_equal(mvm_backend_pick("soft", &soft), 0);
    assert_int_equal(vm_create(soft, vm), 0);
    assert_int_equal(vm_mem_add(*vm, 0, LOW_RAM, 0), 0);
    assert_int_equal(vm_mem_add(*vm, BIG_GPA, BIG_SIZE, 0), 0);
    assert_int_equal(vcpu_create(*vm, 0, vcpu), 0);
    assert_int_equal(lab3_page_tables_build(*vm, &pool, &cr3), 0);
    for (int i = 0; i < nmap; i++)
        assert_int_equal(lab3_page_map(*vm, &pool, map[i], map[i], 2u << 20, X86_PTE_RW), 0);
    assert_int_equal(lab3_vcpu_setup_long(*vcpu, MVM_BOOT_LOAD_GPA, cr3), 0);
}

/*
 * Three stores spread over a 64 GiB slot and a load from MMIO beyond it: the engine maps the low RAM, three
 * chunks of the slot and one chunk of MMIO, and the teardown unmaps exactly those (mapping the slot whole
 * was 16 M pages to unmap, about a second of CPU).
 */
static void big_slot_costs_what_it_touches(void **state)
{
    const uint64_t at[] = {BIG_GPA, BIG_GPA + 32 * GIB + 0x5000, BIG_GPA + BIG_SIZE - 8};
    const uint64_t mmio = BIG_GPA + BIG_SIZE + 0x100;
    const uint64_t map[] = {at[0] & ~0x1fffffull, at[1] & ~0x1fffffull, at[2] & ~0x1fffffull, mmio & ~0x1fffffull};
    uint8_t code[128];
    size_t n = 0;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct mvm_run_opts o = {.max_exits = 100, .max_ms = 5000};
    struct mvm_run_result r;
    struct kvm_regs regs;

    (void)state;
    uint64_t mapped0 = soft_pages_mapped, unmapped0 = soft_pages_unmapped;
    vm_big_create(&vm, &vcpu, MVM_BOOT_PT_POOL_GPA, map, 4);
    for (int i = 0; i < 3; i++)
        n += emit_store(code + n, at[i], 0x100 + (uint32_t)i);
    n += emit_load_rcx(code + n, mmio);
    code[n++] = 0xf4; /* hlt */
    assert_int_equal(vm_write(vm, MVM_BOOT_LOAD_GPA, code, n), 0);
    assert_int_equal(vcpu_run(vcpu, &o, &r), 0);
    assert_int_equal(r.stop, MVM_STOP_HLT);
    for (int i = 0; i < 3; i++) {
        uint64_t x;
        memcpy(&x, vm_gpa_to_hva(vm, at[i], 8), 8);
        assert_int_equal(x, 0x100 + i);
    }
    assert_int_equal(vcpu_regs_get(vcpu, &regs), 0);
    assert_int_equal(regs.rcx, ~0ull); /* the MMIO read: an exit, answered all ones by the empty bus */
    assert_int_equal(r.by_reason[KVM_EXIT_MMIO], 1);
    uint64_t mapped = soft_pages_mapped - mapped0;
    print_message("64 GiB slot: %llu pages mapped into the engine (slot whole: %llu)\n", (unsigned long long)mapped,
                  (unsigned long long)(BIG_SIZE / SOFT_PAGE));
    assert_int_equal(mapped, LOW_RAM / SOFT_PAGE + 3 * CHUNK_PAGES + CHUNK_PAGES);
    vm_destroy(vm);
    assert_int_equal(soft_pages_unmapped - unmapped0, mapped);
}

/*
 * The VMM wrote the page tables into the 64 GiB slot through its own mapping, so the engine has not mapped them
 * when the first fetch walks them: the backend maps the chunk and the fetch runs again. No #PF reaches the guest
 * and CR2 keeps the VMM's value.
 */
static void page_tables_in_a_lazy_slot(void **state)
{
    const uint64_t pt = BIG_GPA + 7 * GIB;
    const uint64_t cr2 = 0x5a5a5000;
    uint8_t code[64];
    size_t n = 0;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct mvm_run_opts o = {.max_exits = 100, .max_ms = 5000};
    struct mvm_run_result r;
    struct kvm_regs regs;
    struct kvm_sregs sregs;

    (void)state;
    vm_big_create(&vm, &vcpu, pt, NULL, 0);
    n += emit_store(code + n, 0x3000, 0x77);
    code[n++] = 0xf4;
    assert_int_equal(vm_write(vm, MVM_BOOT_LOAD_GPA, code, n), 0);
    assert_int_equal(vcpu_sregs_get(vcpu, &sregs), 0);
    sregs.cr2 = cr2;
    assert_int_equal(vcpu_sregs_set(vcpu, &sregs), 0);
    assert_int_equal(vcpu_run(vcpu, &o, &r), 0);
    assert_int_equal(r.stop, MVM_STOP_HLT);
    assert_int_equal(vcpu_regs_get(vcpu, &regs), 0);
    assert_int_equal(regs.rip, MVM_BOOT_LOAD_GPA + n);
    assert_int_equal(vcpu_sregs_get(vcpu, &sregs), 0);
    assert_int_equal(sregs.cr2, cr2);
    assert_int_equal(*(uint8_t *)vm_gpa_to_hva(vm, 0x3000, 1), 0x77);
    vm_destroy(vm);
}

/* KVM refuses a slot whose last page lies at or beyond MAXPHYADDR (kvm_arch_prepare_memory_region). */
static void slot_limit_is_maxphyaddr(void **state)
{
    const struct mvm_backend *soft;
    struct mvm_vm *vm;
    uint64_t top = 1ull << soft_gpa_bits();

    (void)state;
    assert_int_equal(mvm_backend_pick("soft", &soft), 0);
    assert_int_equal(vm_create(soft, &vm), 0);
    assert_int_equal(vm_mem_add(vm, top - (2u << 20), 2u << 20, 0), 0);
    assert_int_equal(vm_mem_add(vm, top, 2u << 20, 0), -EINVAL);
    print_message("MAXPHYADDR %u: a slot ending at 0x%llx is accepted, one past it refused: %s\n", soft_gpa_bits(),
                  (unsigned long long)top, mvm_error());
    vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(big_slot_costs_what_it_touches),
        cmocka_unit_test(page_tables_in_a_lazy_slot),
        cmocka_unit_test(slot_limit_is_maxphyaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
