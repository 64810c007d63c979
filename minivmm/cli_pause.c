/*
 * The CLI's pauses (lab 6): SIGUSR1 asks the run loop for a pause until SIGUSR2, and --pause-at a thread asks for
 * one of --pause-for ms, a "migration" to another TSC rate with --migrate-tsc-khz. vcpu_pause_request is
 * async-signal-safe; requests outside the run are ignored.
 */
#include "cli_pause.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mvm.h"

static struct mvm_vcpu *volatile pause_vcpu;
static volatile sig_atomic_t pause_clock_runs;

static void on_pause_signal(int sig)
{
    struct mvm_vcpu *vcpu = pause_vcpu;

    if (vcpu && sig == SIGUSR1)
        vcpu_pause_request(vcpu, MVM_PAUSE_UNTIL_RESUMED, pause_clock_runs);
    else if (vcpu)
        vcpu_pause_resume(vcpu);
}

static void *pause_at_thread(void *arg)
{
    struct cli_pauses *p = arg;

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &p->when, NULL) == EINTR)
        ;
    vcpu_pause_migrate(p->vcpu, p->ms, p->clock_runs, p->tsc_khz);
    return NULL;
}

int cli_tsc_khz_parse(const char *arg, uint32_t *khz)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v == 0 || v > 0x7fffffff)
        return mvm_fail(EINVAL,
                        "--migrate-tsc-khz: '%s' is not a TSC rate in kHz from 1 to 2^31 - 1 (2500000 is "
                        "2.5 GHz)",
                        arg);
    *khz = (uint32_t)v;
    return 0;
}

int cli_migrate_check(struct mvm_vcpu *vcpu, uint32_t tsc_khz)
{
    char why[400];
    int rc = tsc_khz ? vcpu_tsc_khz_check(vcpu, tsc_khz) : 0;

    if (rc == 0)
        return 0;
    snprintf(why, sizeof(why), "%s", mvm_error());
    return mvm_fail(-rc, "--migrate-tsc-khz: %s", why);
}

int cli_pauses_start(struct cli_pauses *p, struct mvm_vcpu *vcpu, uint64_t at_ms, uint64_t for_ms, bool clock_runs,
                     uint32_t tsc_khz)
{
    struct sigaction sa;
    sigset_t usr, old;
    int rc;

    *p = (struct cli_pauses){.vcpu = vcpu, .ms = (uint32_t)for_ms, .clock_runs = clock_runs, .tsc_khz = tsc_khz};
    pause_clock_runs = clock_runs;
    pause_vcpu = vcpu;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_pause_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    if (!at_ms)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &p->when);
    p->when.tv_sec += (time_t)(at_ms / 1000);
    p->when.tv_nsec += (long)(at_ms % 1000) * 1000000;
    if (p->when.tv_nsec >= 1000000000) {
        p->when.tv_sec++;
        p->when.tv_nsec -= 1000000000;
    }
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    sigaddset(&usr, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr, &old);
    rc = pthread_create(&p->thread, NULL, pause_at_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pause_vcpu = NULL;
        return mvm_fail(rc, "--pause-at: cannot start its thread: %s", strerror(rc));
    }
    p->started = true;
    return 0;
}

void cli_pauses_stop(struct cli_pauses *p)
{
    pause_vcpu = NULL;
    if (p->started) {
        pthread_cancel(p->thread);
        pthread_join(p->thread, NULL);
    }
    p->started = false;
}
