/* The CLI's guards around a run (minivmm/main.c): the --timeout watchdog and the console's line hold. */
#ifndef MINIVMM_CLI_GUARD_H
#define MINIVMM_CLI_GUARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct mvm_vcpu;

/*
 * --timeout interrupts KVM_RUN (the run loop's timer); it cannot interrupt
 * the VMM's own code. When a handler never returns (a lab's exit handler or
 * a device in an endless loop), the watchdog ends the process with status 4
 * a second past the limit, naming the exit that was being handled.
 */
struct watchdog {
    struct mvm_vcpu *vcpu;
    struct timespec when; /* CLOCK_MONOTONIC */
    uint64_t timeout_ms;
    pthread_mutex_t lock; /* the thread waits on `done`, never cancelled (cancelling trips ASan's thread exit) */
    pthread_cond_t done_cv;
    bool done;
};

/* Starts the watchdog for a run of `ms` ms of wall time (0: none); true when it runs, then watchdog_stop. */
bool watchdog_start(struct watchdog *w, pthread_t *thread, struct mvm_vcpu *vcpu, uint32_t ms, uint64_t timeout_ms);
void watchdog_stop(struct watchdog *w, bool started, pthread_t thread);

/*
 * With --exits - the exit dump and the guest's console share standard output.
 * The console's bytes are then held until their line is whole, so a dump line
 * never lands inside one ("HIO out port=..."): the dump lines of a line's OUTs
 * come first, then the line.
 */
struct line_hold {
    char buf[4096];
    size_t n;
};

/* The console stream for --exits -: line-holding, unbuffered itself; standard output when it cannot be made. */
FILE *line_hold_open(struct line_hold **out);
/* Writes out the part of a line the guest left unfinished (at the end of the run). NULL is fine. */
void line_hold_flush(struct line_hold *h);

#endif
