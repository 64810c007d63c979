/* The guest fuzzer: random and mutated guest images run in real, protected and long mode on the soft backend. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_guest.h"
#include "lab_parts.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define fuzz_leak_check() __lsan_do_recoverable_leak_check()
#endif
#endif
#ifndef fuzz_leak_check
#define fuzz_leak_check() 0
#endif

static const char usage_text[] =
    "usage: fuzz-guest [options]            fuzz: fresh VMs, one run each, batches in forked children\n"
    "       fuzz-guest --replay FILE...     run saved inputs in this process, one line each\n"
    "\n"
    "  -n, --runs N          guest runs in all (default 1000)\n"
    "  -s, --seconds S       stop starting runs after S seconds (default: no limit)\n"
    "  -S, --seed N          the seed: run i's input depends only on (seed, i) and the corpus (default 1)\n"
    "  -j, --jobs J          parallel workers (default 1)\n"
    "  -b, --batch B         runs per forked child (default 32)\n"
    "  -c, --corpus DIR      seeds to mutate (tests/fuzz/corpus/guest); without one, random images only\n"
    "  -o, --out DIR         where reproducers and logs go (default fuzz-out)\n"
    "  -t, --max-ms MS       a run's wall-time limit, as vcpu_run enforces it (default 20)\n"
    "  -L, --long-ms MS      the limit of a long run, 1 in 64 (default 1500)\n"
    "  -x, --max-exits N     a run's exit limit (default 2000)\n"
    "  -g, --hang-ms MS      a run still going MS after its limit is a hang (default 2000)\n"
    "  -m, --mode MODE       real, protected, long or all (default all)\n"
    "  -d, --destroy-every K destroy 1 VM in K at once, keep the others to the child's end, so the next run\n"
    "                        gets a fresh engine, not a pooled one (default 2: half and half)\n"
    "  -p, --progress S      a progress line every S seconds (default 0: none)\n"
    "      --self-test WHAT  plant a crash, hang, ubsan, asan or leak at run 3 (tests the fuzzer itself)\n"
    "\n"
    "exit status: 0 no crash, hang or sanitizer report; 1 some; 2 bad usage.\n";

struct opts {
    uint64_t runs;
    uint64_t seconds;
    uint64_t seed;
    unsigned jobs;
    unsigned batch;
    const char *corpus_dir;
    const char *out_dir;
    struct fuzz_guest_limits lim;
    uint32_t hang_ms;
    int mode; /* -1: all */
    unsigned destroy_every;
    const char *self_test;
    unsigned progress_s; /* a progress line every this many seconds; 0: none */
};

