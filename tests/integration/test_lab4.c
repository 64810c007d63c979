/* Lab 4 visible tests: the 16550A's registers (reset, divisor latch, Linux's probe, loopback, FIFO), guests on the
 * UART, the hypercall table, the console's shared buffer, the file service against a hostile guest. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "device.h"
#include "harness.h"
#include "lab4-uart/lab4.h"
#include "lab4_files_util.h"
#include "../../guest-kernels/lab4/bytes.h"

static const char *const reg_names[8] = {"RBR", "IER", "IIR", "LCR", "MCR", "LSR", "MSR", "SCR"};
static const char *const wreg_names[8] = {"THR", "IER", "FCR", "LCR", "MCR", "LSR", "MSR", "SCR"};

/* A UART model on the test's bench: what it transmits lands in `out`. */
struct bench_uart {
    struct lab4_uart u;
    char out[256];
    size_t n;
};

static int capture_tx(void *opaque, uint8_t byte)
{
    struct bench_uart *b = opaque;

    if (b->n < sizeof(b->out) - 1)
        b->out[b->n++] = (char)byte;
    return 0;
}

static void uart_fresh(struct bench_uart *b)
{
    memset(b, 0, sizeof(*b));
    b->u.tx = capture_tx;
    b->u.opaque = b;
    lab4_uart_reset(&b->u);
}

static uint8_t rd(struct bench_uart *b, unsigned reg, const char *why)
{
    uint8_t v = 0xee;
    int rc = lab4_uart_read(&b->u, reg, &v);

    if (rc != 0)
        fail_msg("%s: lab4_uart_read(%s, offset %u) failed: %s", why, reg_names[reg], reg, mvm_error());
    return v;
}

static void wr(struct bench_uart *b, unsigned reg, uint8_t v, const char *why)
{
    int rc = lab4_uart_write(&b->u, reg, v);

    if (rc != 0)
        fail_msg("%s: lab4_uart_write(%s, offset %u, 0x%02x) failed: %s", why, wreg_names[reg], reg, v, mvm_error());
}

static void expect_reg(struct bench_uart *b, unsigned reg, uint8_t want, const char *why)
{
    uint8_t got = rd(b, reg, why);

    if (got != want)
        fail_msg("%s: reading %s (port 0x%x) gave 0x%02x, a 16550A gives 0x%02x", why, reg_names[reg],
                 MVM_PORT_SERIAL + reg, got, want);
}

static void uart_reset_values(void **state)
{
    struct bench_uart b;

    (void)state;
    uart_fresh(&b);
    expect_reg(&b, UART_IER, 0x00, "after reset (datasheet: IER = 0)");
    expect_reg(&b, UART_IIR, 0x01, "after reset (IIR = 0x01: no interrupt pending, FIFOs off)");
    expect_reg(&b, UART_LCR, 0x00, "after reset (LCR = 0)");
    expect_reg(&b, UART_MCR, 0x00, "after reset (MCR = 0)");
    expect_reg(&b, UART_LSR, 0x60, "after reset (LSR = THRE | TEMT)");
    expect_reg(&b, UART_MSR, 0xb0, "after reset (MSR: DCD, DSR, CTS from the line, no delta bits)");
    expect_reg(&b, UART_RX, 0x00, "after reset, nothing received (RBR)");
    wr(&b, UART_SCR, 0x5a, "SCR holds a byte");
    expect_reg(&b, UART_SCR, 0x5a, "the scratch register reads back");
}

static void uart_divisor_latch(void **state)
{
    struct bench_uart b;

    (void)state;
    uart_fresh(&b);
    wr(&b, UART_IER, UART_IER_RDI, "IER before DLAB");
    wr(&b, UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8, "LCR.DLAB on");
    wr(&b, UART_DLL, 0x0c, "DLL (9600 baud)");
    wr(&b, UART_DLM, 0x00, "DLM");
    if (b.n != 0)
        fail_msg("with LCR.DLAB set, offset 0 is the divisor latch (DLL), not THR: nothing may be transmitted, "
                 "but %zu byte(s) went out",
                 b.n);
    expect_reg(&b, UART_DLL, 0x0c, "DLAB=1: offset 0 is DLL");
    expect_reg(&b, UART_DLM, 0x00, "DLAB=1: offset 1 is DLM");
    expect_reg(&b, UART_LCR, 0x83, "LCR reads back");
    wr(&b, UART_LCR, UART_LCR_WLEN8, "LCR.DLAB off: 8N1");
    expect_reg(&b, UART_IER, UART_IER_RDI, "DLAB=0: offset 1 is IER again, untouched by the DLM write");
    wr(&b, UART_TX, 'A', "THR");
    wr(&b, UART_TX, '\n', "THR");
    if (b.n != 2 || memcmp(b.out, "A\n", 2))
        fail_msg("DLAB=0: writes to offset 0 go out through u->tx, one byte each; expected \"A\\n\", got %zu byte(s)",
                 b.n);
    expect_reg(&b, UART_LSR, 0x60, "after transmitting (instant here: THR and the shifter are empty again)");
}

