/* The minivmm command line: run a lab guest or any flat binary, print its output, exits and verdict. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core_file.h"
#include "device.h"
#include "cli_guard.h"
#include "cli_boot.h"
#include "cli_exec.h"
#include "cli_files.h"
#include "cli_mem.h"
#include "core_irq.h"
#include "cli_pause.h"
#include "gdbstub.h"
#include "lab.h"
#include "lab4-uart/lab4.h"
#include "lab5-virtio/lab5.h"
#include "x86.h"
#include "mvm.h"
#include "trace.h"

static const char usage_text[] =
    "usage: minivmm run [options] (IMAGE | --guest LAB/NAME)\n"
    "       minivmm boot --kernel BZIMAGE [--initrd FILE] [--cmdline TEXT] (minivmm boot --help)\n"
    "       minivmm list\n"
    "       minivmm exec -- PROGRAM [ARGS...]   (KVM programs on soft: exec --help)\n"
    "       minivmm --help | --version\n"
    "\n"
    "Runs a guest in a one-vCPU VM and prints its serial output. Every exit to\n"
    "the VMM can be dumped, one line each, in a format that is identical on the\n"
    "kvm and soft backends.\n"
    "\n"
    "options for run:\n"
    "  -g, --guest LAB/NAME   a built-in guest, e.g. lab1/hello (see 'minivmm list')\n"
    "  -m, --mode MODE        CPU mode to start in: real (lab 1), protected (32-bit, flat segments,\n"
    "                         lab 2) or long (64-bit, lab 3's page tables); default: a built-in\n"
    "                         guest's own mode ('minivmm list'), real for an IMAGE\n"
    "  -l, --load ADDR        guest-physical load address (default 0x1000)\n"
    "  -e, --entry ADDR       guest-physical entry point (default: the load address)\n"
    "  -M, --mem SIZE         guest RAM, with K/M/G suffix (default 2M, at most 4G)\n"
    "      --mem-at GPA:SIZE  more RAM: a slot at GPA, above 4 GiB too (up to 4 times)\n"
    "  -b, --backend NAME     auto (default: kvm if /dev/kvm opens, else soft), kvm, soft\n"
    "  -x, --max-exits N      stop after N exits (default 1000000; 0: no limit)\n"
    "  -t, --timeout MS       stop after MS milliseconds of wall time, counted from the start: opening\n"
    "                         and loading files count too (default 10000; 0: none)\n"
    "  -d, --exits FILE       write the canonical exit dump to FILE ('-': standard output)\n"
    "  -r, --final-regs FILE  write the registers at the end of the run to FILE ('-': standard output)\n"
    "  -q, --quiet            no summary on standard error\n"
    "      --trace FILE       record every exit, with timestamps, to a trace file (mvm-top replay FILE)\n"
    "      --trace-live PATH  publish every exit in a shared-memory feed at PATH (mvm-top live PATH)\n"
    "      --no-kernel-exits  with a trace on kvm: skip the BPF tracer of exits KVM handles in the kernel\n"
    "      --serial-in FILE   the UART's receive line (lab 4) reads FILE ('-': standard input, polled,\n"
    "                         never waited on); without it, nothing arrives\n"
    "      --share DIR        lab 4's file service: the guest's hypercalls open, read, write and stat\n"
    "                         regular files of DIR, and nothing outside it\n"
    "      --net-pcap FILE    lab 5: the frames the guest's virtio-net transmits, as a pcap file\n"
    "                         (tcpdump -r FILE, Wireshark)\n"
    "      --pause-at MS      pause the VM MS milliseconds into the run (>= 1), as a VMM does to snapshot\n"
    "                         or migrate it: KVM_RUN is interrupted (no exit), the VM stands --pause-for MS\n"
    "      --pause-for MS     how long the --pause-at pause lasts\n"
    "      --pause-clock C    guest time over a pause: stop (default: KVM_SET_CLOCK puts back the clock of\n"
    "                         the pause; lab 6's page the same) or jump (the clocks take in the pause)\n"
    "      --migrate-tsc-khz KHZ  the --pause-at pause is a migration to a host whose TSC runs at KHZ kHz\n"
    "                         (KVM_SET_TSC_KHZ; soft, or a kvm host with TSC scaling)\n"
    "      --deterministic    soft backend: guest time (TSC, clocks) from the instruction count, one\n"
    "                         tick per instruction, so two runs give identical traces\n"
    "      --irqchip          KVM_CREATE_IRQCHIP: PIC, IOAPIC, local APIC and its timer in the kernel (HLT\n"
    "                         waits there); the guest raises lines through port 0x520 (abi.h MVM_PORT_IRQ)\n"
    "      --gdb PORT         before the first instruction, wait for gdb on 127.0.0.1:PORT (0: a free port,\n"
    "                         printed) and let it drive the guest; no time limit unless --timeout is given\n"
    "\n"
    "files: IMAGE must be a regular file. An output (-d, -r, --trace, --net-pcap) is created, or a regular file is\n"
    "overwritten; /dev/null, /dev/full and terminals are written in place; a FIFO, socket, directory or\n"
    "other device is refused (never waited on), and so is an output that is the image or another output.\n"
    "--trace-live renames a new feed onto PATH: PATH must be new or an old feed, never another file,\n"
    "a symlink or a device. Every file is checked before any output is opened.\n"
    "\n"
    "signals: SIGUSR1 pauses the running VM (as --pause-at, until SIGUSR2 or the timeout); SIGUSR2 resumes it.\n"
    "\n"
    "exit status: 0 the guest passed (GUEST_DONE) or halted, 1 a GUEST_ASSERT failed,\n"
    "2 bad usage or input (a refused or unopenable file too), 3 the guest crashed (triple fault,\n"
    "internal error), 4 an exit or time limit was hit (or gdb killed the guest), 5 the VMM failed (an output that "
    "could not be\n"
    "written turns 0 into 5; other statuses stand, with the message).\n";

struct run_args {
    const char *image;
    const char *guest;
    const char *mode;
    const char *backend;
    const char *exits_path;
    const char *regs_path;
    uint64_t load_gpa;
    uint64_t entry_gpa;
    bool entry_set;
    uint64_t mem_size;
    uint64_t max_exits;
    uint64_t timeout_ms;
    bool quiet;
    const char *trace_path;
    const char *live_path;
    bool no_kernel_exits;
    const char *serial_in;
    const char *share; /* --share DIR */
    const char *pcap_path;
    uint64_t pause_at_ms;  /* --pause-at; 0: none */
    uint64_t pause_for_ms; /* --pause-for */
    bool pause_clock_runs; /* --pause-clock jump */
    uint32_t migrate_khz;  /* --migrate-tsc-khz */
    bool timeout_set;      /* --timeout given */
    bool gdb;              /* --gdb */
    bool deterministic;    /* --deterministic */
    bool irqchip;          /* --irqchip */
    uint64_t gdb_port;
    struct cli_mem_at mem_at; /* --mem-at */
};

