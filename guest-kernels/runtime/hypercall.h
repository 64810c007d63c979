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
/*
 * The console's shared buffer (path (c)): MVM_HC_CONSOLE_SHARE registers buf (its gva must equal its gpa, as
 * in the runtime's identity map) once; then each console_kick(len) prints len bytes from its start with one
 * 32-bit OUT, the length in EAX: no registers for the VMM to read. 0, or -MVM_HC_E*.
 */
long hc_console_share(const void *buf, unsigned long size);
static inline void console_kick(uint32_t len)
{
    __asm__ volatile("outl %%eax, %%dx" : : "a"(len), "d"(MVM_PORT_CONSOLE_KICK) : "memory");
}
/* The file service (abi.h, MVM_HC_FS_*): the VMM's answer, a descriptor or byte count >= 0, or -MVM_HC_E*. */
long hc_fs_open(const char *path, unsigned long flags); /* path NUL-terminated here; sent as (gva, strlen) */
long hc_fs_read(long fd, void *buf, unsigned long len);
long hc_fs_write(long fd, const void *buf, unsigned long len);
long hc_fs_close(long fd);
long hc_fs_stat(long fd, struct mvm_hc_stat *st);
/* True on AMD (and Hygon) CPUs, whose hypercall instruction is VMMCALL; Intel's is VMCALL. */
int cpu_is_amd(void);
/*
 * KVM's own hypercall: VMMCALL on AMD, VMCALL on Intel, RAX = nr. KVM answers
 * it in the kernel, never exiting to the VMM: -KVM_ENOSYS (-1000) for a
 * number it does not know. Returns RAX.
 */
long kvm_hypercall(unsigned long nr);

#endif