/* One access of a recorded sequence: a write, or a read and what a 16550A returns (-1: not checked). */
struct access {
    bool write;
    unsigned reg;
    int value;
    const char *why;
};

static void replay(struct bench_uart *b, const struct access *seq, size_t n, const char *who)
{
    for (size_t i = 0; i < n; i++) {
        char why[200];

        snprintf(why, sizeof(why), "%s, step %zu (%s)", who, i + 1, seq[i].why);
        if (seq[i].write)
            wr(b, seq[i].reg, (uint8_t)seq[i].value, why);
        else if (seq[i].value < 0)
            (void)rd(b, seq[i].reg, why);
        else
            expect_reg(b, seq[i].reg, (uint8_t)seq[i].value, why);
    }
}

/* The accesses of Linux's autoconfig() (drivers/tty/serial/8250/8250_port.c) on a 16550A, in order. */
static void uart_linux_probe(void **state)
{
    static const struct access probe[] = {
        {false, UART_IER, 0x00, "save IER"},
        {true, UART_IER, 0x00, "IER = 0"},
        {false, UART_IER, 0x00, "IER & 0x0f must read 0"},
        {true, UART_IER, 0x0f, "IER = UART_IER_ALL"},
        {false, UART_IER, 0x0f, "IER & 0x0f must read 0x0f"},
        {true, UART_IER, 0x00, "restore IER"},
        {false, UART_MCR, 0x00, "save MCR"},
        {false, UART_LCR, 0x00, "save LCR"},
        {true, UART_MCR, UART_MCR_LOOP | 0x0a, "MCR = LOOP | OUT2 | RTS"},
        {false, UART_MSR, 0x90, "loopback: MSR & 0xf0 must be 0x90 (DCD from OUT2, CTS from RTS)"},
        {true, UART_MCR, 0x00, "restore MCR"},
        {true, UART_LCR, 0xbf, "LCR = 0xbf (config mode B)"},
        {true, 2, 0x00, "EFR = 0 (on a 16550A: FCR = 0)"},
        {true, UART_LCR, 0x00, "LCR = 0"},
        {true, UART_FCR, UART_FCR_ENABLE_FIFO, "FCR = ENABLE_FIFO"},
        {false, UART_IIR, 0xc1, "IIR >> 6 must be 3: a 16550A"},
        {true, UART_LCR, UART_LCR_DLAB, "LCR = 0x80: EFR probe"},
        {false, UART_IIR, 0xc1, "offset 2 with DLAB on a 16550A is IIR: not 0, so no EFR"},
        {true, UART_LCR, 0xbf, "LCR = 0xbf"},
        {false, UART_IIR, 0xc1, "still IIR: not 0, no EFR"},
        {true, UART_LCR, 0x00, "LCR = 0"},
        {true, UART_FCR, UART_FCR_ENABLE_FIFO | 0x20, "FCR = ENABLE | 64-byte FIFO (16750 test)"},
        {false, UART_IIR, 0xc1, "IIR bit 5 stays 0: no 64-byte FIFO"},
        {true, UART_FCR, UART_FCR_ENABLE_FIFO, "FCR = ENABLE"},
        {false, UART_IER, 0x00, "save IER"},
        {true, UART_IER, 0x40, "IER |= UUE (XScale test)"},
        {false, UART_IER, 0x00, "IER bit 6 must not stick on a 16550A"},
        {true, UART_IER, 0x00, "restore IER"},
        {true, UART_LCR, 0x00, "restore LCR"},
        {true, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT, "clear the FIFOs"},
        {true, UART_FCR, 0x00, "FIFOs off"},
        {false, UART_RX, -1, "read RBR"},
        {true, UART_MCR, 0x00, "restore MCR"},
        {false, UART_LSR, 0x60, "LSR: not 0xff (the 'LSR safety check')"},
    };
    struct bench_uart b;

    (void)state;
    uart_fresh(&b);
    replay(&b, probe, sizeof(probe) / sizeof(probe[0]), "Linux 8250 autoconfig");
}

