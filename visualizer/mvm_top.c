/* mvm-top: the exit-trace viewer (ncurses), live or from a trace file, or one summary frame for scripts. */
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"
#include "viz_model.h"

static const char usage_text[] =
    "usage: mvm-top replay FILE          [options]   a trace file from 'minivmm run --trace FILE'\n"
    "       mvm-top live PATH            [options]   attach to 'minivmm run --trace-live PATH'\n"
    "       mvm-top run [options] -- MINIVMM-RUN-ARGS  start 'minivmm run' with a live feed and watch it\n"
    "\n"
    "Shows a VM's exits: counts by reason, the exit rate over time, a histogram of\n"
    "handling times (exit -> ready to re-enter), the busiest ports and addresses,\n"
    "the last exits decoded, and in run mode the guest's output.\n"
    "\n"
    "options:\n"
    "  -s, --summary        print one summary frame and exit (no terminal needed; live/run: at the end)\n"
    "  -x, --speed X        replay speed: 0.001 .. 1000 times real time, or 'max' (default: fit ~10 s)\n"
    "  -p, --paused         start paused (space runs, s steps)\n"
    "  -w, --wait SEC       live: wait up to SEC seconds for the feed to appear (default 10)\n"
    "  -h, --help\n"
    "\n"
    "keys: space pause/run, s step one exit, b step back one, f filter by reason,\n"
    "      +/- speed, r replay from the start (live and run too), h or ? help, q quit.\n"
    "exit status: 0 fine, 1 the trace could not be read, 2 bad usage; run mode: the VMM's status.\n";

enum mode { MODE_REPLAY, MODE_LIVE, MODE_RUN };

#define OUT_LINES  64
#define MAX_EVENTS (8u << 20)

struct viewer {
    enum mode mode;
    const char *name;
    char backend[16];
    uint64_t start_ns;
    struct mvm_trace_event *ev; /* every event so far (replay: the whole file) */
    size_t nev, cap;
    size_t pos; /* events folded into the model */
    uint64_t lost;
    bool finished; /* the source will bring no more events */
    bool has_kernel_counts;
    uint64_t kernel_exits, kernel_to_user, dropped;

    struct mvm_trace_live *live;
    char live_path[PATH_MAX];
    FILE *msgs; /* the VMM's standard error, shown after the screen closes */
    pid_t child;
    int child_status;
    int out_fd;
    char out[OUT_LINES][160]; /* the guest's output, a ring of lines */
    int nout;
    char partial[160];
    size_t npartial;

    struct viz_model m;
    bool paused;
    bool follow; /* live and run: show each event as it comes (until r replays them) */
    int speed;   /* index into speeds */
    double vt;   /* replay clock: ns of trace time since start */
    bool help;
    bool vm_paused; /* live and run: the VMM paused by this viewer (SIGUSR1), until resumed (SIGUSR2) */
};

/*
 * Live and run: pausing the view pauses the VM too (minivmm run pauses on SIGUSR1 until SIGUSR2, guest time
 * standing still), so a lecturer can stop a running guest mid-sentence. Only a process that is minivmm and
 * still writing the feed gets the signal: a stale feed's pid may belong to anything by now.
 */
static void vm_pause(struct viewer *v, bool pause)
{
    char path[64], comm[32] = "";
    pid_t pid;
    FILE *f;

    if (!v->live || pause == v->vm_paused || mvm_trace_live_finished(v->live))
        return;
    pid = v->child ? v->child : mvm_trace_live_pid(v->live);
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    f = pid > 0 ? fopen(path, "re") : NULL;
    if (!f)
        return;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    if (strncmp(comm, "minivmm\n", 8))
        return;
    if (kill(pid, pause ? SIGUSR1 : SIGUSR2) == 0)
        v->vm_paused = pause;
}

static const double speeds[] = {0.001, 0.01, 0.1, 1, 10, 100, 1000, 0}; /* 0: as fast as possible */
#define NSPEEDS ((int)(sizeof(speeds) / sizeof(speeds[0])))

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ns(void)
{
    return mvm_trace_now_ns();
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mvm-top: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'mvm-top --help')\n");
    return 2;
}

/* Time 0 of the graphs and the replay clock: when the vCPU first ran (the first event's entry). */
static void t0_set(struct viewer *v, const struct mvm_trace_event *first)
{
    v->start_ns = first->enter_ns && first->enter_ns < first->exit_ns ? first->enter_ns : first->exit_ns;
    viz_model_init(&v->m, v->start_ns);
}