/* What one worker's child shares with its supervisor: it survives the child. */
struct worker_state {
    uint64_t run;          /* index of the run in progress, or the next one */
    uint64_t run_start_ns; /* when it began; 0 between runs */
    uint32_t run_limit_ms; /* its wall-time limit */
    uint64_t deadline_ns;  /* no run starts after this; 0: none */
    uint32_t input_len;
    uint8_t input[FUZZ_GUEST_INPUT_MAX];
    uint64_t runs;
    uint64_t stops[MVM_STOP_ERROR + 1];
    uint64_t vmm_errors;   /* vcpu_run failed or stopped with MVM_STOP_ERROR: saved once per kind */
    uint64_t setup_errors; /* the set-up refused the input (never expected: inputs always fit) */
    uint64_t late;         /* runs that came back, but later than the limit allows */
    uint64_t crashes;      /* the child died of a signal or a sanitizer's deadly-signal report */
    uint64_t sanitizer;    /* ASan/UBSan/LSan reports */
    uint64_t hangs;        /* the supervisor had to kill the child */
    uint64_t saved;        /* reproducers written */
    char vmm_kinds[8][96]; /* distinct VMM errors seen, digits dropped */
    unsigned nvmm_kinds;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Writes `in` to DIR/KIND-HASH.bin, and `note` beside it as .txt; returns the path in buf. */
static void reproducer_save(const char *dir, const char *kind, const uint8_t *in, size_t len, const char *note,
                            char *buf, size_t buflen)
{
    char txt[4200];
    FILE *f;

    snprintf(buf, buflen, "%s/%s-%016llx.bin", dir, kind, (unsigned long long)fnv1a(in, len));
    f = fopen(buf, "wb");
    if (f) {
        fwrite(in, 1, len, f);
        fclose(f);
    }
    if (note && (size_t)snprintf(txt, sizeof(txt), "%.*s.txt", (int)(strlen(buf) - 4), buf) < sizeof(txt)) {
        f = fopen(txt, "w");
        if (f) {
            fputs(note, f);
            fclose(f);
        }
    }
}

/* The distinct kind of a VMM error: its detail without numbers (decimal or 0x hex), so one bug is saved once. */
static void error_kind(const char *detail, char *buf, size_t len)
{
    size_t n = 0;
    const char *p = detail;

    while (*p && n + 1 < len) {
        if (p[0] == '0' && p[1] == 'x') {
            for (p += 2; isxdigit((unsigned char)*p); p++)
                ;
        } else if (isdigit((unsigned char)*p)) {
            while (isdigit((unsigned char)*p))
                p++;
        } else {
            buf[n++] = *p++;
        }
    }
    buf[n] = '\0';
}

static void vmm_error_note(struct worker_state *ws, const struct opts *o, const uint8_t *in, size_t len,
                           const struct fuzz_guest_outcome *out)
{
    char kind[96], path[4096], note[512];

    ws->vmm_errors++;
    error_kind(out->detail, kind, sizeof(kind));
    for (unsigned i = 0; i < ws->nvmm_kinds; i++)
        if (!strcmp(ws->vmm_kinds[i], kind))
            return;
    if (ws->nvmm_kinds == sizeof(ws->vmm_kinds) / sizeof(ws->vmm_kinds[0]))
        return;
    snprintf(ws->vmm_kinds[ws->nvmm_kinds++], sizeof(ws->vmm_kinds[0]), "%s", kind);
    snprintf(note, sizeof(note), "VMM error (vcpu_run rc %d, stop '%s'): %s\n", out->rc, mvm_stop_name(out->stop),
             out->detail);
    reproducer_save(o->out_dir, "vmm-error", in, len, note, path, sizeof(path));
    ws->saved++;
    fprintf(stderr, "fuzz-guest: run %llu: VMM error: %s (saved %s)\n", (unsigned long long)ws->run, out->detail, path);
}

/* The child: runs [first, end) of this worker, one fresh VM each, and exits 0. */
static void child_main(const struct opts *o, const struct fuzz_guest_corpus *corpus, struct worker_state *ws,
                       uint64_t first, uint64_t end)
{
    static struct fuzz_guest_vm *kept[4096];
    unsigned nkept = 0;
    uint8_t in[FUZZ_GUEST_INPUT_MAX];

    for (uint64_t i = first; i < end; i++) {
        struct fuzz_guest_outcome out;
        size_t len;

        if (ws->deadline_ns && now_ns() >= ws->deadline_ns)
            break;
        len = fuzz_guest_input_make(o->seed, i, corpus, o->mode, in, sizeof(in));
        memcpy(ws->input, in, len);
        ws->input_len = (uint32_t)len;
        ws->run = i;
        ws->run_limit_ms = fuzz_guest_limit_ms(in, len, &o->lim);
        __atomic_store_n(&ws->run_start_ns, now_ns(), __ATOMIC_RELEASE);
        if (o->self_test && i == 3)
            fuzz_guest_self_test(o->self_test);
        struct fuzz_guest_vm *vm = fuzz_guest_run(in, len, &o->lim, &out);
        ws->runs++;
        if (out.setup_rc < 0) {
            ws->setup_errors++;
            fprintf(stderr, "fuzz-guest: run %llu: set-up failed: %s\n", (unsigned long long)i, out.detail);
        } else {
            ws->stops[out.stop <= MVM_STOP_ERROR ? out.stop : MVM_STOP_ERROR]++;
            if (out.rc < 0 || out.stop == MVM_STOP_ERROR)
                vmm_error_note(ws, o, in, len, &out);
            if (out.ms > ws->run_limit_ms + o->hang_ms) {
                char path[4096], note[512];

                ws->late++;
                snprintf(note, sizeof(note), "late stop: the run came back after %.0f ms (limit %u ms): %s\n", out.ms,
                         ws->run_limit_ms, out.detail);
                reproducer_save(o->out_dir, "hang", in, len, note, path, sizeof(path));
                ws->saved++;
                fprintf(stderr, "fuzz-guest: run %llu: %s", (unsigned long long)i, note);
            }
        }
        /*
         * Half the VMs stay alive until the child ends: the next run then gets a fresh engine, not one from the
         * soft backend's pool (a bug in a fresh engine's first code-buffer overflow hid behind reused ones).
         */
        if (o->destroy_every <= 1 || i % o->destroy_every == 0 || nkept == sizeof(kept) / sizeof(kept[0]))
            fuzz_guest_vm_destroy(vm);
        else
            kept[nkept++] = vm;
        __atomic_store_n(&ws->run_start_ns, 0, __ATOMIC_RELEASE);
        ws->run = i + 1;
    }
    for (unsigned k = 0; k < nkept; k++)
        fuzz_guest_vm_destroy(kept[k]);
    fflush(NULL);
    /* Leaks: checked once a batch, when every VM is gone (a report blames the batch, not one run). */
    _exit(fuzz_leak_check() ? 1 : 0);
}

/* What a dead child's log says: "ubsan", "asan", "leak" (sanitizer reports) or "crash" (a deadly signal). */
static const char *log_classify(const char *log_path, char *first_line, size_t len)
{
    static const struct {
        const char *needle, *kind;
    } kinds[] = {
        {"AddressSanitizer: SEGV", "crash"},
        {"AddressSanitizer: BUS", "crash"},
        {"AddressSanitizer: FPE", "crash"},
        {"AddressSanitizer: ILL", "crash"},
        {"AddressSanitizer: ABRT", "crash"},
        {"AddressSanitizer: stack-overflow", "crash"},
        {"AddressSanitizer:DEADLYSIGNAL", "crash"},
        {"LeakSanitizer", "leak"},
        {"AddressSanitizer", "asan"},
        {"runtime error:", "ubsan"},
    };
    char line[1024];
    size_t best = sizeof(kinds) / sizeof(kinds[0]);
    FILE *f = fopen(log_path, "r");

    first_line[0] = '\0';
    if (!f)
        return "crash";
    /* The most telling line wins: a deadly signal over the generic ASan banner that comes with it. */
    while (fgets(line, sizeof(line), f)) {
        for (size_t k = 0; k < best; k++) {
            if (!strstr(line, kinds[k].needle))
                continue;
            best = k;
            line[strcspn(line, "\n")] = '\0';
            snprintf(first_line, len, "%s", line);
            break;
        }
    }
    fclose(f);
    return best < sizeof(kinds) / sizeof(kinds[0]) ? kinds[best].kind : "crash";
}

/* Copies the child's log next to the reproducer. */
static void log_keep(const char *log_path, const char *bin_path)
{
    char dst[4200], buf[65536];
    size_t n;
    FILE *in = fopen(log_path, "r"), *out;

    if (!in)
        return;
    snprintf(dst, sizeof(dst), "%.*s.log", (int)(strlen(bin_path) - 4), bin_path);
    out = fopen(dst, "w");
    while (out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    if (out)
        fclose(out);
    fclose(in);
}

/* One worker: the supervisor of a chain of children over runs [first, end); survives their crashes and hangs. */
static void worker_main(const struct opts *o, const struct fuzz_guest_corpus *corpus, struct worker_state *ws,
                        unsigned w, uint64_t first, uint64_t end)
{
    char log_path[4096];
    uint64_t next = first;

    snprintf(log_path, sizeof(log_path), "%s/worker-%u.log", o->out_dir, w);
    while (next < end && !(ws->deadline_ns && now_ns() >= ws->deadline_ns)) {
        uint64_t stop = next + o->batch < end ? next + o->batch : end;
        int status = 0, fd;
        bool hung = false;
        pid_t pid;

        ws->run = next;
        ws->run_start_ns = 0;
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
            perror("fuzz-guest: fork");
            return;
        }
        if (pid == 0) {
            fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0) {
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
            child_main(o, corpus, ws, next, stop);
        }
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            uint64_t started = __atomic_load_n(&ws->run_start_ns, __ATOMIC_ACQUIRE);

            if (r == pid)
                break;
            if (started && now_ns() - started > (uint64_t)(ws->run_limit_ms + o->hang_ms) * 1000000u) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                hung = true;
                break;
            }
            usleep(2000);
        }
        if (!hung && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ws->run >= stop) {
            next = stop;
            continue;
        }
        if (!hung && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            next = ws->run; /* the deadline came */
            break;
        }
        /* The child died or hung. In a run: keep that input and go on after it. Between runs (a leak report
         * at exit): the batch is to blame; keep its last input. */
        char path[4096], first_line[1024] = "", note[1400];
        bool in_run = hung || ws->run_start_ns != 0;
        const char *kind = hung ? "hang" : log_classify(log_path, first_line, sizeof(first_line));