static void uart_loopback_and_fifo(void **state)
{
    struct bench_uart b;
    uint8_t lsr;

    (void)state;
    uart_fresh(&b);
    wr(&b, UART_FCR, UART_FCR_ENABLE_FIFO, "FIFOs on, trigger 1");
    wr(&b, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1, "loopback with DTR and OUT1");
    expect_reg(&b, UART_MSR, UART_MSR_DSR | UART_MSR_RI, "loopback: DTR -> DSR, OUT1 -> RI");
    for (int i = 0; i < LAB4_UART_FIFO; i++)
        wr(&b, UART_TX, (uint8_t)('a' + i), "THR in loopback");
    if (b.n != 0)
        fail_msg("in loopback the transmitter feeds the receiver: nothing may leave on the line, but %zu byte(s) did",
                 b.n);
    expect_reg(&b, UART_LSR, 0x61, "16 bytes looped back: LSR = DR | THRE | TEMT");
    wr(&b, UART_TX, 'X', "a 17th byte: the FIFO is full");
    expect_reg(&b, UART_LSR, 0x63, "FIFO overrun: LSR.OE (0x02) set, with DR");
    expect_reg(&b, UART_LSR, 0x61, "reading LSR cleared OE");
    for (int i = 0; i < LAB4_UART_FIFO; i++) {
        char why[64];

        snprintf(why, sizeof(why), "RBR, byte %d of the FIFO, oldest first", i + 1);
        expect_reg(&b, UART_RX, (uint8_t)('a' + i), why);
    }
    lsr = rd(&b, UART_LSR, "LSR once the FIFO is empty");
    if (lsr & UART_LSR_DR)
        fail_msg("the FIFO is empty (16 read, the 17th lost to the overrun), but LSR.DR is still set (LSR 0x%02x)",
                 lsr);
    wr(&b, UART_MCR, 0, "loopback off");
    wr(&b, UART_TX, 'z', "THR");
    if (b.n != 1 || b.out[0] != 'z')
        fail_msg("out of loopback THR goes to the line (u->tx) again");
}

static void uart_guest_probes_and_prints(void **state)
{
    static const char hello[] = "Hello through the 16550A: every byte is an IN of LSR and an OUT to THR\n";
    struct guest_run run;
    int thr, lsr;

    (void)state;
    harness_run_guest_mode("lab4/uart", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, hello) || !strstr(run.console, "probe: 16550A"))
        fail_msg("lab4/uart did not print its greeting and probe line:\n%s", run.console);
    /* The polled driver: per byte one IN of LSR (THRE set at once) and one OUT to THR. */
    thr = harness_count_exits(&run, "IO out port=0x03f8 size=1");
    lsr = harness_count_exits(&run, "IO in port=0x03fd size=1");
    if (lsr != (int)sizeof(hello) - 1 + 2 || run.res.exits != 262)
        fail_msg("lab4/uart: expected %zu LSR reads (one per byte of the greeting, one at reset, one in loopback) "
                 "and 262 exits in all; got %d LSR reads, %d THR writes, %llu exits:\n%s",
                 sizeof(hello) - 1 + 2, lsr, thr, (unsigned long long)run.res.exits, run.exits);
    harness_free(&run);
}

static int input_hook(struct mvm_vm *vm, void *opaque)
{
    vm_console_input_set(vm, opaque);
    return 0;
}