#define usage_error(...) cli_usage_error(NULL, __VA_ARGS__)

static void print_summary(const char *backend, const char *what, const struct mvm_run_result *res)
{
    bool first = true;

    fprintf(stderr, "minivmm: %s on %s: %s after %llu exits (", what, backend, mvm_stop_name(res->stop),
            (unsigned long long)res->exits);
    for (int r = 0; r < MVM_EXIT_REASONS; r++) {
        if (!res->by_reason[r])
            continue;
        fprintf(stderr, "%s%s %llu", first ? "" : ", ", mvm_exit_name((uint32_t)r),
                (unsigned long long)res->by_reason[r]);
        first = false;
    }
    fprintf(stderr, "%s)\n", first ? "none" : "");
    if (res->detail[0])
        fprintf(stderr, "minivmm: %s\n", res->detail);
}

/* The architectural state a guest leaves behind, in a text form that is the same on every backend. */
static int print_final_regs(struct mvm_vcpu *vcpu, FILE *f)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    char text[2048];
    int rc = vcpu_regs_get(vcpu, &r);

    if (rc == 0)
        rc = vcpu_sregs_get(vcpu, &s);
    if (rc < 0)
        return rc;
    fprintf(f, "rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n", r.rax, r.rbx, r.rcx, r.rdx);
    fprintf(f, "rsi=%016llx rdi=%016llx rsp=%016llx rbp=%016llx\n", r.rsi, r.rdi, r.rsp, r.rbp);
    fprintf(f, "r8=%016llx r9=%016llx r10=%016llx r11=%016llx\n", r.r8, r.r9, r.r10, r.r11);
    fprintf(f, "r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n", r.r12, r.r13, r.r14, r.r15);
    fprintf(f, "rip=%016llx rflags=%08llx\n", r.rip, r.rflags);
    /* The hidden part too: each segment's cached base, limit and attributes, the descriptor tables, CR0/CR4/EFER. */
    mvm_sregs_format(&s, text, sizeof(text));
    fputs(text, f);
    return 0;
}

