/* Lab 4 guest: KVM's own hypercall instruction (VMMCALL on AMD, VMCALL on Intel) is answered in the kernel: no exit. */
#include "runtime/hypercall.h"
#include "runtime/runtime.h"

#define KVM_ENOSYS 1000 /* linux/kvm_para.h: KVM's answer to a hypercall number it does not know */
#define CALLS      1000

void guest_main(void)
{
    const char *insn = cpu_is_amd() ? "VMMCALL" : "VMCALL";

    guest_printf("%d x %s with RAX = 0x100 (no such KVM hypercall)\n", CALLS, insn);
    for (int i = 0; i < CALLS; i++)
        GUEST_ASSERT_EQ(kvm_hypercall(0x100), -KVM_ENOSYS, "answered in the kernel: -KVM_ENOSYS (-1000) in RAX");
    /* Then the same request through the VMM's doorbell: it reaches userspace, and the VMM's table says no. */
    GUEST_ASSERT_EQ(hypercall(0x100, 0, 0, 0, 0), -MVM_HC_ENOSYS, "the doorbell: -MVM_HC_ENOSYS (-38) from the VMM");
    guest_printf("all answered -1000 in the kernel with no exit; the doorbell's one exit answered -38\n");
}
