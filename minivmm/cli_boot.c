/* `minivmm boot`: boots a Linux bzImage (with an initrd and a command line) to its console on COM1, and reports. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot_linux.h"
#include "cli_boot.h"
#include "cli_files.h"
#include "core_file.h"
#include "device.h"
#include "lab5-virtio/lab5.h"
#include "trace.h"

static const char boot_usage[] =
    "usage: minivmm boot --kernel BZIMAGE [--initrd FILE] [--cmdline \"...\"] [options]\n"
    "\n"
    "Boots a Linux kernel with the x86 boot protocol (64-bit entry) on a PC of one vCPU: lab 4's 16550A UART on\n"
    "COM1 (IRQ4) as the console, lab 5's virtio-net on virtio-mmio at 0x3fd00000 (IRQ5), KVM's in-kernel\n"
    "PIC/IOAPIC/LAPIC and PIT, kvmclock. Small ACPI tables name the virtio-mmio device (\"LNRO0005\") and give\n"
    "Linux sleep and reset registers: `poweroff -f` (ACPI S5) and `reboot -f` end the run with status 0, and\n"
    "so does a reset through the i8042 (reboot=k).\n"
    "\n"
    "options:\n"
    "  -k, --kernel FILE      the bzImage (boot protocol 2.12 or later, a 64-bit kernel)\n"
    "  -i, --initrd FILE      an initramfs or initrd, loaded at the top of RAM\n"
    "  -c, --cmdline TEXT     the kernel command line (default \"console=ttyS0 pci=off\": no PCI bus here)\n"
    "      --no-acpi          no ACPI tables: the VMM appends virtio_mmio.device=4K@0x3fd00000:5 instead (for\n"
    "                         kernels with VIRTIO_MMIO_CMDLINE_DEVICES; Debian's has none), and a power-off\n"
    "                         becomes a reboot (give reboot=k)\n"
    "  -M, --mem SIZE         guest RAM, with K/M/G suffix (default 256M; 64M to 1019M, below the virtio window)\n"
    "  -b, --backend NAME     auto (default), kvm, soft\n"
    "  -t, --timeout MS       stop after MS milliseconds of wall time (default 120000; 0: none)\n"
    "  -x, --max-exits N      stop after N exits to the VMM (default 0: no limit)\n"
    "  -d, --exits FILE       the canonical exit dump, one line per exit\n"
    "      --trace FILE       every exit with timestamps (mvm-top replay FILE)\n"
    "      --trace-live PATH  the live exit feed (mvm-top live PATH)\n"
    "      --net-pcap FILE    the frames Linux's virtio-net driver transmits, as a pcap file\n"
    "      --serial-in FILE   COM1's receive line ('-': standard input, for the guest's shell)\n"
    "      --marker TEXT      report when a console line first starts with TEXT (time since the start)\n"
    "      --no-irqchip       no KVM_CREATE_IRQCHIP/PIT2: a polled console, as on a backend without them\n"
    "  -q, --quiet            no summary on standard error\n"
    "\n"
    "exit status: 0 the guest powered off or rebooted, 2 bad usage or input, 3 it crashed (triple fault,\n"
    "internal error, or it halted with no irqchip to wake it), 4 a time or exit limit, 5 the VMM failed.\n";

#define BOOT_DEFAULT_CMDLINE "console=ttyS0 pci=off"
#define BOOT_MEM_MIN         (64ull << 20)

struct boot_args {
    const char *kernel, *initrd, *cmdline, *backend;
    const char *exits_path, *trace_path, *live_path, *pcap_path, *serial_in, *marker;
    uint64_t mem, timeout_ms, max_exits;
    bool quiet, no_irqchip, no_acpi;
};

#define boot_usage_error(...) cli_usage_error("boot", __VA_ARGS__)

/* Reads a whole input file (a regular file only, checked as every input is). 0 or -errno with a message. */
static int file_slurp(const char *what, const char *path, void **buf, size_t *size)
{
    struct stat st;
    int fd = mvm_file_open_input(what, path, &st);
    size_t done = 0;
    uint8_t *b;

    if (fd < 0)
        return fd;
    if (st.st_size <= 0 || (uint64_t)st.st_size > (1ull << 30)) {
        close(fd);
        return mvm_fail(EINVAL, "%s %s: %lld bytes (expected 1 byte to 1 GiB)", what, path, (long long)st.st_size);
    }
    b = malloc((size_t)st.st_size);
    if (!b) {
        close(fd);
        return mvm_fail(ENOMEM, "%s %s: out of memory", what, path);
    }
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, b + done, (size_t)st.st_size - done);

        if (n <= 0) {
            int err = n < 0 ? errno : EIO;

            free(b);
            close(fd);
            return mvm_fail(err, "%s %s: read: %s", what, path, n < 0 ? strerror(err) : "the file shrank");
        }
        done += (size_t)n;
    }
    close(fd);
    *buf = b;
    *size = done;
    return 0;
}