        if (in_run)
            ws->runs++;
        if (hung) {
            ws->hangs++;
            snprintf(note, sizeof(note), "hang: run %llu was still going %u ms after its %u ms limit; killed\n",
                     (unsigned long long)ws->run, o->hang_ms, ws->run_limit_ms);
        } else {
            if (!strcmp(kind, "crash"))
                ws->crashes++;
            else
                ws->sanitizer++;
            snprintf(note, sizeof(note), "%s %s %llu: child %s %d: %s\n", kind, in_run ? "in run" : "after run",
                     (unsigned long long)(in_run ? ws->run : ws->run - 1),
                     WIFSIGNALED(status) ? "killed by signal" : "exited with status",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                     first_line[0] ? first_line : "(no sanitizer report)");
        }
        reproducer_save(o->out_dir, kind, ws->input, ws->input_len, note, path, sizeof(path));
        ws->saved++;
        log_keep(log_path, path);
        fprintf(stderr, "fuzz-guest: reproducer %s: %s", path, note);
        next = in_run ? ws->run + 1 : ws->run;
        ws->run_start_ns = 0;
    }
}

/* One line of totals so far, for long campaigns. */
static void progress_print(const struct worker_state *ws, unsigned jobs, uint64_t start)
{
    uint64_t runs = 0, crashes = 0, hangs = 0, san = 0, vmm = 0;
    double secs = (double)(now_ns() - start) / 1e9;

    for (unsigned w = 0; w < jobs; w++) {
        runs += ws[w].runs;
        crashes += ws[w].crashes;
        hangs += ws[w].hangs + ws[w].late;
        san += ws[w].sanitizer;
        vmm += ws[w].vmm_errors;
    }
    printf("fuzz-guest: progress: runs=%llu crashes=%llu hangs=%llu sanitizer=%llu vmm_errors=%llu seconds=%.0f "
           "runs_per_s=%.1f\n",
           (unsigned long long)runs, (unsigned long long)crashes, (unsigned long long)hangs, (unsigned long long)san,
           (unsigned long long)vmm, secs, secs > 0 ? (double)runs / secs : 0.0);
}

