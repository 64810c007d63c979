/* Lab 4 hidden tests: IIR priorities and acknowledgement, 16450-mode overrun, bits that must not stick, bad registers,
 * hostile hypercall registers, Linux's start-up sequence. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "harness.h"
#include "lab.h"
#include "lab4-uart/lab4.h"
#include "x86.h"

static const char *const reg_names[8] = {"RBR", "IER", "IIR", "LCR", "MCR", "LSR", "MSR", "SCR"};
static const char *const wreg_names[8] = {"THR", "IER", "FCR", "LCR", "MCR", "LSR", "MSR", "SCR"};

static int tx_count(void *opaque, uint8_t byte)
{
    (void)byte;
    ++*(int *)opaque;
    return 0;
}

static void uart_fresh(struct lab4_uart *u, int *sent)
{
    memset(u, 0, sizeof(*u));
    u->tx = tx_count;
    u->opaque = sent;
    lab4_uart_reset(u);
}

static void wr(struct lab4_uart *u, unsigned reg, uint8_t v)
{
    if (lab4_uart_write(u, reg, v) != 0)
        fail_msg("lab4_uart_write(%s, 0x%02x) failed: %s", wreg_names[reg], v, mvm_error());
}

static void expect_reg(struct lab4_uart *u, unsigned reg, uint8_t want, const char *why)
{
    uint8_t got = 0xee;

    if (lab4_uart_read(u, reg, &got) != 0)
        fail_msg("%s: lab4_uart_read(%s) failed: %s", why, reg_names[reg], mvm_error());
    if (got != want)
        fail_msg("%s: %s read 0x%02x, a 16550A gives 0x%02x", why, reg_names[reg], got, want);
}

static void uart_iir_priorities(void **state)
{
    struct lab4_uart u;
    int sent = 0;

    (void)state;
    uart_fresh(&u, &sent);
    wr(&u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4);
    wr(&u, UART_IER, UART_IER_THRI);
    expect_reg(&u, UART_IIR, 0xc2, "IER.THRI turned on with THR empty: THRE pending");
    expect_reg(&u, UART_IIR, 0xc1, "the IIR read that showed THRE acknowledged it");
    wr(&u, UART_TX, 'x');
    expect_reg(&u, UART_IIR, 0xc2, "THR written and (instantly) empty again: THRE pending again");
    wr(&u, UART_TX, 'y');
    wr(&u, UART_IER, UART_IER_THRI | UART_IER_RDI | UART_IER_RLSI);
    lab4_uart_receive(&u, '1');
    expect_reg(&u, UART_IIR, 0xcc, "1 byte under a trigger level of 4: character timeout (0x0c) outranks THRE");
    lab4_uart_receive(&u, '2');
    lab4_uart_receive(&u, '3');
    lab4_uart_receive(&u, '4');
    expect_reg(&u, UART_IIR, 0xc4, "4 bytes at trigger level 4: received data available (0x04)");
    for (int i = 0; i < 13; i++)
        lab4_uart_receive(&u, 'o');
    expect_reg(&u, UART_IIR, 0xc6, "an overrun (LSR.OE) with IER.RLSI: line status (0x06) outranks everything");
    expect_reg(&u, UART_LSR, 0x63, "LSR: DR, OE, THRE, TEMT");
    expect_reg(&u, UART_IIR, 0xc4, "LSR read cleared OE: back to received data");
    expect_reg(&u, UART_IIR, 0xc4, "reading IIR does not acknowledge received data (only reading RBR does)");
    wr(&u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    expect_reg(&u, UART_LSR, 0x60, "FCR.CLEAR_RCVR emptied the FIFO: DR clear");
    expect_reg(&u, UART_IIR, 0xc2, "nothing received: THRE (pending since 'y', hidden, never shown) shows again");
    wr(&u, UART_IER, 0);
    expect_reg(&u, UART_IIR, 0xc1, "IER = 0: nothing enabled, nothing pending");
}

static void uart_overrun_16450_mode(void **state)
{
    struct lab4_uart u;
    int sent = 0;

    (void)state;
    uart_fresh(&u, &sent);
    lab4_uart_receive(&u, 'a');
    lab4_uart_receive(&u, 'b');
    expect_reg(&u, UART_LSR, 0x63, "FIFOs off: a second byte before RBR was read is an overrun (OE)");
    expect_reg(&u, UART_LSR, 0x61, "OE cleared by the LSR read; DR stays");
    expect_reg(&u, UART_RX, 'b', "FIFOs off, as a 16450: the new byte overwrote the holding register");
    expect_reg(&u, UART_LSR, 0x60, "RBR read: DR clear");
    wr(&u, UART_FCR, UART_FCR_ENABLE_FIFO);
    lab4_uart_receive(&u, 'c');
    wr(&u, UART_FCR, 0);
    expect_reg(&u, UART_LSR, 0x60, "turning the FIFOs off empties them");
}

static void uart_bits_that_do_not_stick(void **state)
{
    struct lab4_uart u;
    int sent = 0;

    (void)state;
    uart_fresh(&u, &sent);
    wr(&u, UART_IER, 0xff);
    expect_reg(&u, UART_IER, 0x0f, "IER bits 4-7 do not exist on a 16550A (Linux's XScale/UUE test)");
    wr(&u, UART_IER, 0);
    wr(&u, UART_MCR, 0xff);
    expect_reg(&u, UART_MCR, 0x1f, "MCR bits 5-7 do not exist on a 16550A");
    expect_reg(&u, UART_MSR, 0xf0, "loopback with all of DTR RTS OUT1 OUT2: DSR CTS RI DCD");
    wr(&u, UART_MCR, 0);
    wr(&u, UART_FCR, 0xe7);
    expect_reg(&u, UART_IIR, 0xc1, "FCR bit 5 (a 16750's 64-byte FIFO) is ignored: IIR bits 5-4 stay 0");
    wr(&u, UART_LSR, 0x00);
    expect_reg(&u, UART_LSR, 0x60, "writes to LSR are ignored");
    if (sent != 0)
        fail_msg("no byte was written to THR, yet %d went out", sent);
}

static void uart_bad_register(void **state)
{
    struct lab4_uart u;
    uint8_t v;
    int sent = 0, rc;

    (void)state;
    uart_fresh(&u, &sent);
    rc = lab4_uart_read(&u, 8, &v);
    if (rc != -EINVAL)
        fail_msg("lab4_uart_read(register 8): a 16550A has registers 0..7; expected -EINVAL, got %d", rc);
    rc = lab4_uart_write(&u, 1000, 0);
    if (rc != -EINVAL)
        fail_msg("lab4_uart_write(register 1000): expected -EINVAL, got %d", rc);
}

/* The accesses of Linux's serial8250_do_startup() after the probe, and its THRE-interrupt test (UART_BUG_TXEN). */
static void uart_linux_startup(void **state)
{
    struct lab4_uart u;
    uint8_t lsr = 0, iir = 0;
    int sent = 0;

    (void)state;
    uart_fresh(&u, &sent);
    wr(&u, UART_FCR, UART_FCR_ENABLE_FIFO);
    wr(&u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
    wr(&u, UART_FCR, 0);
    expect_reg(&u, UART_LSR, 0x60, "startup: LSR");
    expect_reg(&u, UART_RX, 0x00, "startup: RBR, nothing received");
    expect_reg(&u, UART_IIR, 0x01, "startup: IIR, FIFOs off, nothing pending");
    expect_reg(&u, UART_MSR, 0xb0, "startup: MSR");
    wr(&u, UART_LCR, UART_LCR_WLEN8);
    wr(&u, UART_IER, UART_IER_THRI);
    assert_int_equal(lab4_uart_read(&u, UART_LSR, &lsr), 0);
    assert_int_equal(lab4_uart_read(&u, UART_IIR, &iir), 0);
    wr(&u, UART_IER, 0);
    if ((lsr & UART_LSR_TEMT) && (iir & UART_IIR_NO_INT))
        fail_msg("Linux enables IER.THRI with the transmitter empty and expects IIR to show it (NO_INT clear); "
                 "got LSR 0x%02x IIR 0x%02x, so Linux would flag the UART with UART_BUG_TXEN",
                 lsr, iir);
}

/* A VM with the standard devices and a vCPU whose registers the test sets: the doorbell's decoder called directly. */
struct hc_vm {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    FILE *console;
    char *out;
    size_t out_len;
};

static void hc_vm_create(struct hc_vm *h)
{
    const struct mvm_backend *be;

    memset(h, 0, sizeof(*h));
    h->console = open_memstream(&h->out, &h->out_len);
    assert_non_null(h->console);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &h->vm), 0);
    assert_int_equal(vm_mem_add(h->vm, 0, 2 << 20, 0), 0);
    assert_int_equal(vm_devices_add_standard(h->vm, h->console), 0);
    assert_int_equal(vcpu_create(h->vm, 0, &h->vcpu), 0);
    assert_int_equal(vcpu_setup_mode(h->vcpu, MVM_MODE_REAL, MVM_BOOT_LOAD_GPA), 0);
}

