/* Lab 4 hidden tests: IIR priorities and acknowledgement, 16450-mode overrun, bits that must not stick, bad registers,
 * hostile hypercall registers, Linux's start-up sequence, and a hostile guest against the file service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "harness.h"
#include "lab.h"
#include "lab4-uart/lab4.h"
#include "lab4_files_util.h"
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

/* The size of a file of the share on the host, or -1. */
static long long host_size(const struct fs_bench *b, const char *name)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", b->share, name);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Wild pointers, huge lengths, buffers that run off RAM or into MMIO: refused whole, no file changed or moved. */
static void files_hostile_buffers(void **state)
{
    static const char nul_path[] = "hello.txt\0.secret";
    const uint64_t mmio = MVM_VIRTIO_MMIO_BASE; /* lab 5's virtio-mmio registers: a device, not RAM */
    uint8_t fill[32], got[32];
    char text[64];
    struct fs_bench b;
    int64_t rd, wr;

    (void)state;
    fs_bench_create(&b, true);
    /* Paths: pointer, length and NUL. */
    fs_expect(fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", 0x400000, 9, MVM_HC_O_RDONLY, "path past RAM"),
              -MVM_HC_EFAULT, "a path at 0x400000, past the 2 MiB of RAM");
    fs_expect(fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", FS_RAM - 4, 9, MVM_HC_O_RDONLY, "path off RAM"),
              -MVM_HC_EFAULT, "a path whose last 5 bytes are past the end of RAM");
    fs_expect(fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", ~0ull - 3, 9, MVM_HC_O_RDONLY, "path wraps"),
              -MVM_HC_EFAULT, "a path that wraps past 2^64");
    fs_expect(fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", FS_PATH_GPA, 0, MVM_HC_O_RDONLY, "len 0"), -MVM_HC_EINVAL,
              "a path of length 0");
    fs_expect(
        fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", FS_PATH_GPA, MVM_HC_PATH_MAX + 1, MVM_HC_O_RDONLY, "len 256"),
        -MVM_HC_EINVAL, "a path of 256 bytes (MVM_HC_PATH_MAX is 255)");
    fs_expect(fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", FS_PATH_GPA, 1ull << 63, MVM_HC_O_RDONLY, "len 2^63"),
              -MVM_HC_EINVAL, "a path of 2^63 bytes");
    assert_int_equal(vm_write(b.vm, FS_PATH_GPA, nul_path, sizeof(nul_path) - 1), 0);
    fs_expect(fs_call(&b, lab4_hc_fs_open, "lab4_hc_fs_open", FS_PATH_GPA, sizeof(nul_path) - 1, MVM_HC_O_RDONLY,
                      "NUL inside"),
              -MVM_HC_EINVAL, "\"hello.txt\\0.secret\" (17 bytes with a NUL inside: the host would open hello.txt)");

    /* Reads: the destination is checked before the file is read, so a refused read loses no byte. */
    fs_expect(FS_OPEN(&b, "hello.txt", MVM_HC_O_RDONLY, "open hello.txt"), 0, "open hello.txt after the refusals");
    fs_expect(FS_READ(&b, 0, mmio, 8, "read into MMIO"), -MVM_HC_EFAULT, "a read into lab 5's MMIO registers");
    fs_expect(FS_READ(&b, 0, FS_RAM - 4, 16, "read off RAM"), -MVM_HC_EFAULT,
              "a read of 16 bytes into the last 4 of RAM");
    fs_expect(FS_READ(&b, 0, FS_BUF_GPA, MVM_HC_FS_IO_MAX + 1, "read 4097"), -MVM_HC_EINVAL, "a read of 4097 bytes");
    fs_expect(FS_READ(&b, 0, FS_BUF_GPA, ~0ull, "read 2^64-1"), -MVM_HC_EINVAL, "a read of 2^64-1 bytes");
    fs_expect(FS_READ(&b, 0, FS_BUF_GPA, 0, "read 0"), 0, "a read of 0 bytes");
    rd = FS_READ(&b, 0, FS_BUF_GPA, 64, "read 64");
    fs_expect(rd, sizeof(FS_HELLO) - 1, "after the refused reads, hello.txt from its first byte (the offset moved?)");
    assert_int_equal(vm_read(b.vm, FS_BUF_GPA, text, (size_t)rd), 0);
    if (memcmp(text, FS_HELLO, sizeof(FS_HELLO) - 1))
        fail_msg("the read put \"%.*s\" in guest RAM, expected \"%s\"", (int)rd, text, FS_HELLO);

    /* Writes: the whole buffer comes out of the guest before the file sees a byte. */
    fs_expect(FS_OPEN(&b, "out.txt", MVM_HC_O_WRONLY | MVM_HC_O_CREAT | MVM_HC_O_TRUNC, "create out.txt"), 1,
              "create out.txt");
    wr = FS_WRITE(&b, 1, FS_RAM - 100, 200, "write off RAM");
    fs_expect(wr, -MVM_HC_EFAULT, "a write of 200 bytes whose last 100 are past the end of RAM");
    if (host_size(&b, "out.txt") != 0)
        fail_msg("a write refused for its buffer must write nothing, but out.txt has %lld bytes (the first part of "
                 "the buffer went out: copy all of it from the guest first)",
                 host_size(&b, "out.txt"));
    fs_expect(FS_WRITE(&b, 1, mmio, 8, "write from MMIO"), -MVM_HC_EFAULT, "a write from lab 5's MMIO registers");
    fs_expect(FS_WRITE(&b, 1, FS_BUF_GPA, 1ull << 40, "write 2^40"), -MVM_HC_EINVAL, "a write of 2^40 bytes");
    fs_expect(FS_WRITE(&b, 1, FS_BUF_GPA, 5, "write 5"), 5, "a write of 5 good bytes");
    if (strcmp(fs_get(b.share, "out.txt", text, sizeof(text)), "hello") != 0)
        fail_msg("out.txt must hold exactly \"hello\" now; it holds \"%s\"", text);

    /* Stat: all of the struct or nothing. */
    memset(fill, 0xaa, sizeof(fill));
    assert_int_equal(vm_write(b.vm, FS_RAM - 8, fill, 8), 0);
    fs_expect(FS_STAT(&b, 0, FS_RAM - 8, "stat off RAM"), -MVM_HC_EFAULT,
              "stat into the last 8 bytes of RAM (the struct is 24)");
    assert_int_equal(vm_read(b.vm, FS_RAM - 8, got, 8), 0);
    if (memcmp(got, fill, 8))
        fail_msg("a refused stat wrote into the last 8 bytes of RAM: vm_write_gva writes all or nothing");
    fs_expect(FS_STAT(&b, 0, mmio, "stat into MMIO"), -MVM_HC_EFAULT, "stat into MMIO");
    fs_bench_destroy(&b);
}

