/*
 * KVM_RUN with immediate_exit set while a port I/O exit waits: KVM completes the instruction first
 * (complete_userspace_io: complete_fast_pio_in/out) and then returns -EINTR, so a VMM that saves the vCPU's state
 * there (migration; the selftests' vcpu_run_complete_io) sees it done: RIP past the IN or OUT, the IN's data in
 * AL/AX/EAX. The engine is suspended inside the instruction's hook and would run the rest of its block if resumed,
 * so the backend completes it in the registers KVM_GET/SET_REGS see and lets the engine finish it at the next
 * KVM_RUN, with the same data.
 */
#include "soft_uc_state.h"

bool soft_io_done_mark(struct soft_vcpu *v)
{
    const struct kvm_run *run = v->run;
    if (v->io_done)
        return true;
    if (!v->in_exit || !v->io_exit || run->exit_reason != KVM_EXIT_IO || run->io.count != 1 ||
        (run->io.size != 1 && run->io.size != 2 && run->io.size != 4) || run->io.data_offset != SOFT_PIO_OFFSET)
        return false;
    img_load(v);
    if (!soft_locate_io(v) || v->io_string)
        return false; /* string I/O: KVM's emulator completes a batch; left to the engine */
    v->io_done = true;
    v->io_done_rip = v->io_rip + v->io_len;
    v->io_done_in = run->io.direction == KVM_EXIT_IO_IN;
    v->io_done_size = run->io.size;
    memcpy(v->io_done_data, (const uint8_t *)run + SOFT_PIO_OFFSET, run->io.size);
    return true;
}

void soft_io_done_regs(struct soft_vcpu *v, struct kvm_regs *r)
{
    if (!v->io_done)
        return;
    r->rip = v->io_done_rip;
    if (!v->io_done_in)
        return;
    uint32_t d = 0;
    memcpy(&d, v->io_done_data, v->io_done_size);
    /* complete_fast_pio_in: a 1- or 2-byte IN merges into RAX, a 4-byte one zero-extends. */
    if (v->io_done_size == 4)
        r->rax = d;
    else
        r->rax = (r->rax & ~(uint64_t)(v->io_done_size == 1 ? 0xff : 0xffff)) | d;
}

void soft_io_done_resume(struct soft_vcpu *v)
{
    if (!v->io_done)
        return;
    /* KVM consumed the data at completion; the engine takes it now, whatever the VMM left in the page since. */
    if (v->io_done_in) {
        v->run->io.data_offset = SOFT_PIO_OFFSET;
        memcpy((uint8_t *)v->run + SOFT_PIO_OFFSET, v->io_done_data, v->io_done_size);
    }
    v->io_done = false;
}
