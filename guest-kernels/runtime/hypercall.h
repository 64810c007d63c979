/* Guest side of minivmm's hypercalls (abi.h): the doorbell OUT, and KVM's own VMCALL/VMMCALL answered in the kernel. */
#ifndef GUEST_HYPERCALL_H
#define GUEST_HYPERCALL_H

#include <stdint.h>

#include "abi.h"

/*
 * One hypercall through the doorbell: RAX = nr, RBX, RCX, RSI, RDI = a0..a3,
 * `out %eax, %dx` with DX = MVM_PORT_HYPERCALL: one exit to the VMM. Returns
 * RAX as the VMM left it (>= 0, or -MVM_HC_E*). 32-bit guests: EAX, EBX, ...
 */
static inline long hypercall(unsigned long nr, unsigned long a0, unsigned long a1, unsigned long a2, unsigned long a3)
{
    __asm__ volatile("outl %%eax, %%dx"
                     : "+a"(nr)
                     : "b"(a0), "c"(a1), "S"(a2), "D"(a3), "d"(MVM_PORT_HYPERCALL)
                     : "memory");
    return (long)nr;
}

/* MVM_HC_CONSOLE_WRITE: len bytes of buf to the console in one exit. len, or -MVM_HC_E*. */
long hc_console_write(const void *buf, unsigned long len);
/* MVM_HC_CLOCK_NS: the host's monotonic clock in ns. */
long hc_clock_ns(void);
/* True on AMD (and Hygon) CPUs, whose hypercall instruction is VMMCALL; Intel's is VMCALL. */
int cpu_is_amd(void);
/*
 * KVM's own hypercall: VMMCALL on AMD, VMCALL on Intel, RAX = nr. KVM answers
 * it in the kernel, never exiting to the VMM: -KVM_ENOSYS (-1000) for a
 * number it does not know. Returns RAX.
 */
long kvm_hypercall(unsigned long nr);

#endif