/* Only the open flags of the ABI; no special files; O_CREAT makes 0644 (less the umask) inside. */
static void files_flags_whitelist(void **state)
{
    static const struct {
        uint64_t flags;
        const char *why;
    } bad[] = {
        {MVM_HC_O_ACCMODE, "access mode 3"},
        {0200000, "O_DIRECTORY"},
        {0200, "O_EXCL"},
        {0400000, "O_NOFOLLOW (the VMM decides that)"},
        {010000000, "O_PATH"},
        {1ull << 32, "bit 32 (all 64 bits count)"},
        {MVM_HC_O_RDONLY | MVM_HC_O_TRUNC, "O_TRUNC without write access"},
    };
    struct fs_bench b;
    char path[256], why[96], text[64];
    struct stat st;
    mode_t mask;
    int64_t fd;

    (void)state;
    fs_bench_create(&b, true);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(why, sizeof(why), "open(\"hello.txt\") with %s", bad[i].why);
        fs_expect(FS_OPEN(&b, "hello.txt", bad[i].flags, why), -MVM_HC_EINVAL, why);
    }
    if (strcmp(fs_get(b.share, "hello.txt", text, sizeof(text)), FS_HELLO) != 0)
        fail_msg("hello.txt changed under refused opens: it holds \"%s\"", text);
    fs_expect(FS_OPEN(&b, "nothere.txt", MVM_HC_O_RDONLY, "no such file"), -MVM_HC_ENOENT,
              "open of a file that does not exist (the kernel's answer, passed on)");
    fs_expect(FS_OPEN(&b, "sub", MVM_HC_O_RDONLY, "a folder"), -MVM_HC_EACCES, "open of a folder: not a regular file");
    snprintf(path, sizeof(path), "%s/fifo", b.share);
    assert_int_equal(mkfifo(path, 0644), 0);
    fs_expect(FS_OPEN(&b, "fifo", MVM_HC_O_RDONLY, "a FIFO"), -MVM_HC_EACCES,
              "open of a FIFO (refused, and without hanging the VMM)");
    fd = FS_OPEN(&b, "sub/made.txt", MVM_HC_O_RDWR | MVM_HC_O_CREAT | MVM_HC_O_APPEND, "create sub/made.txt");
    fs_expect(fd, 0, "creating sub/made.txt, read-write, appending");
    mask = umask(0);
    umask(mask);
    snprintf(path, sizeof(path), "%s/sub/made.txt", b.share);
    if (stat(path, &st) != 0 || (st.st_mode & 07777) != (0644 & ~mask))
        fail_msg("sub/made.txt should exist with mode 0%o (0644 less the umask 0%o)", 0644 & ~mask, mask);
    fs_bench_destroy(&b);
}

/* Without --share, the service answers -ENODEV and has no descriptors at all. */
static void files_no_share(void **state)
{
    struct fs_bench b;

    (void)state;
    fs_bench_create(&b, false);
    fs_expect(FS_OPEN(&b, "hello.txt", MVM_HC_O_RDONLY, "no share"), -MVM_HC_ENODEV, "open without --share");
    fs_expect(FS_READ(&b, 0, FS_BUF_GPA, 8, "no share"), -MVM_HC_EBADF, "read of descriptor 0 without --share");
    fs_expect(FS_CLOSE(&b, 0, "no share"), -MVM_HC_EBADF, "close of descriptor 0 without --share");
    fs_expect(FS_STAT(&b, 0, FS_BUF_GPA, "no share"), -MVM_HC_EBADF, "stat of descriptor 0 without --share");
    fs_bench_destroy(&b);
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
        cmocka_unit_test(files_hostile_buffers),
        cmocka_unit_test(files_flags_whitelist),
        cmocka_unit_test(files_no_share),
    };

    return harness_main(argc, argv, "lab4_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