static bool events_append(struct viewer *v, const struct mvm_trace_event *e, size_t n)
{
    if (!v->nev && n)
        t0_set(v, e);
    if (v->nev + n > v->cap) {
        size_t cap = v->cap ? v->cap : 4096;
        struct mvm_trace_event *p;

        while (cap < v->nev + n)
            cap *= 2;
        if (cap > MAX_EVENTS) {
            v->lost += n;
            return false;
        }
        p = realloc(v->ev, cap * sizeof(*p));
        if (!p) {
            v->lost += n;
            return false;
        }
        v->ev = p;
        v->cap = cap;
    }
    memcpy(v->ev + v->nev, e, n * sizeof(*e));
    v->nev += n;
    return true;
}

/* Rebuilds the model from the first `pos` events (after a filter change or a restart). */
static void model_rebuild(struct viewer *v)
{
    viz_model_init(&v->m, v->start_ns);
    for (size_t i = 0; i < v->pos; i++)
        viz_model_add(&v->m, &v->ev[i]);
}

static void step_one(struct viewer *v)
{
    if (v->pos < v->nev) {
        viz_model_add(&v->m, &v->ev[v->pos]);
        if (v->ev[v->pos].exit_ns > v->start_ns)
            v->vt = (double)(v->ev[v->pos].exit_ns - v->start_ns);
        v->pos++;
    }
}

/* One exit back: the view as it was just before the last exit shown (the model is rebuilt up to there). */
static void step_back(struct viewer *v)
{
    if (v->pos == 0)
        return;
    v->follow = false;
    v->pos--;
    v->vt = v->pos && v->ev[v->pos - 1].exit_ns > v->start_ns ? (double)(v->ev[v->pos - 1].exit_ns - v->start_ns) : 0;
    model_rebuild(v);
}

/* Folds in what is due: live and run follow the feed; replay follows the scaled clock. */
static void advance(struct viewer *v, uint64_t real_dt_ns)
{
    if (v->paused)
        return;
    if (v->follow || speeds[v->speed] == 0) {
        while (v->pos < v->nev)
            step_one(v);
        return;
    }
    v->vt += (double)real_dt_ns * speeds[v->speed];
    while (v->pos < v->nev) {
        uint64_t t = v->ev[v->pos].exit_ns > v->start_ns ? v->ev[v->pos].exit_ns - v->start_ns : 0;

        if ((double)t > v->vt)
            break;
        viz_model_add(&v->m, &v->ev[v->pos]);
        v->pos++;
    }
}

/* Replay speed that plays the whole trace in about ten seconds. */
static int speed_fit(const struct viewer *v)
{
    uint64_t span = v->nev ? v->ev[v->nev - 1].exit_ns - v->start_ns : 0;

    for (int i = 0; i < NSPEEDS - 1; i++)
        if ((double)span / speeds[i] <= 10e9)
            return i;
    return NSPEEDS - 1;
}

static void live_poll(struct viewer *v)
{
    struct mvm_trace_event buf[4096];
    size_t n;

    if (!v->live)
        return;
    do {
        n = mvm_trace_live_read(v->live, buf, sizeof(buf) / sizeof(buf[0]), &v->lost);
        if (n)
            events_append(v, buf, n);
    } while (n == sizeof(buf) / sizeof(buf[0]));
    if (mvm_trace_live_finished(v->live)) {
        /* One last read: the VMM may have published more before it finished. */
        while ((n = mvm_trace_live_read(v->live, buf, sizeof(buf) / sizeof(buf[0]), &v->lost)))
            events_append(v, buf, n);
        v->finished = true;
    }
}

static void out_line_end(struct viewer *v)
{
    v->partial[v->npartial] = '\0';
    snprintf(v->out[v->nout++ % OUT_LINES], sizeof(v->out[0]), "%s", v->partial);
    v->npartial = 0;
}

