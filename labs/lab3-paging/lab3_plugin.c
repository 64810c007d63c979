/* Lab 3 as a plug-in: long mode on minivmm's standard page tables, and the guest-virtual walker. Not a student file. */
#include "lab_plugin.h"

#ifndef MVM_LAB_FALLBACK
/* The standard long-mode vCPU: the page tables of lab3_page_tables_build in the boot pool, then long mode. */
static int setup_long(struct mvm_vcpu *vcpu, uint64_t entry_gva)
{
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    uint64_t cr3;
    int rc = lab3_page_tables_build(vcpu_vm(vcpu), &pool, &cr3);

    return rc < 0 ? rc : lab3_vcpu_setup_long(vcpu, entry_gva, cr3);
}
#endif

MVM_LAB_DEFINE(3, "lab3-paging", .vcpu_setup[MVM_MODE_LONG] = setup_long, .gva_to_gpa = lab3_gva_to_gpa)

MVM_LAB_FORWARD(int, lab3_page_map,
                (struct mvm_vm * vm, struct lab3_pt_pool *pool, uint64_t gva, uint64_t gpa, uint64_t page_size,
                 uint64_t flags),
                (vm, pool, gva, gpa, page_size, flags))
MVM_LAB_FORWARD(int, lab3_page_tables_build, (struct mvm_vm * vm, struct lab3_pt_pool *pool, uint64_t *cr3_out),
                (vm, pool, cr3_out))
MVM_LAB_FORWARD(int, lab3_vcpu_setup_long, (struct mvm_vcpu * vcpu, uint64_t entry_gva, uint64_t cr3),
                (vcpu, entry_gva, cr3))
MVM_LAB_FORWARD(int, lab3_gva_to_gpa, (struct mvm_vm * vm, uint64_t cr3, uint64_t gva, uint64_t *gpa_out),
                (vm, cr3, gva, gpa_out))