static void hc_vm_destroy(struct hc_vm *h)
{
    vm_destroy(h->vm);
    fclose(h->console);
    free(h->out);
}

/* Sets RAX and the four argument registers, rings the doorbell with an OUT of `size` bytes, returns RAX. */
static uint64_t ring(struct hc_vm *h, uint64_t rax, uint64_t rbx, uint64_t rcx, uint64_t rsi, uint64_t rdi,
                     uint32_t size, const char *what)
{
    struct kvm_regs r;
    uint64_t rip;
    int rc;

    assert_int_equal(vcpu_regs_get(h->vcpu, &r), 0);
    rip = r.rip;
    r.rax = rax, r.rbx = rbx, r.rcx = rcx, r.rsi = rsi, r.rdi = rdi, r.rdx = MVM_PORT_HYPERCALL;
    assert_int_equal(vcpu_regs_set(h->vcpu, &r), 0);
    rc = lab4_hypercall_dispatch(h->vcpu, size, (uint32_t)rax);
    if (rc != 0)
        fail_msg("%s: lab4_hypercall_dispatch returned %d (%s); a guest's bad request is answered in RAX, the "
                 "VMM goes on",
                 what, rc, rc < 0 ? mvm_error() : mvm_stop_name((enum mvm_stop)rc));
    assert_int_equal(vcpu_regs_get(h->vcpu, &r), 0);
    if (r.rip != rip || r.rbx != rbx || r.rdx != MVM_PORT_HYPERCALL)
        fail_msg("%s: only RAX may change (RIP 0x%llx -> 0x%llx, RBX 0x%llx -> 0x%llx)", what, (unsigned long long)rip,
                 (unsigned long long)r.rip, (unsigned long long)rbx, (unsigned long long)r.rbx);
    return r.rax;
}

