/*
 * Lab 4 (student file): the hypercall doorbell's decoder and the console
 * hypercall. The guest loads RAX (the number) and RBX, RCX, RSI, RDI, then
 * does one `out %eax, $0x510`: one exit. The core hands that OUT to
 * lab4_hypercall_dispatch(); the hypercalls themselves sit in the VM's table
 * (minivmm/hypercall.h), registered by each lab's vm_init, so a later lab
 * adds its own without touching this file. Everything in the registers is
 * the guest's: untrusted.
 */
#include <errno.h>
#include <string.h>

#include "device.h"
#include "lab4-uart/lab4.h"

/*
 * TODO(lab4):
 *  1. vcpu_regs_get(): under KVM, KVM_GET_REGS during the I/O exit gives the
 *     registers as the guest left them at the OUT.
 *  2. The doorbell is a 32-bit OUT of EAX: out_size != 4, or out_value !=
 *     (uint32_t)RAX, is answered -MVM_HC_EINVAL.
 *  3. vm_hypercall_find(vcpu_vm(vcpu), RAX); none: -MVM_HC_ENOSYS.
 *  4. args = { RBX, RCX, RSI, RDI } (not RDX: the OUT needs DX for the port
 *     number); any beyond hc->nargs not 0: -MVM_HC_EINVAL.
 *  5. hc->fn(vcpu, hc->opaque, args, &ret): non-zero is the VMM's failure or
 *     a stop, return it as is; else ret is the answer.
 *  6. The answer goes in RAX, and vcpu_regs_set() (same RIP: KVM completes
 *     the OUT, and moves past it, at the next KVM_RUN).
 */
int lab4_hypercall_dispatch(struct mvm_vcpu *vcpu, uint32_t out_size, uint32_t out_value)
{
    (void)vcpu;
    return mvm_fail(ENOSYS,
                    "lab4: lab4_hypercall_dispatch() is not written yet: the guest rang the doorbell (OUT "
                    "of %u bytes, EAX 0x%x, port 0x%x): read RAX, look it up, answer in RAX",
                    out_size, out_value, MVM_PORT_HYPERCALL);
}

/*
 * TODO(lab4): MVM_HC_CONSOLE_WRITE(buf = args[0], len = args[1]).
 *  - len > MVM_HC_CONSOLE_MAX: *ret = -MVM_HC_EINVAL (a guest asking too much
 *    must not make the VMM allocate or copy it).
 *  - Copy all len bytes out of the guest first, with vm_read_gva() (buf is
 *    guest-virtual; it walks the guest's page tables and checks every page
 *    is RAM). -EFAULT or -EINVAL from it: *ret = -MVM_HC_EFAULT, nothing
 *    written. Other errors are the VMM's: return them.
 *  - Then vm_console_write() the bytes, and *ret = len. Return 0.
 */
int lab4_hc_console_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)opaque;
    (void)ret;
    return mvm_fail(ENOSYS,
                    "lab4: lab4_hc_console_write() is not written yet: the guest asked to print %llu bytes "
                    "at gva 0x%llx",
                    (unsigned long long)args[1], (unsigned long long)args[0]);
}
