/* Lab 4 guest: the hypercall doorbell (one exit per request) and its checks on bad requests (lab4/vmcall: KVM's own).
 */
#include "runtime/hypercall.h"
#include "runtime/runtime.h"

static const char msg[] = "Hello through one hypercall: 46 bytes, 1 exit\n";
static const char alias_msg[] = "and again from a higher-half buffer\n";

void guest_main(void)
{
    long t0, t1, r;

    GUEST_ASSERT_EQ(hypercall(MVM_HC_NOP, 0, 0, 0, 0), 0, "MVM_HC_NOP answers 0 in RAX");
    GUEST_ASSERT_EQ(hc_console_write(msg, sizeof(msg) - 1), sizeof(msg) - 1, "console_write returns len");
    GUEST_ASSERT_EQ(
        hc_console_write((const char *)(uintptr_t)(MVM_HIGHER_HALF_GVA + (uintptr_t)alias_msg), sizeof(alias_msg) - 1),
        sizeof(alias_msg) - 1, "console_write of a higher-half gva (the VMM walks the page tables)");
    t0 = hc_clock_ns();
    t1 = hc_clock_ns();
    GUEST_ASSERT(t0 > 0 && t1 >= t0);

    /* What the VMM must refuse, answering in RAX, never crashing nor printing a partial buffer. */
    GUEST_ASSERT_EQ(hypercall(0x7fff, 0, 0, 0, 0), -MVM_HC_ENOSYS, "unknown number 0x7fff: -ENOSYS");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_NOP, 1, 0, 0, 0), -MVM_HC_EINVAL, "nop with RBX != 0: -EINVAL");
    GUEST_ASSERT_EQ(hypercall(MVM_HC_CONSOLE_WRITE, (uintptr_t)msg, 4, 0, 9), -MVM_HC_EINVAL,
                    "console_write with RDI != 0: -EINVAL");
    GUEST_ASSERT_EQ(hc_console_write(msg, MVM_HC_CONSOLE_MAX + 1), -MVM_HC_EINVAL, "len 4097: -EINVAL");
    GUEST_ASSERT_EQ(hc_console_write(msg, ~0ul), -MVM_HC_EINVAL, "len 2^64-1: -EINVAL");
    GUEST_ASSERT_EQ(hc_console_write((void *)(uintptr_t)0x10, 8), -MVM_HC_EFAULT, "buffer in page 0 (unmapped)");
    GUEST_ASSERT_EQ(hc_console_write((void *)(uintptr_t)0x1ffff0, 32), -MVM_HC_EFAULT,
                    "buffer running past the end of RAM (2 MiB)");
    GUEST_ASSERT_EQ(hc_console_write((void *)(uintptr_t)0x400000, 1), -MVM_HC_EFAULT, "mapped, but no RAM there");
    GUEST_ASSERT_EQ(hc_console_write((void *)(uintptr_t)0x0000800000000000ull, 1), -MVM_HC_EFAULT,
                    "non-canonical buffer");
    GUEST_ASSERT_EQ(hc_console_write((void *)(uintptr_t)0xfffffffffffffff0ull, 32), -MVM_HC_EFAULT,
                    "buffer wrapping the address space");
    GUEST_ASSERT_EQ(hc_console_write(msg, 0), 0, "len 0: nothing to do, 0");
    /* An 8-bit OUT is not the doorbell's convention: the VMM answers -EINVAL in RAX all the same. */
    r = MVM_HC_NOP;
    __asm__ volatile("outb %%al, %%dx" : "+a"(r) : "d"(MVM_PORT_HYPERCALL) : "memory");
    GUEST_ASSERT_EQ(r, -MVM_HC_EINVAL, "an 8-bit OUT to the doorbell: -EINVAL");
    guest_printf("11 bad requests refused in RAX, the VMM unharmed\n");
}