static int verdict(const struct mvm_run_result *res)
{
    switch (res->stop) {
    case MVM_STOP_DONE:
    case MVM_STOP_HLT:
        return EXIT_PASS;
    case MVM_STOP_ASSERT:
        return EXIT_GUEST_FAIL;
    case MVM_STOP_EXIT_LIMIT:
    case MVM_STOP_KILLED:
    case MVM_STOP_TIME_LIMIT:
        return EXIT_LIMIT;
    case MVM_STOP_ERROR:
        return EXIT_VMM;
    default:
        return EXIT_CRASH;
    }
}

/*
 * The --timeout backstop for the parts around the run loop (which has its own
 * timer): an open or read that a hung file system never finishes still ends
 * the run, with status 4. The handler only writes the prepared line and exits.
 */
static char backstop_line[256];

static void on_backstop(int sig)
{
    ssize_t n = write(STDERR_FILENO, backstop_line, strlen(backstop_line));

    (void)sig;
    (void)n;
    _exit(EXIT_LIMIT);
}

static void backstop_arm(uint64_t ms, const char *fmt, uint64_t timeout_ms)
{
    struct sigaction sa;
    struct itimerval it = {.it_value = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000}};

    snprintf(backstop_line, sizeof(backstop_line), fmt, (unsigned long long)timeout_ms);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_backstop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
}

static void backstop_disarm(void)
{
    struct itimerval it = {0};

    setitimer(ITIMER_REAL, &it, NULL);
}

