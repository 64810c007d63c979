/* Lab 1 (reference): a real-mode vCPU, and the run loop's port I/O and HLT exits. */
#include <errno.h>
#include <string.h>

#include "lab_parts.h"

/* Real-mode segments are 64 KiB windows; the base is always selector * 16. */
static void segment_real(struct kvm_segment *seg, uint16_t selector)
{
    seg->selector = selector;
    seg->base = (uint64_t)selector << 4;
    seg->limit = 0xffff;
}

int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    uint16_t selector;
    int rc;

    if (entry_gpa >= 0x100000)
        return mvm_fail(EINVAL, "lab1: entry 0x%llx is above 1 MiB, out of real mode's reach",
                        (unsigned long long)entry_gpa);
    rc = vcpu_sregs_get(vcpu, &sregs);
    if (rc < 0)
        return rc;
    /* The highest segment whose window still starts at or below the entry. */
    selector = (uint16_t)((entry_gpa >> 4) & 0xf000);
    segment_real(&sregs.cs, selector);
    segment_real(&sregs.ds, selector);
    segment_real(&sregs.es, selector);
    segment_real(&sregs.fs, selector);
    segment_real(&sregs.gs, selector);
    segment_real(&sregs.ss, selector);
    rc = vcpu_sregs_set(vcpu, &sregs);
    if (rc < 0)
        return rc;
    memset(&regs, 0, sizeof(regs));
    regs.rip = entry_gpa - ((uint64_t)selector << 4);
    regs.rsp = 0xfffe;
    regs.rflags = 0x2; /* bit 1 is reserved and always 1 */
    return vcpu_regs_set(vcpu, &regs);
}

int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

    /* String I/O (rep outs/ins) arrives as one exit with count elements, back to back. */
    for (uint32_t i = 0; i < run->io.count; i++) {
        int rc = vm_pio_dispatch(vcpu, run->io.port, is_write, data + (size_t)i * run->io.size, run->io.size);

        if (rc != 0)
            return rc;
    }
    return 0;
}

int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run)
{
    (void)vcpu;
    (void)run;
    return MVM_STOP_HLT;
}
