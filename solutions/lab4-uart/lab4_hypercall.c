/* Lab 4 (reference): the hypercall doorbell's decoder, table-driven, and the console hypercall's checks. */
#include <errno.h>
#include <string.h>

#include "device.h"
#include "lab4-uart/lab4.h"

/* The answer goes to RAX; everything else the guest sees as it left it. */
static int answer(struct mvm_vcpu *vcpu, struct kvm_regs *regs, int64_t ret)
{
    regs->rax = (uint64_t)ret;
    return vcpu_regs_set(vcpu, regs);
}

int lab4_hypercall_dispatch(struct mvm_vcpu *vcpu, uint32_t out_size, uint32_t out_value)
{
    const struct mvm_hypercall *hc;
    struct kvm_regs regs;
    uint64_t args[MVM_HC_ARGS];
    int64_t ret = 0;
    int rc = vcpu_regs_get(vcpu, &regs);

    if (rc < 0)
        return rc;
    /* The doorbell is `out %eax, (port)`: any other width or value is not this ABI. */
    if (out_size != 4 || out_value != (uint32_t)regs.rax)
        return answer(vcpu, &regs, -MVM_HC_EINVAL);
    hc = vm_hypercall_find(vcpu_vm(vcpu), regs.rax);
    if (!hc)
        return answer(vcpu, &regs, -MVM_HC_ENOSYS);
    args[0] = regs.rbx;
    args[1] = regs.rcx;
    args[2] = regs.rsi;
    args[3] = regs.rdi; /* not RDX: it holds the port */
    for (unsigned i = hc->nargs; i < MVM_HC_ARGS; i++)
        if (args[i] != 0)
            return answer(vcpu, &regs, -MVM_HC_EINVAL);
    rc = hc->fn(vcpu, hc->opaque, args, &ret);
    if (rc != 0)
        return rc;
    return answer(vcpu, &regs, ret);
}

int lab4_hc_console_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    uint8_t buf[MVM_HC_CONSOLE_MAX];
    uint64_t gva = args[0], len = args[1];
    int rc;

    (void)opaque;
    if (len > MVM_HC_CONSOLE_MAX) {
        *ret = -MVM_HC_EINVAL;
        return 0;
    }
    if (len == 0) {
        *ret = 0;
        return 0;
    }
    /* All of it is copied out (and so checked) before a byte is written: no partial output on a bad buffer. */
    rc = vm_read_gva(vcpu, gva, buf, len);
    if (rc == -EFAULT || rc == -EINVAL) {
        *ret = -MVM_HC_EFAULT;
        return 0;
    }
    if (rc < 0)
        return rc;
    vm_console_write(vcpu_vm(vcpu), buf, len);
    *ret = (int64_t)len;
    return 0;
}