/* The console's far end: standard output, with --marker's watch (the marker at the start of a line). */
struct console_watch {
    const char *marker;
    size_t matched;
    bool line_start;
    uint64_t start_ns, marker_ns;
};

static struct console_watch watch;

static ssize_t console_write(void *cookie, const char *buf, size_t len)
{
    struct console_watch *w = cookie;

    fwrite(buf, 1, len, stdout);
    if (memchr(buf, '\n', len))
        fflush(stdout); /* a viewer or a test reading a pipe sees each line as it comes */
    for (size_t i = 0; w->marker && !w->marker_ns && i < len; i++) {
        if (w->line_start || w->matched)
            w->matched = buf[i] == w->marker[w->matched] ? w->matched + 1 : 0;
        w->line_start = buf[i] == '\n' || buf[i] == '\r';
        if (w->matched && !w->marker[w->matched])
            w->marker_ns = mvm_trace_now_ns();
    }
    return (ssize_t)len;
}

static int console_flush(void *cookie)
{
    (void)cookie;
    return fflush(stdout);
}

static int console_close(void *cookie)
{
    return console_flush(cookie);
}

static void boot_summary(const char *backend, const struct mvm_run_result *res, const struct boot_devs *d,
                         struct mvm_vm *vm, uint64_t run_ns)
{
    struct lab5_net_stats ns;
    struct lab5_net *net = lab5_net_find(vm);
    bool first = true;

    fprintf(stderr, "minivmm: boot on %s: %s after %.3f s and %llu exits (", backend,
            d->powered_off ? "the guest powered off (ACPI S5)"
            : d->reset     ? "the guest reset the machine (a reboot)"
                           : mvm_stop_name(res->stop),
            (double)run_ns / 1e9, (unsigned long long)res->exits);
    for (int r = 0; r < MVM_EXIT_REASONS; r++) {
        if (!res->by_reason[r])
            continue;
        fprintf(stderr, "%s%s %llu", first ? "" : ", ", mvm_exit_name((uint32_t)r),
                (unsigned long long)res->by_reason[r]);
        first = false;
    }
    fprintf(stderr, "%s)\n", first ? "none" : "");
    if (res->detail[0] && !d->reset && !d->powered_off)
        fprintf(stderr, "minivmm: %s\n", res->detail);
    if (watch.marker && watch.marker_ns)
        fprintf(stderr, "minivmm: marker \"%s\" on the console after %.3f s\n", watch.marker,
                (double)(watch.marker_ns - watch.start_ns) / 1e9);
    else if (watch.marker)
        fprintf(stderr, "minivmm: marker \"%s\" never appeared at the start of a console line\n", watch.marker);
    fprintf(stderr,
            "minivmm: interrupts raised: IRQ4 (COM1) %llu, IRQ5 (virtio-net) %llu%s; ports nobody "
            "claimed: %llu accesses\n",
            (unsigned long long)d->irq_raised[BOOT_IRQ_COM1], (unsigned long long)d->irq_raised[BOOT_IRQ_VIRTIO],
            d->irqchip ? "" : " (no irqchip: lines not wired)", (unsigned long long)res->unhandled_io);
    if (net) {
        lab5_net_stats_get(net, &ns);
        fprintf(stderr,
                "minivmm: virtio-net: status 0x%x, features 0x%llx, %llu frames (%llu bytes) sent, %llu kicks\n",
                ns.status, (unsigned long long)ns.features, (unsigned long long)ns.tx_frames,
                (unsigned long long)ns.tx_bytes, (unsigned long long)(ns.kicks[0] + ns.kicks[1]));
    }
}

static int boot_verdict(const struct mvm_run_result *res, const struct boot_devs *d)
{
    if (d->reset || d->powered_off)
        return EXIT_PASS;
    switch (res->stop) {
    case MVM_STOP_EXIT_LIMIT:
    case MVM_STOP_TIME_LIMIT:
        return EXIT_LIMIT;
    case MVM_STOP_ERROR:
        return EXIT_VMM;
    default:
        return EXIT_CRASH; /* a halt with no irqchip to wake the vCPU is a stop too, not a finish */
    }
}

