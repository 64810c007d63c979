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

long hc_console_share(const void *buf, unsigned long size)
{
    return hypercall(MVM_HC_CONSOLE_SHARE, (uintptr_t)buf, size, 0, 0);
}

long hc_fs_open(const char *path, unsigned long flags)
{
    return hypercall(MVM_HC_FS_OPEN, (uintptr_t)path, strlen(path), flags, 0);
}

long hc_fs_read(long fd, void *buf, unsigned long len)
{
    return hypercall(MVM_HC_FS_READ, (unsigned long)fd, (uintptr_t)buf, len, 0);
}

long hc_fs_write(long fd, const void *buf, unsigned long len)
{
    return hypercall(MVM_HC_FS_WRITE, (unsigned long)fd, (uintptr_t)buf, len, 0);
}

long hc_fs_close(long fd)
{
    return hypercall(MVM_HC_FS_CLOSE, (unsigned long)fd, 0, 0, 0);
}

long hc_fs_stat(long fd, struct mvm_hc_stat *st)
{
    return hypercall(MVM_HC_FS_STAT, (unsigned long)fd, (uintptr_t)st, 0, 0);
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