static int replay(const struct opts *o, int argc, char **argv)
{
    int bad = 0;

    for (int i = 0; i < argc; i++) {
        static uint8_t in[FUZZ_GUEST_INPUT_MAX];
        struct fuzz_guest_outcome out;
        ssize_t n;
        int fd = open(argv[i], O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            fprintf(stderr, "fuzz-guest: %s: %s\n", argv[i], strerror(errno));
            bad = 1;
            continue;
        }
        n = read(fd, in, sizeof(in));
        close(fd);
        if (n <= 0) {
            fprintf(stderr, "fuzz-guest: %s: empty or unreadable\n", argv[i]);
            bad = 1;
            continue;
        }
        fuzz_guest_vm_destroy(fuzz_guest_run(in, (size_t)n, &o->lim, &out));
        printf("%s: %s mode: %s after %llu exits in %.1f ms: %s\n", argv[i], fuzz_guest_mode_name(in[0]),
               out.setup_rc < 0 ? "set-up failed" : mvm_stop_name(out.stop), (unsigned long long)out.exits, out.ms,
               out.detail);
        if (out.setup_rc < 0 || out.rc < 0 || out.stop == MVM_STOP_ERROR ||
            out.ms > fuzz_guest_limit_ms(in, (size_t)n, &o->lim) + o->hang_ms)
            bad = 1;
    }
    return bad;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    return s[0] && s[0] != '-' && !*end && !errno;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"runs", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},
        {"jobs", required_argument, NULL, 'j'},
        {"batch", required_argument, NULL, 'b'},
        {"corpus", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"max-ms", required_argument, NULL, 't'},
        {"max-exits", required_argument, NULL, 'x'},
        {"hang-ms", required_argument, NULL, 'g'},
        {"long-ms", required_argument, NULL, 'L'},
        {"progress", required_argument, NULL, 'p'},
        {"mode", required_argument, NULL, 'm'},
        {"destroy-every", required_argument, NULL, 'd'},
        {"replay", no_argument, NULL, 'R'},
        {"self-test", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    struct opts o = {
        .runs = 1000,
        .seed = 1,
        .jobs = 1,
        .batch = 32,
        .out_dir = "fuzz-out",
        .hang_ms = 2000,
        .mode = -1,
        .destroy_every = 2,
        .lim = {.max_ms = 20, .long_ms = FUZZ_GUEST_LONG_MS, .max_exits = 2000},
    };
    struct fuzz_guest_corpus corpus = {0};
    struct worker_state *ws, total = {0};
    bool do_replay = false;
    uint64_t v, start = now_ns();
    int c;

    while ((c = getopt_long(argc, argv, "n:s:S:j:b:c:o:t:L:x:g:m:d:p:h", longopts, NULL)) != -1) {
        bool ok = true;

        switch (c) {
        case 'n':
            ok = parse_u64(optarg, &o.runs);
            break;
        case 's':
            ok = parse_u64(optarg, &o.seconds);
            break;
        case 'S':
            ok = parse_u64(optarg, &o.seed);
            break;
        case 'j':
            ok = parse_u64(optarg, &v) && v >= 1 && v <= 64;
            o.jobs = (unsigned)v;
            break;
        case 'b':
            ok = parse_u64(optarg, &v) && v >= 1 && v <= 4096;
            o.batch = (unsigned)v;
            break;
        case 'c':
            o.corpus_dir = optarg;
            break;
        case 'o':
            o.out_dir = optarg;
            break;
        case 't':
            ok = parse_u64(optarg, &v) && v >= 1 && v <= 60000;
            o.lim.max_ms = (uint32_t)v;
            break;
        case 'L':
            ok = parse_u64(optarg, &v) && v >= 1 && v <= 600000;
            o.lim.long_ms = (uint32_t)v;
            break;
        case 'x':
            ok = parse_u64(optarg, &o.lim.max_exits);
            break;
        case 'g':
            ok = parse_u64(optarg, &v) && v <= 600000;
            o.hang_ms = (uint32_t)v;
            break;
        case 'm':
            o.mode = !strcmp(optarg, "all") ? -1 : fuzz_guest_mode_parse(optarg);
            ok = o.mode >= -1;
            break;
        case 'd':
            ok = parse_u64(optarg, &v) && v >= 1;
            o.destroy_every = (unsigned)v;
            break;
        case 'p':
            ok = parse_u64(optarg, &v) && v <= 86400;
            o.progress_s = (unsigned)v;
            break;
        case 'R':
            do_replay = true;
            break;
        case 'T':
            o.self_test = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            ok = false;
            break;
        }
        if (!ok) {
            fprintf(stderr, "fuzz-guest: bad value for -%c: '%s'\n%s", c, optarg ? optarg : "", usage_text);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines out as they come, and none lost if a sanitizer ends the process */
    if (do_replay)
        return replay(&o, argc - optind, argv + optind);
    if (optind != argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (mkdir(o.out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz-guest: %s: %s\n", o.out_dir, strerror(errno));
        return 2;
    }
    if (o.corpus_dir && fuzz_guest_corpus_load(o.corpus_dir, &corpus) < 0) {
        fprintf(stderr, "fuzz-guest: corpus %s: %s\n", o.corpus_dir, strerror(errno));
        return 2;
    }
    ws = mmap(NULL, o.jobs * sizeof(*ws), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ws == MAP_FAILED) {
        perror("fuzz-guest: mmap");
        return 2;
    }
    printf("fuzz-guest: %llu runs, seed %llu, %u job(s), batches of %u, limits %u ms / %llu exits, modes %s, "
           "%zu corpus inputs\n",
           (unsigned long long)o.runs, (unsigned long long)o.seed, o.jobs, o.batch, o.lim.max_ms,
           (unsigned long long)o.lim.max_exits, o.mode < 0 ? "all" : fuzz_guest_mode_name((uint8_t)o.mode), corpus.n);
    fflush(stdout);
    for (unsigned w = 0; w < o.jobs; w++) {
        pid_t pid;

        ws[w].deadline_ns = o.seconds ? start + o.seconds * 1000000000ull : 0;
        pid = fork();
        if (pid < 0) {
            perror("fuzz-guest: fork");
            return 2;
        }
        if (pid == 0) {
            worker_main(&o, &corpus, &ws[w], w, o.runs * w / o.jobs, o.runs * (w + 1) / o.jobs);
            fflush(NULL);
            _exit(0);
        }
    }
    for (unsigned left = o.jobs, tick = 0; left > 0; tick++) {
        while (left > 0 && waitpid(-1, NULL, WNOHANG) > 0)
            left--;
        if (left > 0 && o.progress_s && tick && tick % (o.progress_s * 10) == 0)
            progress_print(ws, o.jobs, start);
        if (left > 0)
            usleep(100000);
    }
    for (unsigned w = 0; w < o.jobs; w++) {
        total.runs += ws[w].runs;
        for (int s = 0; s <= MVM_STOP_ERROR; s++)
            total.stops[s] += ws[w].stops[s];
        total.vmm_errors += ws[w].vmm_errors;
        total.setup_errors += ws[w].setup_errors;
        total.late += ws[w].late;
        total.crashes += ws[w].crashes;
        total.sanitizer += ws[w].sanitizer;
        total.hangs += ws[w].hangs;
        total.saved += ws[w].saved;
    }
    double secs = (double)(now_ns() - start) / 1e9;

    printf("fuzz-guest: stops:");
    for (int s = MVM_STOP_HLT; s <= MVM_STOP_ERROR; s++)
        printf(" %s %llu%s", mvm_stop_name((enum mvm_stop)s), (unsigned long long)total.stops[s],
               s < MVM_STOP_ERROR ? "," : "\n");
    printf("fuzz-guest: runs=%llu crashes=%llu hangs=%llu sanitizer=%llu vmm_errors=%llu setup_errors=%llu "
           "seconds=%.1f runs_per_s=%.1f saved=%llu out=%s\n",
           (unsigned long long)total.runs, (unsigned long long)total.crashes,
           (unsigned long long)(total.hangs + total.late), (unsigned long long)total.sanitizer,
           (unsigned long long)total.vmm_errors, (unsigned long long)total.setup_errors, secs,
           secs > 0 ? (double)total.runs / secs : 0.0, (unsigned long long)total.saved, o.out_dir);
    fuzz_guest_corpus_free(&corpus);
    munmap(ws, o.jobs * sizeof(*ws));
    return total.crashes || total.hangs || total.late || total.sanitizer || total.setup_errors ? 1 : 0;
}
