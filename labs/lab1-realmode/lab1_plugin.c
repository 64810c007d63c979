/* Lab 1 as a plug-in: the real-mode vCPU set-up and the IO and HLT exit handlers. Not a student file. */
#include "lab_plugin.h"

MVM_LAB_DEFINE(1, "lab1-realmode", .exit[KVM_EXIT_IO] = lab1_exit_io, .exit[KVM_EXIT_HLT] = lab1_exit_hlt,
               .vcpu_setup[MVM_MODE_REAL] = lab1_vcpu_setup_real)

MVM_LAB_FORWARD(int, lab1_vcpu_setup_real, (struct mvm_vcpu * vcpu, uint64_t entry_gpa), (vcpu, entry_gpa))
MVM_LAB_FORWARD(int, lab1_exit_io, (struct mvm_vcpu * vcpu, struct kvm_run *run), (vcpu, run))
MVM_LAB_FORWARD(int, lab1_exit_hlt, (struct mvm_vcpu * vcpu, struct kvm_run *run), (vcpu, run))
