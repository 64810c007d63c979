/* Lab 4 guest: reads a line from the UART, polling LSR.DR (the VMM feeds it from --serial-in), and echoes it. */
#include "runtime/runtime.h"
#include "runtime/uart16550.h"

#define COM1 MVM_PORT_SERIAL

static void say(const char *s)
{
    uart_write(COM1, s, strlen(s));
}

void guest_main(void)
{
    struct uart_probe_result probe;
    char line[80];
    int n;

    GUEST_ASSERT_EQ(uart_probe(COM1, &probe), UART_PROBE_OK, "UART probe (IER, scratch, loopback, FIFO)");
    uart_init(COM1, 1);
    say("type a line: ");
    /* Polled: each wait is a loop of LSR reads, an exit each, until DR says a byte is there. */
    n = uart_read_line(COM1, line, sizeof(line), 0);
    GUEST_ASSERT(n >= 0);
    say("\nyou typed: ");
    uart_write(COM1, line, (size_t)n);
    say("\n");
    guest_printf("%d bytes read through RBR\n", n);
}
