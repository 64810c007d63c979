/* Lab 2 as a plug-in: the protected-mode vCPU set-up. Not a student file. */
#include "lab_plugin.h"

MVM_LAB_DEFINE(2, "lab2-protected", .vcpu_setup[MVM_MODE_PROTECTED] = lab2_vcpu_setup_protected)

MVM_LAB_FORWARD(int, lab2_gdt_entry_encode, (const struct kvm_segment *seg, uint64_t *desc_out), (seg, desc_out))
MVM_LAB_FORWARD(int, lab2_vcpu_setup_protected, (struct mvm_vcpu * vcpu, uint64_t entry_gpa), (vcpu, entry_gpa))
