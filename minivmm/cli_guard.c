/* The CLI's guards around a run: a watchdog for a handler that never returns, whole console lines beside the dump. */
#include "cli_guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mvm.h"

/* The watchdog's thread: only the line it prepares reaches the output (stdout's lock may be the hung handler's). */
static void *watchdog_thread(void *arg)
{
    struct watchdog *w = arg;
    char exit_text[160], line[640];
    int n;
    ssize_t wr;

    int rc = 0;

    pthread_mutex_lock(&w->lock);
    while (!w->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->done_cv, &w->lock, &w->when);
    if (w->done) {
        pthread_mutex_unlock(&w->lock);
        return NULL;
    }
    mvm_exit_format(vcpu_run_page(w->vcpu), exit_text, sizeof(exit_text));
    n = snprintf(line, sizeof(line),
                 "minivmm: --timeout: %llu ms passed and the VMM has not come back from handling the exit '%s' for "
                 "a second: its handler hangs (the lab's handler of KVM_EXIT_%s, or a device it called: an endless "
                 "loop, a counter never advanced?); stopped\n",
                 (unsigned long long)w->timeout_ms, exit_text, mvm_exit_name(vcpu_run_page(w->vcpu)->exit_reason));
    wr = write(STDERR_FILENO, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    (void)wr;
    _exit(4); /* minivmm's status for a limit */
}

bool watchdog_start(struct watchdog *w, pthread_t *thread, struct mvm_vcpu *vcpu, uint32_t ms, uint64_t timeout_ms)
{
    pthread_condattr_t attr;
    bool ok;

    *w = (struct watchdog){.vcpu = vcpu, .timeout_ms = timeout_ms};
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->done_cv, &attr);
    pthread_condattr_destroy(&attr);
    clock_gettime(CLOCK_MONOTONIC, &w->when);
    w->when.tv_sec += (time_t)(ms / 1000) + 1; /* the run loop's own limit, then a second of grace */
    w->when.tv_nsec += (long)(ms % 1000) * 1000000;
    if (w->when.tv_nsec >= 1000000000) {
        w->when.tv_sec++;
        w->when.tv_nsec -= 1000000000;
    }
    ok = ms && pthread_create(thread, NULL, watchdog_thread, w) == 0;
    if (!ok) {
        pthread_cond_destroy(&w->done_cv);
        pthread_mutex_destroy(&w->lock);
    }
    return ok;
}

void watchdog_stop(struct watchdog *w, bool started, pthread_t thread)
{
    if (!started)
        return;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->done_cv);
    pthread_mutex_unlock(&w->lock);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->lock);
}

static ssize_t line_hold_write(void *cookie, const char *data, size_t len)
{
    struct line_hold *h = cookie;

    for (size_t i = 0; i < len; i++) {
        h->buf[h->n++] = data[i];
        if ((data[i] == '\n' || h->n == sizeof(h->buf)) && fwrite(h->buf, 1, h->n, stdout) != h->n)
            return -1;
        if (data[i] == '\n' || h->n == sizeof(h->buf))
            h->n = 0;
    }
    return (ssize_t)len;
}

void line_hold_flush(struct line_hold *h)
{
    if (h && h->n && fwrite(h->buf, 1, h->n, stdout) == h->n)
        h->n = 0;
}

static int line_hold_close(void *cookie)
{
    line_hold_flush(cookie);
    free(cookie);
    return 0;
}

FILE *line_hold_open(struct line_hold **out)
{
    static const cookie_io_functions_t fns = {.write = line_hold_write, .close = line_hold_close};
    struct line_hold *h = calloc(1, sizeof(*h));
    FILE *f = h ? fopencookie(h, "w", fns) : NULL;

    if (!f) {
        free(h);
        *out = NULL;
        return stdout;
    }
    setvbuf(f, NULL, _IONBF, 0); /* every byte reaches the hold at once, in order with the dump */
    *out = h;
    return f;
}
