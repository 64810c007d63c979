/*
 * Lab 4 bench guest: `count` messages of `size` bytes out through the UART, the console hypercall, a shared buffer
 * and its kick port, or KVM's in-kernel VMCALL.
 */
#include "lab4/bytes.h"
#include "runtime/hypercall.h"
#include "runtime/runtime.h"
#include "runtime/uart16550.h"

static char message[LAB4_BYTES_MAX];

void guest_main(void)
{
    volatile struct lab4_bytes_params *p = addr_ptr(LAB4_BYTES_PARAMS_GPA);
    uint32_t size = p->size;
    uint64_t count = p->count;
    long r = 0;

    GUEST_ASSERT_EQ(size >= 1 && size <= LAB4_BYTES_MAX, 1, "message size 1..4096");
    for (uint32_t i = 0; i < size; i++)
        message[i] = (char)(i % 64 == 63 ? '\n' : 'a' + i % 26);
    /* The shared buffer is registered once, before the clock starts counting messages. */
    if (p->via == LAB4_VIA_SHARED)
        GUEST_ASSERT_EQ(hc_console_share(message, size), 0, "MVM_HC_CONSOLE_SHARE of the message buffer");
    for (uint64_t m = 0; m < count; m++) {
        switch (p->via) {
        case LAB4_VIA_UART:
            uart_write(MVM_PORT_SERIAL, message, size);
            break;
        case LAB4_VIA_HYPERCALL:
            r = hc_console_write(message, size);
            break;
        case LAB4_VIA_VMCALL:
            r = kvm_hypercall(0x100);
            break;
        case LAB4_VIA_NOP:
            r = hypercall(MVM_HC_NOP, 0, 0, 0, 0);
            break;
        case LAB4_VIA_SHARED:
            console_kick(size);
            break;
        default:
            GUEST_ASSERT_EQ(p->via, LAB4_VIA_UART, "known method");
        }
    }
    p->last = r;
}