static void echo_reads_a_line(void **state)
{
    static char input[] = "hello, lab 4\nleft over";
    FILE *in = fmemopen(input, strlen(input), "r");
    struct guest_run run;
    int rbr;

    (void)state;
    assert_non_null(in);
    harness_run_guest_mode("lab4/echo", HARNESS_MODE_LONG, input_hook, in, &run);
    fclose(in);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "you typed: hello, lab 4\n"))
        fail_msg("lab4/echo was given \"hello, lab 4\\n\" on the UART's receive line and should echo it:\n%s",
                 run.console);
    /* 13 bytes through RBR (the line and its '\n'), plus the one of the probe's loopback test. */
    rbr = harness_count_exits(&run, "IO in port=0x03f8 size=1");
    if (rbr != 14)
        fail_msg("expected 14 reads of RBR (13 received bytes, 1 loopback byte), got %d", rbr);
    harness_free(&run);
}

static void hypercall_guest(void **state)
{
    struct guest_run run;
    int doorbell;

    (void)state;
    harness_run_guest_mode("lab4/hypercall", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "Hello through one hypercall: 46 bytes, 1 exit\n") ||
        !strstr(run.console, "and again from a higher-half buffer\n"))
        fail_msg("MVM_HC_CONSOLE_WRITE must print the guest's buffer; console:\n%s", run.console);
    /* 17 doorbell OUTs: 16 of 32 bits, one of 8. */
    doorbell = harness_count_exits(&run, "IO out port=0x0510");
    if (doorbell != 17)
        fail_msg("lab4/hypercall rings the doorbell 17 times, each one exit; the exit dump has %d:\n%s", doorbell,
                 run.exits);
    if (!strstr(run.console, "11 bad requests refused in RAX"))
        fail_msg("lab4/hypercall did not finish its checks of bad requests:\n%s", run.console);
    harness_free(&run);
}

/* A later lab's hypercall: registered from a hook, as lab 6's vm_init will, and reached through your dispatch. */
static int hc_add(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret)
{
    (void)vcpu;
    ++*(int *)opaque;
    *ret = (int64_t)(args[0] + args[1]);
    return 0;
}

static int add_hook(struct mvm_vm *vm, void *opaque)
{
    return vm_hypercall_register(vm, 16, "add", 2, hc_add, opaque);
}

static void hypercall_table_extends(void **state)
{
    /* Real mode: eax = 16, ebx = 5, ecx = 7, dx = 0x510, out %eax, %dx, hlt. */
    static const uint8_t code[] = {0x66, 0xb8, 0x10, 0, 0, 0, 0x66, 0xbb, 0x05, 0,    0,    0,
                                   0x66, 0xb9, 0x07, 0, 0, 0, 0xba, 0x10, 0x05, 0x66, 0xef, 0xf4};
    struct guest_run run;
    int calls = 0;

    (void)state;
    harness_run_code_mode(code, sizeof(code), HARNESS_MODE_REAL, add_hook, &calls, &run);
    EXPECT_STOP(&run, MVM_STOP_HLT);
    if (calls != 1 || run.regs.rax != 12)
        fail_msg("hypercall 16 (registered by a later lab: RBX + RCX) with RBX=5, RCX=7: expected one call and "
                 "RAX = 12 after the OUT; got %d call(s), RAX = 0x%llx",
                 calls, (unsigned long long)run.regs.rax);
    if (run.res.exits != 2 || harness_count_exits(&run, "IO out port=0x0510 size=4 count=1 data=10000000") != 1)
        fail_msg("expected exactly 2 exits, the doorbell OUT and HLT:\n%s", run.exits);
    harness_free(&run);
}

/* Path (c) of the byte-cost table: a buffer registered once, then one kick OUT per message and no other exit. */
static int shared_params_hook(struct mvm_vm *vm, void *opaque)
{
    const struct lab4_bytes_params p = {.via = LAB4_VIA_SHARED, .size = 16, .count = 3};

    (void)opaque;
    return vm_write(vm, LAB4_BYTES_PARAMS_GPA, &p, sizeof(p));
}

static void console_shared_buffer(void **state)
{
    static const char msg16[] = "abcdefghijklmnop";
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab4/bytes", HARNESS_MODE_LONG, shared_params_hook, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (strcmp(run.console, "abcdefghijklmnopabcdefghijklmnopabcdefghijklmnop") != 0)
        fail_msg("3 kicks of the 16-byte shared buffer must print \"%s\" 3 times, nothing else; the console has "
                 "\"%s\"",
                 msg16, run.console);
    if (run.res.exits != 5 || harness_count_exits(&run, "IO out port=0x0510 size=4 count=1 data=04000000") != 1 ||
        harness_count_exits(&run, "IO out port=0x0511 size=4 count=1 data=10000000") != 3)
        fail_msg("expected 5 exits: one MVM_HC_CONSOLE_SHARE through your doorbell decoder, 3 kicks, GUEST_DONE:\n%s",
                 run.exits);
    harness_free(&run);
}

