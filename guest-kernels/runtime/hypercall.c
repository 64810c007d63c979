/* Guest side of the hypercalls: the doorbell wrappers, and KVM's in-kernel VMCALL/VMMCALL for comparison. */
#include "runtime/hypercall.h"
#include "runtime/runtime.h"

long hc_console_write(const void *buf, unsigned long len)
{
    return hypercall(MVM_HC_CONSOLE_WRITE, (uintptr_t)buf, len, 0, 0);
}

long hc_clock_ns(void)
{
    return hypercall(MVM_HC_CLOCK_NS, 0, 0, 0, 0);
}

int cpu_is_amd(void)
{
    uint32_t a = 0, b, c = 0, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return b == 0x68747541 /* "Auth" */ || b == 0x6f677948 /* "Hygo" */;
}

long kvm_hypercall(unsigned long nr)
{
    /* KVM would patch the other vendor's instruction in guest memory; use the CPU's own. */
    if (cpu_is_amd())
        __asm__ volatile("vmmcall" : "+a"(nr) : : "memory");
    else
        __asm__ volatile("vmcall" : "+a"(nr) : : "memory");
    return (long)nr;
}