/* Reads the VMM's output (non-blocking); returns false at end of file. */
static bool child_output_read(struct viewer *v)
{
    char buf[4096];
    ssize_t n;

    if (v->out_fd < 0)
        return false;
    while ((n = read(v->out_fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                out_line_end(v);
            else if (buf[i] == '\r')
                continue;
            else if (v->npartial < sizeof(v->partial) - 1)
                v->partial[v->npartial++] = (buf[i] >= 32 && buf[i] < 127) ? buf[i] : '.';
        }
    }
    if (n == 0) {
        if (v->npartial)
            out_line_end(v);
        close(v->out_fd);
        v->out_fd = -1;
        return false;
    }
    return true;
}

static void child_reap(struct viewer *v, bool block)
{
    int status;

    if (v->child <= 0)
        return;
    if (waitpid(v->child, &status, block ? 0 : WNOHANG) == v->child) {
        v->child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        v->child = 0;
    }
}

/* Attaches to the live feed at path, waiting for it to appear (the VMM creates it when it starts). */
static int live_attach_wait(struct viewer *v, const char *path, double wait_s)
{
    uint64_t deadline = now_ns() + (uint64_t)(wait_s * 1e9);
    int rc;

    for (;;) {
        rc = mvm_trace_live_attach(path, &v->live);
        if (rc == 0)
            break;
        if (rc != -ENOENT || now_ns() > deadline || (v->mode == MODE_RUN && (child_reap(v, false), !v->child)))
            return rc;
        usleep(20000);
    }
    snprintf(v->backend, sizeof(v->backend), "%s", mvm_trace_live_backend(v->live));
    v->start_ns = mvm_trace_live_start_ns(v->live); /* until the first event comes */
    viz_model_init(&v->m, v->start_ns);
    return 0;
}

/* Starts 'minivmm run --trace-live PATH ARGS...', the minivmm next to this binary (or $MINIVMM). */
static int child_start(struct viewer *v, char **args, int nargs)
{
    char exe[PATH_MAX], vmm[PATH_MAX + 16];
    const char *env = getenv("MINIVMM");
    char **argv = calloc((size_t)nargs + 5, sizeof(char *));
    int pfd[2];
    ssize_t n;

    if (!argv)
        return -ENOMEM;
    if (env) {
        snprintf(vmm, sizeof(vmm), "%s", env);
    } else {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0) {
            free(argv);
            return -errno;
        }
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        snprintf(vmm, sizeof(vmm), "%s/minivmm", exe);
    }
    snprintf(v->live_path, sizeof(v->live_path), "%s/mvm-top.%d.live",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    unlink(v->live_path);
    argv[0] = vmm;
    argv[1] = "run";
    argv[2] = "--trace-live";
    argv[3] = v->live_path;
    for (int i = 0; i < nargs; i++)
        argv[4 + i] = args[i];
    v->msgs = tmpfile(); /* NULL: the messages go to our own standard error */
    if (pipe(pfd) != 0) {
        free(argv);
        return -errno;
    }
    v->child = fork();
    if (v->child < 0) {
        free(argv);
        return -errno;
    }
    if (v->child == 0) {
        int devnull = open("/dev/null", O_RDONLY);

        dup2(devnull, 0);
        dup2(pfd[1], 1);
        if (v->msgs)
            dup2(fileno(v->msgs), 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(vmm, argv);
        fprintf(stderr, "mvm-top: cannot run %s: %s\n", vmm, strerror(errno));
        _exit(127);
    }
    free(argv);
    close(pfd[1]);
    v->out_fd = pfd[0];
    fcntl(v->out_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

static const char *mode_name(enum mode m)
{
    return m == MODE_REPLAY ? "replay" : m == MODE_LIVE ? "live" : "run";
}

static void speed_text(const struct viewer *v, char *buf, size_t len)
{
    if (v->follow)
        snprintf(buf, len, "live");
    else if (speeds[v->speed] == 0)
        snprintf(buf, len, "max speed");
    else
        snprintf(buf, len, "%gx", speeds[v->speed]);
}

static void addr_text(const struct viz_addr *a, char *buf, size_t len)
{
    if (a->mmio)
        snprintf(buf, len, "mmio 0x%llx %s", (unsigned long long)a->addr, a->write ? "write" : "read");
    else
        snprintf(buf, len, "port 0x%04llx %s", (unsigned long long)a->addr, a->write ? "out" : "in");
}

/* One line of the exit list: time, vCPU, kind, decoded detail, RIP. */
static void exit_text(const struct viewer *v, const struct mvm_trace_event *e, char *buf, size_t len)
{
    char kind[32], detail[96], rip[24] = "";
    double t_ms = e->exit_ns > v->start_ns ? (double)(e->exit_ns - v->start_ns) / 1e6 : 0;

    mvm_trace_event_kind(e, kind, sizeof(kind));
    mvm_trace_event_detail(e, detail, sizeof(detail));
    if (e->flags & MVM_TRACE_F_RIP)
        snprintf(rip, sizeof(rip), " rip=%llx", (unsigned long long)e->rip);
    snprintf(buf, len, "%10.3fms c%u %-16s %s%s", t_ms, e->vcpu, kind, detail, rip);
}

static void summary_print(struct viewer *v, FILE *f)
{
    int idx[VIZ_KINDS], aidx[16], n;
    const struct viz_model *m = &v->m;
    uint64_t span = m->last_ns > m->start_ns ? m->last_ns - m->start_ns : 0;
    char buf[200];

    fprintf(f, "mvm-top: %s %s (backend %s): %llu exits to userspace, %llu in-kernel, over %.3f ms (%llu records)\n",
            mode_name(v->mode), v->name, v->backend[0] ? v->backend : "?", (unsigned long long)m->user,
            (unsigned long long)m->kernel, (double)span / 1e6, (unsigned long long)m->events);
    if (v->has_kernel_counts)
        fprintf(f, "kernel tracer: %llu kvm_exit, %llu kvm_userspace_exit, %llu lost\n",
                (unsigned long long)v->kernel_exits, (unsigned long long)v->kernel_to_user,
                (unsigned long long)v->dropped);
    if (v->lost)
        fprintf(f, "lost: %llu events (the viewer fell behind the live feed)\n", (unsigned long long)v->lost);
    fprintf(f, "exits by reason:\n");
    n = viz_model_kinds_sorted(m, idx, VIZ_KINDS);
    for (int i = 0; i < n; i++)
        fprintf(f, "  %10llu  %s\n", (unsigned long long)m->kinds[idx[i]].n, m->kinds[idx[i]].name);
    fprintf(f, "handling time (exit -> ready to re-enter):\n");
    for (int b = 0; b < VIZ_LAT_BUCKETS; b++)
        fprintf(f, "  %8s  %llu\n", viz_lat_labels[b], (unsigned long long)m->lat[b]);
    fprintf(f, "top ports/addresses:\n");
    n = viz_model_addrs_sorted(m, aidx, 8);
    for (int i = 0; i < n; i++) {
        addr_text(&m->addrs[aidx[i]], buf, sizeof(buf));
        fprintf(f, "  %10llu  %s\n", (unsigned long long)m->addrs[aidx[i]].n, buf);
    }
    fprintf(f, "last exits:\n");
    for (int i = 9; i >= 0; i--) {
        const struct mvm_trace_event *e = viz_model_last(m, (uint64_t)i);

        if (!e)
            continue;
        exit_text(v, e, buf, sizeof(buf));
        fprintf(f, "  %s\n", buf);
    }
    if (v->mode == MODE_RUN && v->nout) {
        fprintf(f, "guest output (last lines):\n");
        for (int i = v->nout > 10 ? v->nout - 10 : 0; i < v->nout; i++)
            fprintf(f, "  | %s\n", v->out[i % OUT_LINES]);
    }
}

enum { C_HEAD = 1, C_TITLE, C_USER, C_KERNEL, C_ALERT, C_DIM };

static void colors_init(void)
{
    if (!has_colors())
        return;
    start_color();
    use_default_colors();
    init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
    init_pair(C_TITLE, COLOR_YELLOW, -1);
    init_pair(C_USER, COLOR_GREEN, -1);
    init_pair(C_KERNEL, COLOR_MAGENTA, -1);
    init_pair(C_ALERT, COLOR_RED, -1);
    init_pair(C_DIM, COLOR_BLUE, -1);
}

/* Text clipped to width w at (y, x). */
static void put(int y, int x, int w, const char *s)
{
    if (w > 0 && y >= 0 && y < LINES && x < COLS)
        mvaddnstr(y, x, s, w < COLS - x ? w : COLS - x);
}

static void title(int y, int x, int w, const char *s)
{
    attron(COLOR_PAIR(C_TITLE) | A_BOLD);
    put(y, x, w, s);
    attroff(COLOR_PAIR(C_TITLE) | A_BOLD);
}

/* A bar of `len` cells of '#': plain ASCII, so it reads the same in any terminal and in a captured screen. */
static void bar(int y, int x, int len, int color)
{
    attron(COLOR_PAIR(color) | A_BOLD);
    for (int i = 0; i < len && x + i < COLS; i++)
        mvaddch(y, x + i, '#');
    attroff(COLOR_PAIR(color) | A_BOLD);
}

static void draw_kinds(struct viewer *v, int y, int x, int w, int h)
{
    int idx[VIZ_KINDS], n = viz_model_kinds_sorted(&v->m, idx, h - 1);
    uint64_t max = n ? v->m.kinds[idx[0]].n : 1;
    char line[80];

    title(y, x, w, "Exits by reason");
    for (int i = 0; i < n; i++) {
        const struct viz_kind *k = &v->m.kinds[idx[i]];
        int bw = w - 28, len = bw > 0 ? (int)((double)k->n / (double)max * bw + 0.5) : 0;

        if (idx[i] == v->m.filter)
            attron(COLOR_PAIR(C_ALERT) | A_BOLD);
        snprintf(line, sizeof(line), "%-17.17s %8llu", k->name, (unsigned long long)k->n);
        put(y + 1 + i, x, w, line);
        if (idx[i] == v->m.filter)
            attroff(COLOR_PAIR(C_ALERT) | A_BOLD);
        if (len > 0)
            bar(y + 1 + i, x + 27, len, k->kernel ? C_KERNEL : C_USER);
    }
}

/* 1234567 -> "1.23M": three significant digits and a suffix. */
static void human(double x, char *buf, size_t len)
{
    static const char suffix[] = " kMG";
    int i = 0;

    while (x >= 999.5 && i < 3) {
        x /= 1000;
        i++;
    }
    snprintf(buf, len, "%.3g%.*s", x, i ? 1 : 0, &suffix[i]);
}

static void draw_rate(struct viewer *v, int y, int x, int w, int h)
{
    int nb = viz_model_rate_bins(&v->m), cols = w - 1, rows = h - 1;
    uint64_t per_col[256] = {0}, max = 0;
    int group;
    char line[96], peak[16], per[16];
    double col_s;

    if (cols > 256)
        cols = 256;
    if (nb == 0)
        nb = 1;
    group = (nb + cols - 1) / cols; /* bins per column */
    for (int b = 0; b < nb; b++)
        per_col[b / group] += v->m.rate[b];
    for (int c = 0; c < cols; c++)
        if (per_col[c] > max)
            max = per_col[c];
    col_s = (double)v->m.bin_ns * group / 1e9;
    human(max / col_s, peak, sizeof(peak));
    human(col_s * 1e6, per, sizeof(per));
    snprintf(line, sizeof(line), "Exit rate%s: peak %s/s, %sus/col", v->m.filter >= 0 ? " (filter)" : "", peak, per);
    title(y, x, w, line);
    if (!max)
        return;
    for (int c = 0; c < cols && c * group < nb; c++) {
        int hgt = (int)((double)per_col[c] / (double)max * rows + 0.999);

        for (int r = 0; r < hgt; r++)
            bar(y + rows - r, x + c, 1, C_USER);
    }
}

static void draw_latency(struct viewer *v, int y, int x, int w, int h)
{
    uint64_t max = 1;
    char line[64];

    title(y, x, w, "Handling time (exit -> ready)");
    for (int b = 0; b < VIZ_LAT_BUCKETS; b++)
        if (v->m.lat[b] > max)
            max = v->m.lat[b];
    for (int b = 0; b < VIZ_LAT_BUCKETS && b < h - 1; b++) {
        int bw = w - 20, len = bw > 0 ? (int)((double)v->m.lat[b] / (double)max * bw + 0.5) : 0;

        snprintf(line, sizeof(line), "%8s %8llu", viz_lat_labels[b], (unsigned long long)v->m.lat[b]);
        put(y + 1 + b, x, w, line);
        if (len > 0)
            bar(y + 1 + b, x + 19, len, C_KERNEL);
    }
}

static void draw_addrs(struct viewer *v, int y, int x, int w, int h)
{
    int idx[32], n = viz_model_addrs_sorted(&v->m, idx, h - 1 < 32 ? h - 1 : 32);
    char line[96], a[48];

    title(y, x, w, "Top ports / addresses");
    for (int i = 0; i < n; i++) {
        addr_text(&v->m.addrs[idx[i]], a, sizeof(a));
        snprintf(line, sizeof(line), "%8llu  %s", (unsigned long long)v->m.addrs[idx[i]].n, a);
        put(y + 1 + i, x, w, line);
    }
}

static void draw_last(struct viewer *v, int y, int x, int w, int h)
{
    char line[256], t[80];

    snprintf(t, sizeof(t), "Last exits%s%s", v->m.filter >= 0 ? ": only " : "",
             v->m.filter >= 0 ? v->m.kinds[v->m.filter].name : "");
    title(y, x, w, t);
    for (int i = 0; i < h - 1; i++) {
        const struct mvm_trace_event *e = viz_model_last(&v->m, (uint64_t)(h - 2 - i));

        if (!e)
            continue;
        exit_text(v, e, line, sizeof(line));
        attron(COLOR_PAIR(e->source == MVM_TRACE_SRC_USER ? C_USER : C_KERNEL));
        put(y + 1 + i, x, w, line);
        attroff(COLOR_PAIR(e->source == MVM_TRACE_SRC_USER ? C_USER : C_KERNEL));
    }
}

static void draw_output(struct viewer *v, int y, int x, int w, int h)
{
    title(y, x, w, "Guest output");
    for (int i = 0; i < h - 1; i++) {
        int li = v->nout - (h - 1) + i;

        if (li >= 0)
            put(y + 1 + i, x, w, v->out[li % OUT_LINES]);
    }
}

static void draw_help(void)
{
    static const char *const lines[] = {
        "mvm-top keys",
        "",
        "  space   pause / run",
        "  s, n    step: one more exit (pauses)",
        "  b, <-   step back: one exit earlier (pauses)",
        "  f       filter: cycle through the reasons (then all)",
        "  + / -   replay faster / slower",
        "  r       replay from the start (live: replay what came)",
        "  h, ?    this help (any key closes it)",
        "  q       quit",
        "",
        "Green: exits to the VMM. Magenta: exits the kernel",
        "(or the soft backend) handled without the VMM.",
    };
    int n = (int)(sizeof(lines) / sizeof(lines[0])), w = 60, y0 = (LINES - n - 2) / 2, x0 = (COLS - w) / 2;

    if (y0 < 0)
        y0 = 0;
    if (x0 < 0)
        x0 = 0;
    attron(COLOR_PAIR(C_HEAD));
    for (int i = 0; i < n + 2; i++) {
        mvhline(y0 + i, x0, ' ', w);
        if (i > 0 && i <= n)
            put(y0 + i, x0 + 2, w - 4, lines[i - 1]);
    }
    attroff(COLOR_PAIR(C_HEAD));
}

static void draw(struct viewer *v)
{
    int W = COLS, H = LINES, half = W / 2, body, top, mid, bottom, outh = 0;
    char head[256], sp[24], status[64] = "";

    erase();
    speed_text(v, sp, sizeof(sp));
    if (v->mode == MODE_RUN && v->child == 0)
        snprintf(status, sizeof(status), ", VMM exited %d", v->child_status);
    else if (v->mode == MODE_LIVE && v->finished)
        snprintf(status, sizeof(status), ", feed closed");
    snprintf(head, sizeof(head), " mvm-top %s %s | %s | %zu/%zu exits | %s | %s%s%s", mode_name(v->mode),
             strrchr(v->name, '/') ? strrchr(v->name, '/') + 1 : v->name, v->backend[0] ? v->backend : "?", v->pos,
             v->nev, sp,
             v->paused                                                     ? "PAUSED"
             : v->pos == v->nev && (v->finished || v->mode == MODE_REPLAY) ? "END"
                                                                           : "RUNNING",
             status, v->lost ? "  LOST EVENTS" : "");
    attron(COLOR_PAIR(C_HEAD) | A_BOLD);
    mvhline(0, 0, ' ', W);
    put(0, 0, W, head);
    attroff(COLOR_PAIR(C_HEAD) | A_BOLD);
    if (W < 40 || H < 12) {
        put(2, 0, W, "terminal too small (mvm-top needs 80x24)");
        refresh();
        return;
    }
    body = H - 2;
    top = body * 7 / 22;
    mid = body * 7 / 22;
    bottom = body - top - mid;
    if (v->mode == MODE_RUN) {
        outh = bottom / 2 > 8 ? 8 : bottom / 2;
        if (outh < 3)
            outh = 0;
    }
    draw_kinds(v, 1, 0, half - 1, top);
    draw_rate(v, 1, half, W - half, top);
    draw_latency(v, 1 + top, 0, half - 1, mid);
    draw_addrs(v, 1 + top, half, W - half, mid);
    draw_last(v, 1 + top + mid, 0, W, bottom - outh);
    if (outh)
        draw_output(v, 1 + top + mid + bottom - outh, 0, W, outh);
    attron(COLOR_PAIR(C_DIM));
    put(H - 1, 0, W, " q quit  space pause  s step  f filter  +/- speed  r replay  h help");
    attroff(COLOR_PAIR(C_DIM));
    if (v->help)
        draw_help();
    refresh();
}

static void filter_next(struct viewer *v)
{
    int idx[VIZ_KINDS], n = viz_model_kinds_sorted(&v->m, idx, VIZ_KINDS), cur = -1;

    for (int i = 0; i < n; i++)
        if (idx[i] == v->m.filter)
            cur = i;
    v->m.filter = cur + 1 < n ? idx[cur + 1] : -1;
    model_rebuild(v);
}

/* Returns false to quit. */
static bool key_handle(struct viewer *v, int ch)
{
    if (v->help && ch != ERR && ch != KEY_RESIZE) {
        v->help = false;
        return true;
    }
    switch (ch) {
    case 'q':
    case 'Q':
    case 27:
        return false;
    case ' ':
    case 'p':
        v->paused = !v->paused;
        vm_pause(v, v->paused);
        break;
    case 's':
    case 'n':
        v->paused = true;
        step_one(v);
        break;
    case 'b':
    case KEY_LEFT:
        v->paused = true;
        vm_pause(v, true);
        step_back(v);
        break;
    case 'f':
        filter_next(v);
        break;
    case '+':
    case '=':
        if (v->speed < NSPEEDS - 1)
            v->speed++;
        break;
    case '-':
    case '_':
        if (v->speed > 0)
            v->speed--;
        break;
    case 'r':
        if (v->follow) {
            v->follow = false;
            v->speed = speed_fit(v);
        }
        v->pos = 0;
        v->vt = 0;
        model_rebuild(v);
        break;
    case 'h':
    case '?':
        v->help = true;
        break;
    default:
        break;
    }
    return true;
}

static int interactive(struct viewer *v)
{
    uint64_t last = now_ns();
    bool quit = false;

    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(50);
    colors_init();
    while (!quit && !stop_requested) {
        uint64_t t = now_ns();
        int ch;

        live_poll(v);
        child_output_read(v);
        child_reap(v, false);
        advance(v, t - last);
        last = t;
        draw(v);
        ch = getch();
        while (ch != ERR && !quit) {
            if (ch != KEY_RESIZE)
                quit = !key_handle(v, ch);
            else
                clear();
            if (!quit)
                ch = getch();
            if (ch != ERR)
                draw(v);
        }
    }
    vm_pause(v, false); /* never leave the VM paused behind */
    endwin();
    return 0;
}

/* Non-interactive: follow the source to its end, then print one frame. */
static int summary(struct viewer *v)
{
    while (v->mode != MODE_REPLAY && !stop_requested) {
        bool out_open;

        live_poll(v);
        out_open = child_output_read(v);
        child_reap(v, false);
        if (v->finished && (v->mode != MODE_RUN || (!v->child && !out_open)))
            break;
        if (v->mode == MODE_RUN && !v->child && !out_open && !v->live)
            break;
        usleep(10000);
    }
    v->paused = false;
    v->speed = NSPEEDS - 1;
    advance(v, 0);
    summary_print(v, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"summary", no_argument, NULL, 's'}, {"speed", required_argument, NULL, 'x'},
        {"paused", no_argument, NULL, 'p'},  {"wait", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0},
    };
    struct viewer v = {.out_fd = -1, .speed = -1};
    struct mvm_trace_data data;
    bool want_summary = false;
    double wait_s = 10;
    const char *cmd;
    int c, rc, status = 0;

    setlocale(LC_ALL, "");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cmd = argv[1];
    opterr = 0;
    optind = 2;
    /* run: options stop at the first of minivmm's arguments; replay and live take them anywhere. */
    while ((c = getopt_long(argc, argv, strcmp(cmd, "run") ? ":sx:pw:h" : "+:sx:pw:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            want_summary = true;
            break;
        case 'p':
            v.paused = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'x': {
            char *end;
            double x = strtod(optarg, &end);

            if (!strcmp(optarg, "max")) {
                v.speed = NSPEEDS - 1;
                break;
            }
            if (end == optarg || *end || !(x >= 0.001 && x <= 1000))
                return usage_error("--speed: '%s' is not 0.001..1000 or 'max'", optarg);
            v.speed = 0;
            while (v.speed < NSPEEDS - 2 && speeds[v.speed] < x)
                v.speed++;
            break;
        }
        case 'w': {
            char *end;

            wait_s = strtod(optarg, &end);
            if (end == optarg || *end || !(wait_s >= 0 && wait_s <= 3600))
                return usage_error("--wait: '%s' is not a number of seconds (0..3600)", optarg);
            break;
        }
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    signal(SIGPIPE, SIG_IGN);
    v.m.filter = -1;
    if (!strcmp(cmd, "replay")) {
        if (optind + 1 != argc)
            return usage_error("replay takes one trace file");
        v.mode = MODE_REPLAY;
        v.name = argv[optind];
        rc = mvm_trace_load(v.name, &data);
        if (rc < 0) {
            fprintf(stderr, "mvm-top: %s\n", mvm_error());
            return 1;
        }
        v.ev = data.events;
        v.nev = v.cap = data.count;
        v.start_ns = data.header.start_ns;
        if (v.nev)
            t0_set(&v, &v.ev[0]);
        snprintf(v.backend, sizeof(v.backend), "%s", data.header.backend);
        v.has_kernel_counts = data.header.flags & MVM_TRACE_HDR_KERNEL;
        v.kernel_exits = data.kernel_exits;
        v.kernel_to_user = data.kernel_to_user;
        v.dropped = data.dropped;
        v.finished = true;
        if (v.speed < 0)
            v.speed = speed_fit(&v);
    } else if (!strcmp(cmd, "live")) {
        if (optind + 1 != argc)
            return usage_error("live takes the feed's path (minivmm run --trace-live PATH)");
        v.mode = MODE_LIVE;
        v.name = argv[optind];
        rc = live_attach_wait(&v, v.name, wait_s);
        if (rc < 0) {
            fprintf(stderr, "mvm-top: %s\n", mvm_error());
            return 1;
        }
    } else if (!strcmp(cmd, "run")) {
        if (optind < argc && !strcmp(argv[optind], "--"))
            optind++;
        if (optind >= argc)
            return usage_error("run needs minivmm's arguments, e.g. mvm-top run -- --guest lab1/hello");
        v.mode = MODE_RUN;
        v.name = "minivmm";
        rc = child_start(&v, argv + optind, argc - optind);
        if (rc < 0) {
            fprintf(stderr, "mvm-top: cannot start minivmm: %s\n", strerror(-rc));
            return 1;
        }
        rc = live_attach_wait(&v, v.live_path, wait_s);
        if (rc < 0 && rc != -ENOENT) {
            fprintf(stderr, "mvm-top: %s\n", mvm_error());
            kill(v.child, SIGTERM);
        }
        if (rc < 0) { /* the VMM failed before it made the feed: show why */
            v.finished = true;
            viz_model_init(&v.m, now_ns());
        }
    } else {
        return usage_error("unknown command '%s' (replay, live or run)", cmd);
    }
    if (v.speed < 0)
        v.speed = NSPEEDS - 1;
    v.follow = v.mode != MODE_REPLAY;
    if (want_summary || !isatty(STDOUT_FILENO))
        summary(&v);
    else
        interactive(&v);
    if (v.mode == MODE_RUN) {
        if (v.child > 0 && stop_requested)
            kill(v.child, SIGTERM);
        child_reap(&v, true);
        while (child_output_read(&v))
            usleep(1000);
        if (!want_summary && isatty(STDOUT_FILENO))
            for (int i = v.nout > 20 ? v.nout - 20 : 0; i < v.nout; i++)
                printf("%s\n", v.out[i % OUT_LINES]);
        status = v.child_status;
        unlink(v.live_path);
        if (v.msgs) {
            char line[512];

            rewind(v.msgs);
            while (fgets(line, sizeof(line), v.msgs))
                fputs(line, stderr);
            fclose(v.msgs);
        }
    }
    mvm_trace_live_detach(v.live);
    free(v.ev);
    return status;
}