/* The file service end to end: lab4/files cats hello.txt from the share and writes a copy back. */
static int share_hook(struct mvm_vm *vm, void *opaque)
{
    return lab4_fs_share(vm, opaque);
}

static void files_guest_cats_and_writes(void **state)
{
    static const char copy[] = "copied by lab4/files through MVM_HC_FS_WRITE:\n" FS_HELLO;
    struct guest_run run;
    struct fs_bench b;
    char text[256];
    int doorbell;

    (void)state;
    fs_tree_create(&b);
    harness_run_guest_mode("lab4/files", HARNESS_MODE_LONG, share_hook, b.share, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, FS_HELLO) || !strstr(run.console, "3 escapes refused"))
        fail_msg("lab4/files should print hello.txt (\"%s\") and its last line; the console has:\n%s", FS_HELLO,
                 run.console);
    if (strcmp(fs_get(b.share, "from-guest.txt", text, sizeof(text)), copy) != 0)
        fail_msg("lab4/files writes its copy to from-guest.txt in the share; it holds \"%s\", expected \"%s\"", text,
                 copy);
    /* open, stat, 2 reads (21 bytes, then 0), console_write, 2 closes, open, 2 writes, a refused read, close, 3 opens.
     */
    doorbell = harness_count_exits(&run, "IO out port=0x0510 size=4");
    if (doorbell != 15)
        fail_msg("lab4/files makes 15 hypercalls, one exit each; the exit dump has %d doorbell OUTs:\n%s", doorbell,
                 run.exits);
    harness_free(&run);
    fs_tree_destroy(&b);
}

/* Every way out of the share a guest can spell, refused by the kernel's answer; the sentinel unchanged. */
static void files_path_escapes(void **state)
{
    static const struct {
        const char *path;
        uint64_t flags;
        int64_t want;
        const char *why;
    } escapes[] = {
        {"../outside/secret.txt", MVM_HC_O_RDONLY, -MVM_HC_EXDEV, "'..' out of the share"},
        {"sub/../../outside/secret.txt", MVM_HC_O_RDONLY, -MVM_HC_EXDEV, "'..' twice from a subfolder"},
        {"/etc/passwd", MVM_HC_O_RDONLY, -MVM_HC_EXDEV, "an absolute path"},
        {"../outside/new.txt", MVM_HC_O_WRONLY | MVM_HC_O_CREAT, -MVM_HC_EXDEV, "creating a file beside the share"},
        {"out/secret.txt", MVM_HC_O_RDONLY, -MVM_HC_ELOOP, "through a symlink to a folder outside"},
        {"secret", MVM_HC_O_RDWR, -MVM_HC_ELOOP, "a symlink to a file outside"},
        {"passwd", MVM_HC_O_RDONLY, -MVM_HC_ELOOP, "a symlink to /etc/passwd"},
        {"dangling", MVM_HC_O_WRONLY | MVM_HC_O_CREAT | MVM_HC_O_TRUNC, -MVM_HC_ELOOP,
         "O_CREAT on a dangling symlink that points outside"},
        {"out/new.txt", MVM_HC_O_WRONLY | MVM_HC_O_CREAT, -MVM_HC_ELOOP, "O_CREAT through a symlinked folder"},
    };
    struct fs_bench b;
    char why[160], abs_path[200];
    int64_t fd;

    (void)state;
    fs_bench_create(&b, true);
    for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
        snprintf(why, sizeof(why), "open(\"%s\"): %s", escapes[i].path, escapes[i].why);
        fd = FS_OPEN(&b, escapes[i].path, escapes[i].flags, why);
        fs_expect_refused(fd, why);
        fs_expect(fd, escapes[i].want, why);
    }
    snprintf(abs_path, sizeof(abs_path), "%s/hello.txt", b.share);
    fd = FS_OPEN(&b, abs_path, MVM_HC_O_RDONLY, "an absolute path that names a file inside the share");
    fs_expect(fd, -MVM_HC_EXDEV, "an absolute path, even one into the share (paths are relative to it)");
    /* None of the refusals took a descriptor: the first good open gets 0. */
    fd = FS_OPEN(&b, "sub/../hello.txt", MVM_HC_O_RDONLY, "open(\"sub/../hello.txt\"), which stays inside");
    fs_expect(fd, 0, "open(\"sub/../hello.txt\"): the first descriptor, 0 (refused opens must not take one)");
    fs_expect(FS_READ(&b, 0, FS_BUF_GPA, 64, "read(0, 64)"), sizeof(FS_HELLO) - 1, "read of hello.txt");
    fs_expect(FS_CLOSE(&b, 0, "close(0)"), 0, "close(0)");
    fs_bench_destroy(&b);
}