static void expect_rax(uint64_t got, int64_t want, const char *what)
{
    if (got != (uint64_t)want)
        fail_msg("%s: RAX = 0x%llx (%lld), expected %lld", what, (unsigned long long)got, (long long)(int64_t)got,
                 (long long)want);
}

static void hypercall_hostile_registers(void **state)
{
    static const char text[] = "exactly this\n";
    struct hc_vm h;

    (void)state;
    hc_vm_create(&h);
    assert_int_equal(vm_write(h.vm, 0x9000, text, sizeof(text) - 1), 0);
    expect_rax(ring(&h, MVM_HC_NOP, 0, 0, 0, 0, 4, "nop"), 0, "nop");
    expect_rax(ring(&h, 0x100000000ull | MVM_HC_NOP, 0, 0, 0, 0, 4, "RAX 0x1_00000001"), -MVM_HC_ENOSYS,
               "the number is all of RAX: 0x100000001 is not MVM_HC_NOP (EAX alone would say it is)");
    expect_rax(ring(&h, 0, 0, 0, 0, 0, 4, "RAX 0"), -MVM_HC_ENOSYS, "number 0");
    expect_rax(ring(&h, ~0ull, 0, 0, 0, 0, 4, "RAX ~0"), -MVM_HC_ENOSYS, "number 2^64-1");
    expect_rax(ring(&h, MVM_HC_NOP, 0, 0, 0, 0, 2, "16-bit OUT"), -MVM_HC_EINVAL, "an OUT of 2 bytes");
    expect_rax(ring(&h, MVM_HC_NOP, 0, 0, 0, 1, 4, "RDI 1"), -MVM_HC_EINVAL, "nop with the 4th argument (RDI) set");
    expect_rax(ring(&h, MVM_HC_CONSOLE_WRITE, 0x9000, 4, 1, 0, 4, "RSI 1"), -MVM_HC_EINVAL,
               "console_write (2 arguments) with the 3rd (RSI) set");
    expect_rax(ring(&h, MVM_HC_CONSOLE_WRITE, 0x1ff800, 0x1000, 0, 0, 4, "past RAM"), -MVM_HC_EFAULT,
               "console_write of 4096 bytes from 0x1ff800: the last 2048 are past the 2 MiB of RAM");
    expect_rax(ring(&h, MVM_HC_CONSOLE_WRITE, ~0ull - 3, 8, 0, 0, 4, "wraps"), -MVM_HC_EFAULT,
               "console_write of a buffer that wraps past 2^64");
    expect_rax(ring(&h, MVM_HC_CONSOLE_WRITE, 0x9000, MVM_HC_CONSOLE_MAX + 1, 0, 0, 4, "len 4097"), -MVM_HC_EINVAL,
               "console_write of 4097 bytes");
    expect_rax(ring(&h, MVM_HC_CONSOLE_WRITE, 0x9000, 1ull << 62, 0, 0, 4, "len 2^62"), -MVM_HC_EINVAL,
               "console_write of 2^62 bytes");
    fflush(h.console);
    if (h.out_len != 0)
        fail_msg("every console_write so far was refused, yet the console got %zu byte(s): \"%.*s\"", h.out_len,
                 (int)h.out_len, h.out);
    expect_rax(ring(&h, MVM_HC_CONSOLE_WRITE, 0x9000, sizeof(text) - 1, 0, 0, 4, "good"), sizeof(text) - 1,
               "console_write of 13 good bytes");
    fflush(h.console);
    if (h.out_len != sizeof(text) - 1 || memcmp(h.out, text, h.out_len))
        fail_msg("console_write(0x9000, 13) must print exactly \"exactly this\\n\"; the console has \"%.*s\"",
                 (int)h.out_len, h.out);
    hc_vm_destroy(&h);
}