static int boot_run(const struct boot_args *a)
{
    const struct mvm_backend *be;
    struct mvm_linux_image img;
    struct mvm_run_opts opts = {.max_exits = a->max_exits, .max_ms = (uint32_t)a->timeout_ms};
    struct mvm_run_result res = {0};
    struct boot_devs devs = {0};
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu;
    void *bz = NULL, *initrd = NULL;
    size_t bz_size = 0, initrd_size = 0;
    FILE *dump = NULL, *pcap = NULL, *serial_in = NULL, *console = NULL;
    char *cmdline = NULL;
    int rc, status = EXIT_USAGE;
    uint64_t t0;
    static const cookie_io_functions_t console_io = {.write = console_write, .close = console_close};

    watch = (struct console_watch){.marker = a->marker && a->marker[0] ? a->marker : NULL, .line_start = true};
    rc = mvm_backend_pick(a->backend, &be);
    if (rc == 0)
        rc = file_slurp("kernel", a->kernel, &bz, &bz_size);
    if (rc == 0)
        rc = mvm_linux_parse(bz, bz_size, &img);
    if (rc == 0 && a->initrd)
        rc = file_slurp("initrd", a->initrd, &initrd, &initrd_size);
    if (rc == 0 && a->exits_path)
        rc = cli_output_open("--exits", a->exits_path, &dump);
    if (rc == 0 && a->pcap_path)
        rc = cli_output_open("--net-pcap", a->pcap_path, &pcap);
    if (rc == 0 && a->serial_in)
        rc = cli_serial_in_open(
            a->serial_in, (const char *const[OUT_N]){a->exits_path, NULL, a->trace_path, a->live_path, a->pcap_path},
            &serial_in);
    if (rc == 0 && (a->trace_path || a->live_path)) {
        rc = mvm_trace_create(be->name, 4096, &opts.trace);
        if (rc == 0 && !strcmp(be->name, "kvm") && mvm_trace_kernel_enable(opts.trace) < 0)
            fprintf(stderr, "minivmm: kernel-side exits are not traced: %s\n", mvm_error());
        if (rc == 0 && a->trace_path)
            rc = mvm_trace_file_open(opts.trace, a->trace_path);
        if (rc == 0 && a->live_path)
            rc = mvm_trace_live_open(opts.trace, a->live_path);
    }
    if (rc < 0)
        goto out_err;
    status = EXIT_VMM;
    opts.exit_dump = dump;
    if ((a->no_acpi ? asprintf(&cmdline, "%s virtio_mmio.device=%uK@0x%x:%u", a->cmdline, MVM_VIRTIO_MMIO_SIZE >> 10,
                               MVM_VIRTIO_MMIO_BASE, BOOT_IRQ_VIRTIO)
                    : asprintf(&cmdline, "%s", a->cmdline)) < 0) {
        cmdline = NULL;
        rc = mvm_fail(ENOMEM, "boot: out of memory");
        goto out_err;
    }
    console = fopencookie(&watch, "w", console_io);
    if (!console) {
        rc = mvm_fail(ENOMEM, "boot: out of memory");
        goto out_err;
    }
    rc = vm_create(be, &vm);
    if (rc == 0)
        rc = vm_mem_add(vm, 0, a->mem, 0);
    if (rc == 0) {
        devs.vm = vm;
        devs.irqchip = !a->no_irqchip;
        rc = vm_linux_prepare(vm, devs.irqchip);
        if (rc < 0 && devs.irqchip && rc != -ENOMEM) {
            /* A backend without an in-kernel irqchip (soft, for now): go on with a polled console. */
            fprintf(stderr,
                    "minivmm: boot: %s; going on without an irqchip (a polled console, no timer "
                    "interrupts)\n",
                    mvm_error());
            devs.irqchip = false;
            rc = vm_linux_prepare(vm, false);
        }
    }
    if (rc == 0)
        rc = boot_devices_add(&devs, console, serial_in, pcap);
    if (rc == 0 && !a->no_acpi)
        rc = vm_linux_acpi_write(vm, MVM_VIRTIO_MMIO_BASE, MVM_VIRTIO_MMIO_SIZE, BOOT_IRQ_VIRTIO, &img.acpi_rsdp_gpa);
    if (rc == 0)
        rc = vm_linux_load(vm, &img, bz, bz_size, initrd, initrd_size, cmdline, a->mem);
    if (rc == -EINVAL)
        status = EXIT_USAGE; /* it does not fit: more --mem, a shorter command line */
    if (rc == 0)
        rc = vcpu_create(vm, 0, &vcpu);
    if (rc == 0)
        rc = vcpu_linux_setup(vcpu, &img);
    if (rc < 0)
        goto out_err;
    free(bz);
    free(initrd);
    bz = initrd = NULL;
    if (!a->quiet)
        fprintf(stderr,
                "minivmm: booting Linux %s (boot protocol %u.%02u) on %s: %llu MiB, initrd %zu bytes at 0x%llx, "
                "entry 0x%llx\nminivmm: command line: %s\n",
                img.version[0] ? img.version : "(no version string)", img.protocol >> 8, img.protocol & 0xff, be->name,
                (unsigned long long)(a->mem >> 20), initrd_size, (unsigned long long)img.initrd_gpa,
                (unsigned long long)img.entry_gpa, cmdline);
    t0 = watch.start_ns = mvm_trace_now_ns();
    rc = vcpu_run(vcpu, &opts, &res);
    boot_devices_stop(&devs);
    fflush(console);
    fflush(stdout);
    if (rc < 0 && res.stop == MVM_STOP_NONE)
        res.stop = MVM_STOP_ERROR;
    if (!a->quiet || rc < 0)
        boot_summary(be->name, &res, &devs, vm, mvm_trace_now_ns() - t0);
    status = boot_verdict(&res, &devs);
    goto out;
out_err:
    fprintf(stderr, "minivmm: %s\n", mvm_error());
out:
    boot_devices_stop(&devs);
    if (opts.trace && mvm_trace_close(opts.trace) < 0) {
        fprintf(stderr, "minivmm: %s\n", mvm_error());
        status = status == EXIT_PASS ? EXIT_VMM : status;
    }
    vm_destroy(vm);
    if (dump && !cli_output_close(dump, "--exits", a->exits_path) && status == EXIT_PASS)
        status = EXIT_VMM;
    if (pcap && !cli_output_close(pcap, "--net-pcap", a->pcap_path) && status == EXIT_PASS)
        status = EXIT_VMM;
    if (console)
        fclose(console);
    if (serial_in && serial_in != stdin)
        fclose(serial_in);
    free(cmdline);
    free(bz);
    free(initrd);
    return status;
}

