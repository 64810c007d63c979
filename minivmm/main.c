/* The minivmm command line: run a lab guest or any flat binary, print its output, exits and verdict. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab_parts.h"
#include "mvm.h"
#include "trace.h"

/* Exit statuses, stable for scripts and the grader. */
enum {
    EXIT_PASS = 0,     /* GUEST_DONE, or a clean HLT */
    EXIT_GUEST_FAIL = 1,
    EXIT_USAGE = 2,    /* bad flags or bad input */
    EXIT_CRASH = 3,    /* triple fault, internal error, unhandled exit */
    EXIT_LIMIT = 4,    /* exit or time limit */
    EXIT_VMM = 5,      /* the VMM itself failed */
};

static const char usage_text[] =
    "usage: minivmm run [options] (IMAGE | --guest LAB/NAME)\n"
    "       minivmm list\n"
    "       minivmm --help | --version\n"
    "\n"
    "Runs a guest in a one-vCPU VM and prints its serial output. Every exit to\n"
    "the VMM can be dumped, one line each, in a format that is identical on the\n"
    "kvm and soft backends.\n"
    "\n"
    "options for run:\n"
    "  -g, --guest LAB/NAME   a built-in guest, e.g. lab1/hello (see 'minivmm list')\n"
    "  -m, --mode MODE        CPU mode to start in: real (default, lab 1), protected (32-bit, flat\n"
    "                         segments, lab 2) or long (64-bit, paging with lab 3's page tables)\n"
    "  -l, --load ADDR        guest-physical load address (default 0x1000)\n"
    "  -e, --entry ADDR       guest-physical entry point (default: the load address)\n"
    "  -M, --mem SIZE         guest RAM, with K/M/G suffix (default 2M, at most 4G)\n"
    "  -b, --backend NAME     auto (default: kvm if /dev/kvm opens, else soft), kvm, soft\n"
    "  -x, --max-exits N      stop after N exits (default 1000000; 0: no limit)\n"
    "  -t, --timeout MS       stop after MS milliseconds of wall time (default 10000; 0: none)\n"
    "  -d, --exits FILE       write the canonical exit dump to FILE ('-': standard output)\n"
    "  -r, --final-regs FILE  write the registers at the end of the run to FILE ('-': standard output)\n"
    "  -q, --quiet            no summary on standard error\n"
    "      --trace FILE       record every exit, with timestamps, to a trace file (mvm-top replay FILE)\n"
    "      --trace-live PATH  publish every exit in a shared-memory feed at PATH (mvm-top live PATH)\n"
    "      --no-kernel-exits  with a trace on kvm: skip the BPF tracer of exits KVM handles in the kernel\n"
    "\n"
    "exit status: 0 the guest passed (GUEST_DONE) or halted, 1 a GUEST_ASSERT failed,\n"
    "2 bad usage or input, 3 the guest crashed (triple fault, internal error),\n"
    "4 an exit or time limit was hit, 5 the VMM failed.\n";

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
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "minivmm: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'minivmm --help')\n");
    return EXIT_USAGE;
}