/* The guest's descriptor table: 16 at most, the lowest free first, bad and closed descriptors refused. */
static void files_descriptor_table(void **state)
{
    static const uint64_t bad_fds[] = {MVM_HC_FS_FDS, 100, ~0ull, 1ull << 32, (1ull << 32) | 1};
    struct fs_bench b;
    char why[120];
    int64_t fd;

    (void)state;
    fs_bench_create(&b, true);
    for (int i = 0; i < MVM_HC_FS_FDS; i++) {
        snprintf(why, sizeof(why), "open %d of hello.txt", i + 1);
        fs_expect(FS_OPEN(&b, "hello.txt", MVM_HC_O_RDONLY, why), i, why);
    }
    fd = FS_OPEN(&b, "hello.txt", MVM_HC_O_RDONLY, "the 17th open");
    fs_expect(fd, -MVM_HC_EMFILE, "the 17th open, with all 16 descriptors taken");
    fs_expect(FS_CLOSE(&b, 3, "close(3)"), 0, "close(3)");
    fs_expect(FS_CLOSE(&b, 3, "close(3) again"), -MVM_HC_EBADF, "closing descriptor 3 twice");
    fs_expect(FS_READ(&b, 3, FS_BUF_GPA, 8, "read(3) after close"), -MVM_HC_EBADF, "reading a closed descriptor");
    fs_expect(FS_OPEN(&b, "hello.txt", MVM_HC_O_RDONLY, "open after close(3)"), 3, "the lowest free descriptor, 3");
    for (size_t i = 0; i < sizeof(bad_fds) / sizeof(bad_fds[0]); i++) {
        snprintf(why, sizeof(why), "close(0x%llx), not a descriptor (all 64 bits count)",
                 (unsigned long long)bad_fds[i]);
        fs_expect(FS_CLOSE(&b, bad_fds[i], why), -MVM_HC_EBADF, why);
        fs_expect(FS_STAT(&b, bad_fds[i], FS_BUF_GPA, why), -MVM_HC_EBADF, why);
    }
    fs_expect(FS_WRITE(&b, 0, FS_BUF_GPA, 4, "write(0)"), -MVM_HC_EBADF, "writing a read-only descriptor");
    for (int i = 0; i < MVM_HC_FS_FDS; i++)
        fs_expect(FS_CLOSE(&b, (uint64_t)i, "closing them all"), 0, "closing each of the 16");
    fd = FS_OPEN(&b, "new.txt", MVM_HC_O_WRONLY | MVM_HC_O_CREAT, "open(\"new.txt\", O_WRONLY | O_CREAT)");
    fs_expect(fd, 0, "creating new.txt in the share");
    fs_expect(FS_READ(&b, 0, FS_BUF_GPA, 4, "read(0)"), -MVM_HC_EBADF, "reading a write-only descriptor");
    fs_bench_destroy(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uart_reset_values),
        cmocka_unit_test(uart_divisor_latch),
        cmocka_unit_test(uart_linux_probe),
        cmocka_unit_test(uart_loopback_and_fifo),
        cmocka_unit_test(uart_guest_probes_and_prints),
        cmocka_unit_test(echo_reads_a_line),
        cmocka_unit_test(hypercall_guest),
        cmocka_unit_test(hypercall_table_extends),
        cmocka_unit_test(console_shared_buffer),
        cmocka_unit_test(files_guest_cats_and_writes),
        cmocka_unit_test(files_path_escapes),
        cmocka_unit_test(files_descriptor_table),
    };

    return harness_main(argc, argv, "lab4", tests, sizeof(tests) / sizeof(tests[0]));
}
