/* Lab 4 guest: the UART at power-on, probed the way Linux's 8250 driver probes it, set up (115200 8N1, FIFOs), then
 * used. */
#include "runtime/runtime.h"
#include "runtime/uart16550.h"

#define COM1 MVM_PORT_SERIAL

static const char hello[] = "Hello through the 16550A: every byte is an IN of LSR and an OUT to THR\n";

void guest_main(void)
{
    struct uart_probe_result probe;
    uint8_t dll, dlm;

    /* The datasheet's reset values, as the VMM's model must give them. */
    GUEST_ASSERT_EQ(inb(COM1 + UART_IER), 0x00, "IER after reset");
    GUEST_ASSERT_EQ(inb(COM1 + UART_IIR), UART_IIR_NO_INT, "IIR after reset: 0x01, nothing pending, FIFOs off");
    GUEST_ASSERT_EQ(inb(COM1 + UART_LCR), 0x00, "LCR after reset");
    GUEST_ASSERT_EQ(inb(COM1 + UART_MCR), 0x00, "MCR after reset");
    GUEST_ASSERT_EQ(inb(COM1 + UART_LSR), UART_LSR_THRE | UART_LSR_TEMT, "LSR after reset: THRE|TEMT");
    GUEST_ASSERT_EQ(inb(COM1 + UART_MSR), UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS, "MSR: DCD|DSR|CTS, no delta");

    if (uart_probe(COM1, &probe) != UART_PROBE_OK) {
        char msg[MVM_UCALL_MSG_LEN] = "probe failed: ";

        memcpy(msg + 14, uart_probe_step_name(probe.step), strlen(uart_probe_step_name(probe.step)) + 1);
        ucall(MVM_UCALL_ASSERT, __LINE__, probe.got, probe.want, msg);
        guest_halt();
    }
    uart_init(COM1, 1);
    outb(COM1 + UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
    dll = inb(COM1 + UART_DLL);
    dlm = inb(COM1 + UART_DLM);
    outb(COM1 + UART_LCR, UART_LCR_WLEN8);
    GUEST_ASSERT_EQ(dll | dlm << 8, 1, "divisor latch (DLAB=1: DLL, DLM) reads back 1: 115200 baud");
    GUEST_ASSERT_EQ(inb(COM1 + UART_LCR), UART_LCR_WLEN8, "LCR: 8N1, DLAB off");
    GUEST_ASSERT_EQ(inb(COM1 + UART_IIR), 0xc0 | UART_IIR_NO_INT, "IIR: FIFOs on (0xc0), nothing pending");

    uart_write(COM1, hello, sizeof(hello) - 1);

    /* No interrupt controller here, but IIR still tells what would be pending: "THR empty" once IER asks for it. */
    outb(COM1 + UART_IER, UART_IER_THRI);
    GUEST_ASSERT_EQ(inb(COM1 + UART_IIR), 0xc0 | UART_IIR_THRI, "IIR after IER=THRI with THR empty: 0xc2");
    GUEST_ASSERT_EQ(inb(COM1 + UART_IIR), 0xc0 | UART_IIR_NO_INT, "reading IIR acknowledged THRE: 0xc1");
    outb(COM1 + UART_IER, 0);
    guest_printf("probe: 16550A (IER, scratch, loopback, FIFO tests passed); polled, no IRQ 4\n");
}