/* A hypercall whose service fails (the VMM's failure) or stops the run: the decoder passes that on as is. */
static int hc_fails(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    (void)args;
    *ret = 0;
    if (opaque)
        return MVM_STOP_DONE;
    return mvm_fail(EIO, "the service failed");
}

static void hypercall_errors_pass_through(void **state)
{
    struct hc_vm h;
    struct kvm_regs r;
    int rc;

    (void)state;
    hc_vm_create(&h);
    assert_int_equal(vm_hypercall_register(h.vm, 20, "fails", 0, hc_fails, NULL), 0);
    assert_int_equal(vm_hypercall_register(h.vm, 21, "stops", 0, hc_fails, &h), 0);
    assert_int_equal(vcpu_regs_get(h.vcpu, &r), 0);
    r.rax = 20, r.rbx = r.rcx = r.rsi = r.rdi = 0;
    assert_int_equal(vcpu_regs_set(h.vcpu, &r), 0);
    rc = lab4_hypercall_dispatch(h.vcpu, 4, 20);
    if (rc != -EIO)
        fail_msg("a service that fails with -EIO is the VMM's failure: the decoder must return -EIO, got %d", rc);
    r.rax = 21;
    assert_int_equal(vcpu_regs_set(h.vcpu, &r), 0);
    rc = lab4_hypercall_dispatch(h.vcpu, 4, 21);
    if (rc != MVM_STOP_DONE)
        fail_msg("a service that stops the run (MVM_STOP_DONE) : the decoder must return it, got %d", rc);
    hc_vm_destroy(&h);
}

static void hypercall_exit_dump_exact(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab4/hypercall", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (harness_count_exits(&run, "IO out port=0x0510 size=4 count=1 data=02000000") != 11 ||
        harness_count_exits(&run, "IO out port=0x0510 size=1 count=1 data=01") != 1)
        fail_msg("lab4/hypercall: expected 11 console_write doorbells (data=02000000) and one 8-bit OUT:\n%s",
                 run.exits);
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uart_iir_priorities),
        cmocka_unit_test(uart_overrun_16450_mode),
        cmocka_unit_test(uart_bits_that_do_not_stick),
        cmocka_unit_test(uart_bad_register),
        cmocka_unit_test(uart_linux_startup),
        cmocka_unit_test(hypercall_hostile_registers),
        cmocka_unit_test(hypercall_errors_pass_through),
        cmocka_unit_test(hypercall_exit_dump_exact),
    };

    return harness_main(argc, argv, "lab4_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