/* The exit trace: a file and/or a live feed; on kvm also the exits KVM handles in the kernel, when BPF can. */
static int trace_start(const struct run_args *a, const struct mvm_backend *be, struct mvm_trace **out)
{
    struct mvm_trace *t;
    int rc;

    *out = NULL;
    if (!a->trace_path && !a->live_path)
        return 0;
    rc = mvm_trace_create(be->name, 4096, &t);
    if (rc < 0)
        return rc;
    if (a->deterministic && be->virtual_ns)
        mvm_trace_clock_set(t, be->virtual_ns); /* before the header, which holds the start time */
    if (!strcmp(be->name, "kvm") && !a->no_kernel_exits && mvm_trace_kernel_enable(t) < 0)
        fprintf(stderr, "minivmm: kernel-side exits are not traced: %s; tracing the exits to userspace only\n",
                mvm_error());
    if (a->trace_path)
        rc = mvm_trace_file_open(t, a->trace_path);
    if (rc == 0 && a->live_path) {
        rc = mvm_trace_live_open(t, a->live_path);
        setvbuf(stdout, NULL, _IOLBF, 0); /* a viewer shows the guest's lines as they come */
    }
    if (rc < 0) {
        mvm_trace_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Closes the trace, with one summary line unless quiet. False when the trace file could not be completed. */
static bool trace_finish(struct mvm_trace *t, bool quiet)
{
    struct mvm_trace_counts c;

    if (!t)
        return true;
    mvm_trace_counts_get(t, &c);
    if (!quiet)
        fprintf(stderr, "minivmm: trace: %llu events (%llu exits to userspace, %llu in-kernel)\n",
                (unsigned long long)c.events, (unsigned long long)c.user, (unsigned long long)c.kernel);
    if (!quiet && c.kernel_on)
        fprintf(stderr, "minivmm: kernel tracer: %llu kvm_exit, %llu kvm_userspace_exit, %llu lost%s\n",
                (unsigned long long)c.kernel_exits, (unsigned long long)c.kernel_to_user, (unsigned long long)c.dropped,
                c.kernel_exits == 0 && c.kernel_to_user ? " (this kernel's KVM fires no kvm:kvm_exit, so exits "
                                                          "it handles itself cannot be seen)"
                                                        : "");
    if (mvm_trace_close(t) < 0) {
        fprintf(stderr, "minivmm: %s\n", mvm_error());
        return false;
    }
    return true;
}

/* Puts the vCPU in --mode at --entry through the labs' set-ups: real (lab 1), protected (lab 2), long (lab 3). */
static int vcpu_setup_for_mode(struct mvm_vcpu *vcpu, const struct run_args *a, size_t image_size)
{
    static const char *const modes[MVM_MODES] = {"real", "protected", "long"};
    enum mvm_mode mode = MVM_MODE_REAL;

    /* What the VMM writes into guest RAM besides the image: the boot GDT, and in long mode the page tables. */
    uint64_t boot_end = !strcmp(a->mode, "long") ? MVM_BOOT_PT_POOL_GPA + MVM_BOOT_PT_POOL_SIZE
                                                 : MVM_BOOT_GDT_GPA + MVM_BOOT_GDT_ENTRIES * 8;

    while (mode < MVM_MODES && strcmp(a->mode, modes[mode]))
        mode++;
    if (mode != MVM_MODE_REAL && a->load_gpa < boot_end && a->load_gpa + image_size > MVM_BOOT_GDT_GPA)
        return mvm_fail(EINVAL,
                        "the image at 0x%llx-0x%llx overlaps what the VMM writes at 0x%x-0x%llx for --mode %s "
                        "(the boot GDT%s)",
                        (unsigned long long)a->load_gpa, (unsigned long long)(a->load_gpa + image_size - 1),
                        MVM_BOOT_GDT_GPA, (unsigned long long)boot_end - 1, a->mode,
                        boot_end > MVM_BOOT_PT_POOL_GPA ? ", page tables" : "");
    /* In long mode the page tables identity-map guest RAM, so the entry's gpa is also its gva. */
    return vcpu_setup_mode(vcpu, mode, a->entry_gpa);
}

/* --net-pcap: lab 5's virtio-net device writes every transmitted frame to `pcap` (the caller closes it). */
static int net_pcap_attach(struct mvm_vm *vm, FILE *pcap)
{
    struct lab5_net *net = lab5_net_find(vm);
    const struct lab5_net_config cfg = {.pcap = pcap, .log = stderr};

    if (!net)
        return mvm_fail(ENODEV, "--net-pcap: this VM has no virtio-net device at 0x%x", MVM_VIRTIO_MMIO_BASE);
    return lab5_net_configure(net, &cfg);
}

static int run_guest(const struct run_args *a)
{
    size_t image_size = 0;
    const struct mvm_backend *be;
    struct mvm_run_opts opts = {.max_exits = a->max_exits};
    struct mvm_run_result res;
    struct mvm_vm *vm = NULL;
    struct mvm_gdb *gdb = NULL;
    struct mvm_vcpu *vcpu;
    char path[PATH_MAX];
    const char *image = a->image;
    const char *const outs[OUT_N] = {a->exits_path, a->regs_path, a->trace_path, a->live_path, a->pcap_path};
    FILE *dump = NULL, *regs = NULL, *serial_in = NULL, *pcap = NULL, *console = stdout;
    struct line_hold *hold = NULL;
    struct watchdog dog;
    pthread_t dog_thread;
    bool dog_on;
    uint64_t start_ns = mvm_trace_now_ns(), used_ms;
    bool written = true;
    struct cli_pauses pauses;
    int rc, status = EXIT_VMM;

    if (a->guest) {
        if (cli_guest_path(a->guest, path, sizeof(path)) < 0)
            return usage_error("bad guest name '%s'", a->guest);
        if (access(path, R_OK) != 0) {
            fprintf(stderr,
                    "minivmm: no built-in guest '%s' (looked for %s; 'minivmm list' shows them, "
                    "'make guests' builds them)\n",
                    a->guest, path);
            return EXIT_USAGE;
        }
        image = path;
    }
    rc = mvm_backend_pick(a->backend, &be);
    if (rc < 0) {
        fprintf(stderr, "minivmm: %s\n", mvm_error());
        return EXIT_USAGE;
    }
    if (a->timeout_ms)
        backstop_arm(a->timeout_ms,
                     "minivmm: --timeout: %llu ms passed while opening or loading files (a hung "
                     "file system?); the guest did not run\n",
                     a->timeout_ms);
    status = EXIT_USAGE; /* a file refused or not opened is bad input */
    rc = cli_files_check(image, outs);
    if (rc == 0 && a->serial_in)
        rc = cli_serial_in_open(a->serial_in, outs, &serial_in);
    if (rc == 0 && a->exits_path)
        rc = cli_output_open(out_opts[OUT_EXITS], a->exits_path, &dump);
    if (rc == 0 && a->regs_path)
        rc = cli_output_open(out_opts[OUT_REGS], a->regs_path, &regs);
    if (rc == 0 && a->pcap_path)
        rc = cli_output_open(out_opts[OUT_PCAP], a->pcap_path, &pcap);
    if (rc == 0)
        rc = trace_start(a, be, &opts.trace);
    if (rc < 0)
        goto out_err;
    opts.exit_dump = dump;
    status = EXIT_VMM;
    rc = vm_create(be, &vm);
    if (rc == 0 && a->irqchip)
        rc = vm_irqchip_create(vm);
    if (rc == 0)
        rc = vm_mem_add(vm, 0, a->mem_size, 0);
    if (rc == 0 && cli_mem_at_add(vm, &a->mem_at) < 0) {
        status = EXIT_USAGE; /* an overlap, or beyond what the backend can map */
        goto out_err;
    }
    if (rc == 0)
        rc = vm_devices_add_standard(vm, console = dump == stdout ? line_hold_open(&hold) : stdout);
    if (rc == 0 && serial_in)
        vm_console_input_set(vm, serial_in);
    if (rc == 0 && pcap)
        rc = net_pcap_attach(vm, pcap);
    if (rc < 0)
        goto out_err;
    if (a->share && lab4_fs_share(vm, a->share) < 0) {
        status = EXIT_USAGE; /* --share names no directory */
        goto out_err;
    }
    rc = vm_load_file(vm, image, a->load_gpa, &image_size);
    if (rc < 0) {
        status = EXIT_USAGE;
        goto out_err;
    }
    rc = vcpu_create(vm, 0, &vcpu);
    if (rc == 0 && a->irqchip)
        rc = vcpu_cpuid_tsc_deadline(vcpu);
    if (rc == 0)
        rc = vcpu_setup_for_mode(vcpu, a, image_size);
    if (rc < 0) {
        if (rc == -EINVAL) /* the set-up refused the entry, load address or image: bad input */
            status = EXIT_USAGE;
        goto out_err;
    }
    /* The run loop gets what is left of --timeout after the set-up. */
    backstop_disarm();
    used_ms = (mvm_trace_now_ns() - start_ns) / 1000000;
    if (a->timeout_ms && used_ms >= a->timeout_ms) {
        fprintf(stderr,
                "minivmm: stopped after %llu ms of wall time (the limit) before the guest ran: opening and "
                "loading files took it all\n",
                (unsigned long long)used_ms);
        status = EXIT_LIMIT;
        goto out;
    }
    opts.max_ms = a->timeout_ms ? (uint32_t)(a->timeout_ms - used_ms) : 0;
    if (a->gdb) {
        rc = mvm_gdb_listen((uint16_t)a->gdb_port, stderr, &gdb);
        if (rc == 0)
            rc = mvm_gdb_attach(gdb, vcpu);
        if (rc < 0)
            goto out_err;
        if (rc == MVM_STOP_KILLED) {
            status = EXIT_LIMIT;
            goto out;
        }
        opts.debug_exit = mvm_gdb_debug_exit;
        opts.debug_opaque = gdb;
    }
    rc = cli_migrate_check(vcpu, a->migrate_khz);
    if (rc == 0)
        rc = cli_pauses_start(&pauses, vcpu, a->pause_at_ms, a->pause_for_ms, a->pause_clock_runs, a->migrate_khz);
    if (rc < 0)
        goto out_err;
    dog_on = !gdb && watchdog_start(&dog, &dog_thread, vcpu, opts.max_ms, a->timeout_ms);
    rc = vcpu_run(vcpu, &opts, &res);
    watchdog_stop(&dog, dog_on, dog_thread);
    cli_pauses_stop(&pauses);
    line_hold_flush(hold);
    if (res.stop == MVM_STOP_TIME_LIMIT)
        snprintf(res.detail, sizeof(res.detail), "stopped after %llu ms of wall time (the limit)",
                 (unsigned long long)a->timeout_ms);
    /* Writing the results may take a second more than --timeout, no longer. */
    used_ms = (mvm_trace_now_ns() - start_ns) / 1000000;
    if (a->timeout_ms)
        backstop_arm((used_ms < a->timeout_ms ? a->timeout_ms - used_ms : 0) + 1000,
                     "minivmm: --timeout: writing the results hung for a second past the %llu ms limit; they are "
                     "incomplete\n",
                     a->timeout_ms);
    if (regs && print_final_regs(vcpu, regs) < 0) {
        fprintf(stderr, "minivmm: --final-regs: %s\n", mvm_error());
        written = false;
    }
    fflush(stdout);
    if (!a->quiet || rc < 0)
        print_summary(be->name, a->guest ? a->guest : image, &res);
    if ((!a->quiet || rc < 0) && res.pauses)
        fprintf(stderr, "minivmm: paused %u time%s, %llu ms in all; guest time %s\n", res.pauses,
                res.pauses == 1 ? "" : "s", (unsigned long long)(res.paused_ns / 1000000),
                a->pause_clock_runs ? "jumped by it (--pause-clock jump)" : "stood still (--pause-clock stop)");
    if (!a->quiet && rc == 0 && res.pauses && a->migrate_khz)
        fprintf(stderr, "minivmm: --migrate-tsc-khz: the VM resumed at a TSC of %u kHz\n", a->migrate_khz);
    status = verdict(&res);
    mvm_gdb_finish(gdb, status, res.detail[0] ? res.detail : mvm_stop_name(res.stop));
    goto out;
out_err:
    fprintf(stderr, "minivmm: %s\n", mvm_error());
out:
    if (!trace_finish(opts.trace, a->quiet))
        written = false;
    if (dump != stdout && !cli_output_close(dump, out_opts[OUT_EXITS], a->exits_path))
        written = false;
    if (regs != stdout && !cli_output_close(regs, out_opts[OUT_REGS], a->regs_path))
        written = false;
    if (!cli_output_close(pcap, out_opts[OUT_PCAP], a->pcap_path))
        written = false;
    if (!cli_output_close(stdout, "", "standard output"))
        written = false;
    if (!written && status == EXIT_PASS)
        status = EXIT_VMM;
    backstop_disarm();
    mvm_gdb_close(gdb);
    vm_destroy(vm);
    if (console != stdout)
        fclose(console);
    if (serial_in && serial_in != stdin)
        fclose(serial_in);
    return status;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"guest", required_argument, NULL, 'g'},
        {"mode", required_argument, NULL, 'm'},
        {"load", required_argument, NULL, 'l'},
        {"entry", required_argument, NULL, 'e'},
        {"mem", required_argument, NULL, 'M'},
        {"backend", required_argument, NULL, 'b'},
        {"max-exits", required_argument, NULL, 'x'},
        {"timeout", required_argument, NULL, 't'},
        {"exits", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},
        {"final-regs", required_argument, NULL, 'r'},
        {"trace", required_argument, NULL, 0x100},
        {"trace-live", required_argument, NULL, 0x101},
        {"no-kernel-exits", no_argument, NULL, 0x102},
        {"serial-in", required_argument, NULL, 0x103},
        {"net-pcap", required_argument, NULL, 0x105},
        {"share", required_argument, NULL, 0x106},
        {"pause-at", required_argument, NULL, 0x110},
        {"pause-for", required_argument, NULL, 0x111},
        {"pause-clock", required_argument, NULL, 0x112},
        {"migrate-tsc-khz", required_argument, NULL, 0x11d},
        {"gdb", required_argument, NULL, 0x113},
        {"deterministic", no_argument, NULL, 0x114},
        {"irqchip", no_argument, NULL, 0x11e},
        {"mem-at", required_argument, NULL, 0x11f},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct run_args a = {
        .backend = "auto",
        .load_gpa = 0x1000,
        .mem_size = 2 << 20,
        .max_exits = 1000000,
        .timeout_ms = 10000,
    };
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":g:m:l:e:M:b:x:t:d:r:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            a.guest = optarg;
            break;
        case 'm':
            a.mode = optarg;
            break;
        case 'b':
            a.backend = optarg;
            break;
        case 'd':
            a.exits_path = optarg;
            break;
        case 'r':
            a.regs_path = optarg;
            break;
        case 0x100:
            a.trace_path = optarg;
            break;
        case 0x101:
            a.live_path = optarg;
            break;
        case 0x102:
            a.no_kernel_exits = true;
            break;
        case 0x103:
            a.serial_in = optarg;
            break;
        case 0x105:
            a.pcap_path = optarg;
            break;
        case 0x106:
            a.share = optarg;
            break;
        case 'q':
            a.quiet = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_PASS;
        case 'l':
            if (!cli_parse_size(optarg, &a.load_gpa, false))
                return usage_error("--load: '%s' is not an address", optarg);
            break;
        case 'e':
            if (!cli_parse_size(optarg, &a.entry_gpa, false))
                return usage_error("--entry: '%s' is not an address", optarg);
            a.entry_set = true;
            break;
        case 'M':
            if (!cli_parse_size(optarg, &a.mem_size, true) || a.mem_size == 0 || a.mem_size > (4ULL << 30) ||
                a.mem_size % 4096)
                return usage_error("--mem: '%s' is not a size of 4K..4G in whole 4 KiB pages", optarg);
            break;
        case 0x11f:
            if (cli_mem_at_parse(&a.mem_at, optarg) != 0)
                return EXIT_USAGE;
            break;
        case 'x':
            if (!cli_parse_size(optarg, &a.max_exits, false))
                return usage_error("--max-exits: '%s' is not a number", optarg);
            break;
        case 't':
            if (!cli_parse_size(optarg, &a.timeout_ms, false) || a.timeout_ms > UINT32_MAX)
                return usage_error("--timeout: '%s' is not a number of milliseconds", optarg);
            a.timeout_set = true;
            break;
        case 0x114:
            a.deterministic = true;
            break;
        case 0x11e:
            a.irqchip = true;
            break;
        case 0x113:
            if (!cli_parse_size(optarg, &a.gdb_port, false) || a.gdb_port > 65535)
                return usage_error("--gdb: '%s' is not a TCP port (0-65535; 0: a free one)", optarg);
            a.gdb = true;
            break;
        case 0x110:
        case 0x111:
            if (!cli_parse_size(optarg, c == 0x110 ? &a.pause_at_ms : &a.pause_for_ms, false) ||
                (c == 0x110 ? a.pause_at_ms : a.pause_for_ms) - 1 >= 0x7fffffff)
                return usage_error("%s: '%s' is not a number of milliseconds from 1 to 2^31 - 1",
                                   c == 0x110 ? "--pause-at" : "--pause-for", optarg);
            break;
        case 0x112:
            if (strcmp(optarg, "stop") && strcmp(optarg, "jump"))
                return usage_error("--pause-clock: '%s': guest time over a pause may 'stop' or 'jump'", optarg);
            a.pause_clock_runs = !strcmp(optarg, "jump");
            break;
        case 0x11d:
            if (cli_tsc_khz_parse(optarg, &a.migrate_khz) < 0)
                return usage_error("%s", mvm_error());
            break;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        a.image = argv[optind++];
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (a.gdb && !a.timeout_set)
        a.timeout_ms = 0; /* the time at gdb's prompt is no run time */
    if (!a.pause_at_ms != !a.pause_for_ms)
        return usage_error("%s", a.pause_at_ms ? "--pause-at needs --pause-for MS (how long the pause lasts)"
                                               : "--pause-for needs --pause-at MS (when the pause begins)");
    if (a.migrate_khz && !a.pause_at_ms)
        return usage_error("--migrate-tsc-khz needs --pause-at MS and --pause-for MS (the pause it happens in)");
    if (a.pcap_path && !strcmp(a.pcap_path, "-"))
        return usage_error("--net-pcap: give a file (standard output carries the guest's console)");
    if (!a.image == !a.guest)
        return usage_error("%s", a.image ? "give either IMAGE or --guest, not both"
                                         : "no guest: give IMAGE or --guest LAB/NAME");
    a.mode = cli_mode_pick(a.mode, a.guest);
    if (a.deterministic && !strcmp(a.backend, "kvm"))
        return usage_error("--deterministic: on kvm the guest's time is the host's TSC; deterministic runs need "
                           "--backend soft");
    if (a.deterministic) { /* read by the soft backend when it makes its first CPU */
        a.backend = "soft";
        setenv("MINIVMM_SOFT_DETERMINISTIC", "1", 1);
    }
    if (strcmp(a.mode, "real") && strcmp(a.mode, "protected") && strcmp(a.mode, "long"))
        return usage_error("--mode '%s': the modes are real, protected and long", a.mode);
    if (!strcmp(a.mode, "long") && a.mem_size < MVM_BOOT_PT_POOL_GPA + MVM_BOOT_PT_POOL_SIZE)
        return usage_error("--mode long needs at least %uK of RAM: the page tables live at 0x%x-0x%x",
                           (MVM_BOOT_PT_POOL_GPA + MVM_BOOT_PT_POOL_SIZE) >> 10, MVM_BOOT_PT_POOL_GPA,
                           MVM_BOOT_PT_POOL_GPA + MVM_BOOT_PT_POOL_SIZE - 1);
    if (!a.entry_set)
        a.entry_gpa = a.load_gpa;
    if (a.entry_gpa >= a.mem_size)
        return usage_error("entry 0x%llx is outside guest RAM (%llu bytes)", (unsigned long long)a.entry_gpa,
                           (unsigned long long)a.mem_size);
    if (a.load_gpa >= a.mem_size)
        return usage_error("load address 0x%llx is outside guest RAM (%llu bytes)", (unsigned long long)a.load_gpa,
                           (unsigned long long)a.mem_size);
    return run_guest(&a);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, stdout);
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("minivmm 0.1 (guest ABI %d)\n", MVM_ABI_VERSION);
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "exec"))
        return cli_exec(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list"))
        return cli_list();
    if (!strcmp(argv[1], "boot"))
        return cli_boot(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", argv[1]);
}