int cli_boot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, 'k'},
        {"initrd", required_argument, NULL, 'i'},
        {"cmdline", required_argument, NULL, 'c'},
        {"mem", required_argument, NULL, 'M'},
        {"backend", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"max-exits", required_argument, NULL, 'x'},
        {"exits", required_argument, NULL, 'd'},
        {"trace", required_argument, NULL, 0x100},
        {"trace-live", required_argument, NULL, 0x101},
        {"net-pcap", required_argument, NULL, 0x102},
        {"serial-in", required_argument, NULL, 0x103},
        {"marker", required_argument, NULL, 0x104},
        {"no-irqchip", no_argument, NULL, 0x105},
        {"no-acpi", no_argument, NULL, 0x106},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct boot_args a = {
        .cmdline = BOOT_DEFAULT_CMDLINE,
        .backend = "auto",
        .mem = 256ull << 20,
        .timeout_ms = 120000,
    };
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":k:i:c:M:b:t:x:d:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            a.kernel = optarg;
            break;
        case 'i':
            a.initrd = optarg;
            break;
        case 'c':
            a.cmdline = optarg;
            break;
        case 'b':
            a.backend = optarg;
            break;
        case 'd':
            a.exits_path = optarg;
            break;
        case 0x100:
            a.trace_path = optarg;
            break;
        case 0x101:
            a.live_path = optarg;
            break;
        case 0x102:
            a.pcap_path = optarg;
            break;
        case 0x103:
            a.serial_in = optarg;
            break;
        case 0x104:
            a.marker = optarg;
            break;
        case 0x105:
            a.no_irqchip = true;
            break;
        case 0x106:
            a.no_acpi = true;
            break;
        case 'q':
            a.quiet = true;
            break;
        case 'h':
            fputs(boot_usage, stdout);
            return EXIT_PASS;
        case 'M':
            if (!cli_parse_size(optarg, &a.mem, true) || a.mem < BOOT_MEM_MIN || a.mem > MVM_VIRTIO_MMIO_BASE ||
                a.mem % 4096)
                return boot_usage_error("--mem: '%s' is not a size of 64M to %uM (RAM ends below the virtio-mmio "
                                        "window at 0x%x) in whole 4 KiB pages",
                                        optarg, MVM_VIRTIO_MMIO_BASE >> 20, MVM_VIRTIO_MMIO_BASE);
            break;
        case 't':
            if (!cli_parse_size(optarg, &a.timeout_ms, false) || a.timeout_ms > UINT32_MAX)
                return boot_usage_error("--timeout: '%s' is not a number of milliseconds", optarg);
            break;
        case 'x':
            if (!cli_parse_size(optarg, &a.max_exits, false))
                return boot_usage_error("--max-exits: '%s' is not a number", optarg);
            break;
        case ':':
            return boot_usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return boot_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return boot_usage_error("unexpected argument '%s'", argv[optind]);
    if (!a.kernel)
        return boot_usage_error("no kernel: give --kernel BZIMAGE");
    if ((a.exits_path && !strcmp(a.exits_path, "-")) || (a.pcap_path && !strcmp(a.pcap_path, "-")))
        return boot_usage_error("--exits and --net-pcap need a file (standard output carries the console)");
    return boot_run(&a);
}
