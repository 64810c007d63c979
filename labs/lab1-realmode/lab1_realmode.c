/* Lab 1 (student file): the VMM's KVM calls (a VM, a memory slot, a vCPU, KVM_RUN and the exit switch), real mode. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "lab_parts.h"

/*
 * Step 1. Open the KVM subsystem and create a VM.
 *
 * kvm_open, kvm_ioctl, kvm_mmap and kvm_close (kvm_api.h) are open(2), ioctl(2), mmap(2) and close(2) for
 * the KVM API: same arguments, same -1 and errno on failure, on whichever backend the VM runs.
 *
 * TODO(lab1):
 *  - open "/dev/kvm" read-write (and close-on-exec): that fd speaks for the whole KVM subsystem;
 *  - ask it KVM_GET_API_VERSION: anything but KVM_API_VERSION means a KVM this code was not written for,
 *    and is an error (-EINVAL);
 *  - KVM_CREATE_VM on it returns the VM's fd.
 *  On any failure close what you opened and return mvm_fail(errno-or-EINVAL, "...") naming the ioctl.
 */
int lab1_vm_open(int *kvm_fd, int *vm_fd)
{
    (void)kvm_fd;
    (void)vm_fd;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_vm_open() is not written yet: open /dev/kvm, check KVM_GET_API_VERSION "
                    "(expected %d), then KVM_CREATE_VM",
                    KVM_API_VERSION);
}

/*
 * Step 2. Give the VM memory: one memory slot.
 *
 * TODO(lab1): fill a struct kvm_userspace_memory_region (linux/kvm.h) with all five fields (the slot, the
 * flags, where the memory appears in the guest, its size, where it is in this process) and pass it to
 * KVM_SET_USER_MEMORY_REGION on the VM fd.
 */
int lab1_mem_region_set(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, uint32_t flags)
{
    (void)vm_fd;
    (void)hva;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_mem_region_set() is not written yet: KVM_SET_USER_MEMORY_REGION slot %u, "
                    "gpa 0x%llx, 0x%llx bytes, flags 0x%x",
                    slot, (unsigned long long)gpa, (unsigned long long)size, flags);
}

/*
 * Step 3. Create a vCPU and map its struct kvm_run.
 *
 * TODO(lab1):
 *  - KVM_GET_VCPU_MMAP_SIZE on the /dev/kvm fd says how many bytes the kvm_run mapping has (more than
 *    sizeof(struct kvm_run): the data of port I/O lives after the struct, in the same mapping);
 *  - KVM_CREATE_VCPU on the VM fd, with the vCPU's id, returns the vCPU's fd;
 *  - map that many bytes of the vCPU fd with kvm_mmap, so that you and KVM see the same page.
 *  Set the three outputs; on failure close the vCPU fd.
 */
int lab1_vcpu_open(int kvm_fd, int vm_fd, int id, int *vcpu_fd, struct kvm_run **run, size_t *run_size)
{
    (void)kvm_fd;
    (void)vm_fd;
    (void)vcpu_fd;
    (void)run;
    (void)run_size;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_vcpu_open() is not written yet: KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VCPU %d, "
                    "then mmap of its kvm_run",
                    id);
}

/*
 * Step 4. Enter the guest: one KVM_RUN.
 *
 * TODO(lab1): KVM_RUN on the vCPU fd runs guest code until the vCPU exits; then run->exit_reason says why.
 * The run loop around you has a time limit: it interrupts KVM_RUN with a signal, and then KVM_RUN fails
 * with EINTR. That is not an error: return -EINTR and the loop goes round again. Any other failure is.
 */
int lab1_vcpu_enter(int vcpu_fd, struct kvm_run *run)
{
    (void)vcpu_fd;
    (void)run;
    return mvm_fail(ENOSYS, "lab1: lab1_vcpu_enter() is not written yet: no KVM_RUN was issued");
}

/*
 * Step 5. The exit switch: after each KVM_RUN, hand the exit to the code for its reason.
 *
 * TODO(lab1): switch on run->exit_reason: KVM_EXIT_IO goes to lab1_exit_io, KVM_EXIT_HLT to
 * lab1_exit_hlt, and every other reason to vcpu_exit_default(vcpu, run) (the kit's devices and the later
 * labs handle those). Return what the handler returns.
 */
int lab1_exit_switch(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    return mvm_fail(ENOSYS, "lab1: lab1_exit_switch() is not written yet: exit reason %u (KVM_EXIT_%s) was not handled",
                    run->exit_reason, mvm_exit_name(run->exit_reason));
}

/*
 * Step 6. Point a fresh vCPU at a real-mode guest that starts at `entry_gpa`.
 *
 * A new vCPU starts like a PC after reset: CS.selector = 0xf000 with CS.base = 0xffff0000 and
 * RIP = 0xfff0, at the top of the 4 GiB space where this VM has no RAM.
 *
 * TODO(lab1):
 *  - read the vCPU's special registers (KVM_GET_SREGS on vcpu_fd(vcpu)), set CS, DS, ES, FS, GS and SS
 *    to one real-mode segment whose 64 KiB window holds the entry, write them back (KVM_SET_SREGS).
 *    KVM runs the guest on each segment's hidden base and limit, not on its selector;
 *  - set RIP (an offset inside CS), RSP (the top of the segment) and RFLAGS with KVM_SET_REGS;
 *  - real mode reaches 1 MiB: reject an entry at or above it with mvm_fail(EINVAL, ...).
 *  `make hint LAB=1 STEP=6` gives the formulas, if you want them.
 */
int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_vcpu_setup_real() is not written yet: set CS/DS/ES/FS/GS/SS (selector, base, limit) "
                    "and RIP, RSP, RFLAGS for entry 0x%llx",
                    (unsigned long long)entry_gpa);
}

/*
 * Step 7. Handle one KVM_EXIT_IO. Every IN and OUT the guest executes stops the vCPU and lands here;
 * that is the cost lab 1 makes visible.
 *
 * TODO(lab1):
 *  - the data is not in a register: KVM puts it inside the kvm_run mapping, run->io.data_offset bytes
 *    from its start;
 *  - run->io.direction is KVM_EXIT_IO_OUT (the guest wrote: the data is there) or KVM_EXIT_IO_IN (the
 *    guest reads: fill the data before the next KVM_RUN);
 *  - a string instruction (rep outsb, rep insw) arrives as ONE exit of run->io.count elements of
 *    run->io.size bytes, back to back;
 *  - for each element call vm_pio_dispatch(vcpu, run->io.port, is_write, element, run->io.size); if it
 *    returns non-zero, return that value. Return 0 to keep the guest running.
 */
int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab1: lab1_exit_io() is not written yet: KVM_EXIT_IO %s port 0x%x size %u count %u "
                    "was not handed to vm_pio_dispatch()",
                    run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port, run->io.size, run->io.count);
}

/*
 * Step 8. Handle one KVM_EXIT_HLT: the guest executed HLT.
 *
 * TODO(lab1): on a PC, HLT waits for the next interrupt. This VM has no interrupt controller, so nothing
 * will ever wake the vCPU: return MVM_STOP_HLT to end the run loop.
 */
int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    (void)run;
    return mvm_fail(ENOSYS, "lab1: lab1_exit_hlt() is not written yet: the guest executed HLT (KVM_EXIT_HLT); "
                            "return MVM_STOP_HLT");
}
