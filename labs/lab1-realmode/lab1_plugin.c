/* Lab 1 as a plug-in: the VMM's KVM calls and exit switch, the real-mode vCPU set-up, the IO and HLT exits. */
#include "lab_plugin.h"

MVM_LAB_DEFINE(1, "lab1-realmode", .exit[KVM_EXIT_IO] = lab1_exit_io, .exit[KVM_EXIT_HLT] = lab1_exit_hlt,
               .vcpu_setup[MVM_MODE_REAL] = lab1_vcpu_setup_real,
               .kvm = {.vm_open = lab1_vm_open,
                       .mem_region_set = lab1_mem_region_set,
                       .vcpu_open = lab1_vcpu_open,
                       .vcpu_enter = lab1_vcpu_enter,
                       .exit_switch = lab1_exit_switch})

MVM_LAB_FORWARD(int, lab1_vm_open, (int *kvm_fd, int *vm_fd), (kvm_fd, vm_fd))
MVM_LAB_FORWARD(int, lab1_mem_region_set,
                (int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, uint32_t flags),
                (vm_fd, slot, gpa, size, hva, flags))
MVM_LAB_FORWARD(int, lab1_vcpu_open,
                (int kvm_fd, int vm_fd, int id, int *vcpu_fd, struct kvm_run **run, size_t *run_size),
                (kvm_fd, vm_fd, id, vcpu_fd, run, run_size))
MVM_LAB_FORWARD(int, lab1_vcpu_enter, (int vcpu_fd, struct kvm_run *run), (vcpu_fd, run))
MVM_LAB_FORWARD(int, lab1_exit_switch, (struct mvm_vcpu * vcpu, struct kvm_run *run), (vcpu, run))
MVM_LAB_FORWARD(int, lab1_vcpu_setup_real, (struct mvm_vcpu * vcpu, uint64_t entry_gpa), (vcpu, entry_gpa))
MVM_LAB_FORWARD(int, lab1_exit_io, (struct mvm_vcpu * vcpu, struct kvm_run *run), (vcpu, run))
MVM_LAB_FORWARD(int, lab1_exit_hlt, (struct mvm_vcpu * vcpu, struct kvm_run *run), (vcpu, run))