/* Parses a number with an optional K/M/G suffix; false on garbage or overflow. */
static bool parse_size(const char *s, uint64_t *out, bool suffixes)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s)
        return false;
    if (suffixes && *end) {
        switch (*end) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: return false;
        }
        end++;
    }
    if (*end || (shift && v > (ULLONG_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

/* Built-in guests live in ../guests next to the binary: build/bin/minivmm -> build/guests/. */
static int guest_path(const char *name, char *buf, size_t len)
{
    char exe[PATH_MAX];
    const char *dir = getenv("MINIVMM_GUEST_DIR");
    ssize_t n;

    if (strstr(name, "..") || name[0] == '/')
        return -EINVAL;
    if (!dir) {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
            return -errno;
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        if ((size_t)snprintf(buf, len, "%s/../guests/%s.bin", exe, name) >= len)
            return -ENAMETOOLONG;
        return 0;
    }
    if ((size_t)snprintf(buf, len, "%s/%s.bin", dir, name) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* Lists guests/LAB/NAME.bin, two levels deep. */
static int cmd_list(void)
{
    char root[PATH_MAX], sub[PATH_MAX + 256];
    struct dirent *lab, *g;
    DIR *d, *sd;

    if (guest_path("x", root, sizeof(root)) < 0)
        return EXIT_VMM;
    *strrchr(root, '/') = '\0';
    d = opendir(root);
    if (!d) {
        fprintf(stderr, "minivmm: no built-in guests in %s: %s ('make guests' builds them)\n", root, strerror(errno));
        return EXIT_USAGE;
    }
    printf("built-in guests (minivmm run --guest NAME):\n");
    while ((lab = readdir(d))) {
        if (lab->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", root, lab->d_name);
        sd = opendir(sub);
        if (!sd)
            continue;
        while ((g = readdir(sd))) {
            size_t n = strlen(g->d_name);

            if (n > 4 && !strcmp(g->d_name + n - 4, ".bin"))
                printf("  %s/%.*s\n", lab->d_name, (int)(n - 4), g->d_name);
        }
        closedir(sd);
    }
    closedir(d);
    return EXIT_PASS;
}

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
static int print_final_regs(struct mvm_vcpu *vcpu, const char *path)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    FILE *f;
    int rc = vcpu_regs_get(vcpu, &r);

    if (rc == 0)
        rc = vcpu_sregs_get(vcpu, &s);
    if (rc < 0)
        return rc;
    f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f)
        return mvm_fail(errno, "--final-regs %s: %s", path, strerror(errno));
    fprintf(f, "rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n", r.rax, r.rbx, r.rcx, r.rdx);
    fprintf(f, "rsi=%016llx rdi=%016llx rsp=%016llx rbp=%016llx\n", r.rsi, r.rdi, r.rsp, r.rbp);
    fprintf(f, "r8=%016llx r9=%016llx r10=%016llx r11=%016llx\n", r.r8, r.r9, r.r10, r.r11);
    fprintf(f, "r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n", r.r12, r.r13, r.r14, r.r15);
    fprintf(f, "rip=%016llx rflags=%08llx\n", r.rip, r.rflags);
    fprintf(f, "cr0=%08llx cr3=%016llx cr4=%08llx efer=%llx\n", s.cr0, s.cr3, s.cr4, s.efer);
    fprintf(f, "cs=%04x/%llx ds=%04x/%llx ss=%04x/%llx\n", s.cs.selector, s.cs.base, s.ds.selector, s.ds.base,
            s.ss.selector, s.ss.base);
    if (f != stdout)
        fclose(f);
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
    case MVM_STOP_TIME_LIMIT:
        return EXIT_LIMIT;
    case MVM_STOP_ERROR:
        return EXIT_VMM;
    default:
        return EXIT_CRASH;
    }
}

/* The exit trace: a file and/or a live feed; on kvm also the exits KVM handles in the kernel, when BPF can. */
static int trace_start(const struct run_args *a, const char *backend, struct mvm_trace **out)
{
    struct mvm_trace *t;
    int rc;

    *out = NULL;
    if (!a->trace_path && !a->live_path)
        return 0;
    rc = mvm_trace_create(backend, 4096, &t);
    if (rc < 0)
        return rc;
    if (!strcmp(backend, "kvm") && !a->no_kernel_exits && mvm_trace_kernel_enable(t) < 0)
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
                (unsigned long long)c.kernel_exits, (unsigned long long)c.kernel_to_user,
                (unsigned long long)c.dropped,
                c.kernel_exits == 0 && c.kernel_to_user ? " (this kernel's KVM fires no kvm:kvm_exit, so exits "
                                                          "it handles itself cannot be seen)" : "");
    if (mvm_trace_close(t) < 0) {
        fprintf(stderr, "minivmm: %s\n", mvm_error());
        return false;
    }
    return true;
}

/* Puts the vCPU in --mode at --entry with the lab parts: real (lab 1), protected (lab 2), long (lab 3). */
static int vcpu_setup_for_mode(struct mvm_vm *vm, struct mvm_vcpu *vcpu, const struct run_args *a, size_t image_size)
{
    struct lab3_pt_pool pool = { .base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE };
    uint64_t cr3;
    int rc;

    /* What the VMM writes into guest RAM besides the image: the boot GDT, and in long mode the page tables. */
    uint64_t boot_end = !strcmp(a->mode, "long") ? MVM_BOOT_PT_POOL_GPA + MVM_BOOT_PT_POOL_SIZE
                                                  : MVM_BOOT_GDT_GPA + MVM_BOOT_GDT_ENTRIES * 8;

    if (!strcmp(a->mode, "real"))
        return lab1_vcpu_setup_real(vcpu, a->entry_gpa);
    if (a->load_gpa < boot_end && a->load_gpa + image_size > MVM_BOOT_GDT_GPA)
        return mvm_fail(EINVAL, "the image at 0x%llx-0x%llx overlaps what the VMM writes at 0x%x-0x%llx for --mode %s "
                                "(the boot GDT%s)", (unsigned long long)a->load_gpa,
                        (unsigned long long)(a->load_gpa + image_size - 1), MVM_BOOT_GDT_GPA,
                        (unsigned long long)boot_end - 1, a->mode, boot_end > MVM_BOOT_PT_POOL_GPA ? ", page tables" : "");
    if (!strcmp(a->mode, "protected"))
        return lab2_vcpu_setup_protected(vcpu, a->entry_gpa);
    rc = lab3_page_tables_build(vm, &pool, &cr3);
    /* The page tables identity-map guest RAM, so the entry's gpa is also its gva. */
    return rc < 0 ? rc : lab3_vcpu_setup_long(vcpu, a->entry_gpa, cr3);
}

static int run_guest(const struct run_args *a)
{
    size_t image_size = 0;
    const struct mvm_backend *be;
    struct mvm_run_opts opts = { .max_exits = a->max_exits, .max_ms = (uint32_t)a->timeout_ms };
    struct mvm_run_result res;
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu;
    char path[PATH_MAX];
    const char *image = a->image;
    FILE *dump = NULL;
    int rc, status = EXIT_VMM;

    if (a->guest) {
        if (guest_path(a->guest, path, sizeof(path)) < 0)
            return usage_error("bad guest name '%s'", a->guest);
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "minivmm: no built-in guest '%s' (looked for %s; 'minivmm list' shows them, "
                            "'make guests' builds them)\n", a->guest, path);
            return EXIT_USAGE;
        }
        image = path;
    }
    rc = mvm_backend_pick(a->backend, &be);
    if (rc < 0) {
        fprintf(stderr, "minivmm: %s\n", mvm_error());
        return EXIT_USAGE;
    }
    if (a->exits_path) {
        dump = strcmp(a->exits_path, "-") ? fopen(a->exits_path, "w") : stdout;
        if (!dump) {
            fprintf(stderr, "minivmm: --exits %s: %s\n", a->exits_path, strerror(errno));
            return EXIT_USAGE;
        }
    }
    opts.exit_dump = dump;
    rc = trace_start(a, be->name, &opts.trace);
    if (rc < 0) {
        status = EXIT_USAGE;
        goto out_err;
    }
    rc = vm_create(be, &vm);
    if (rc == 0)
        rc = vm_mem_add(vm, 0, a->mem_size, 0);
    if (rc == 0)
        rc = vm_devices_add_standard(vm, stdout);
    if (rc < 0)
        goto out_err;
    rc = vm_load_file(vm, image, a->load_gpa, &image_size);
    if (rc < 0) {
        status = EXIT_USAGE;
        goto out_err;
    }
    rc = vcpu_create(vm, 0, &vcpu);
    if (rc == 0)
        rc = vcpu_setup_for_mode(vm, vcpu, a, image_size);
    if (rc < 0) {
        if (rc == -EINVAL) /* the set-up refused the entry, load address or image: bad input */
            status = EXIT_USAGE;
        goto out_err;
    }
    rc = vcpu_run(vcpu, &opts, &res);
    if (a->regs_path && print_final_regs(vcpu, a->regs_path) < 0)
        fprintf(stderr, "minivmm: %s\n", mvm_error());
    fflush(stdout);
    if (!a->quiet || rc < 0)
        print_summary(be->name, a->guest ? a->guest : image, &res);
    status = verdict(&res);
    goto out;
out_err:
    fprintf(stderr, "minivmm: %s\n", mvm_error());
out:
    if (!trace_finish(opts.trace, a->quiet) && status == EXIT_PASS)
        status = EXIT_VMM;
    if (dump && dump != stdout)
        fclose(dump);
    vm_destroy(vm);
    return status;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "guest", required_argument, NULL, 'g' },   { "mode", required_argument, NULL, 'm' },
        { "load", required_argument, NULL, 'l' },    { "entry", required_argument, NULL, 'e' },
        { "mem", required_argument, NULL, 'M' },     { "backend", required_argument, NULL, 'b' },
        { "max-exits", required_argument, NULL, 'x' }, { "timeout", required_argument, NULL, 't' },
        { "exits", required_argument, NULL, 'd' },   { "quiet", no_argument, NULL, 'q' },
        { "final-regs", required_argument, NULL, 'r' },
        { "trace", required_argument, NULL, 0x100 }, { "trace-live", required_argument, NULL, 0x101 },
        { "no-kernel-exits", no_argument, NULL, 0x102 },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    struct run_args a = {
        .mode = "real", .backend = "auto", .load_gpa = 0x1000, .mem_size = 2 << 20,
        .max_exits = 1000000, .timeout_ms = 10000,
    };
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":g:m:l:e:M:b:x:t:d:r:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'g': a.guest = optarg; break;
        case 'm': a.mode = optarg; break;
        case 'b': a.backend = optarg; break;
        case 'd': a.exits_path = optarg; break;
        case 'r': a.regs_path = optarg; break;
        case 0x100: a.trace_path = optarg; break;
        case 0x101: a.live_path = optarg; break;
        case 0x102: a.no_kernel_exits = true; break;
        case 'q': a.quiet = true; break;
        case 'h': fputs(usage_text, stdout); return EXIT_PASS;
        case 'l':
            if (!parse_size(optarg, &a.load_gpa, false))
                return usage_error("--load: '%s' is not an address", optarg);
            break;
        case 'e':
            if (!parse_size(optarg, &a.entry_gpa, false))
                return usage_error("--entry: '%s' is not an address", optarg);
            a.entry_set = true;
            break;
        case 'M':
            if (!parse_size(optarg, &a.mem_size, true) || a.mem_size == 0 || a.mem_size > (4ULL << 30) ||
                a.mem_size % 4096)
                return usage_error("--mem: '%s' is not a size of 4K..4G in whole 4 KiB pages", optarg);
            break;
        case 'x':
            if (!parse_size(optarg, &a.max_exits, false))
                return usage_error("--max-exits: '%s' is not a number", optarg);
            break;
        case 't':
            if (!parse_size(optarg, &a.timeout_ms, false) || a.timeout_ms > UINT32_MAX)
                return usage_error("--timeout: '%s' is not a number of milliseconds", optarg);
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
    if (!a.image == !a.guest)
        return usage_error("%s", a.image ? "give either IMAGE or --guest, not both" : "no guest: give IMAGE or --guest LAB/NAME");
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
        return usage_error("load address 0x%llx is outside guest RAM (%llu bytes)",
                           (unsigned long long)a.load_gpa, (unsigned long long)a.mem_size);
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
    if (!strcmp(argv[1], "list"))
        return cmd_list();
    return usage_error("unknown command '%s'", argv[1]);
}
