/* The CLI's pauses (lab 6): --pause-at/--pause-for, SIGUSR1/SIGUSR2, and --migrate-tsc-khz, around one run. */
#ifndef MINIVMM_CLI_PAUSE_H
#define MINIVMM_CLI_PAUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct mvm_vcpu;

struct cli_pauses {
    struct mvm_vcpu *vcpu;
    struct timespec when; /* CLOCK_MONOTONIC: when the --pause-at pause begins */
    uint32_t ms;          /* --pause-for */
    bool clock_runs;      /* --pause-clock jump */
    uint32_t tsc_khz;     /* --migrate-tsc-khz: the --pause-at pause moves the VM to this TSC rate; 0: none */
    pthread_t thread;
    bool started; /* the --pause-at thread runs */
};

/* --migrate-tsc-khz KHZ: a rate from 1 to 2^31 - 1 kHz. 0, or -EINVAL with the usage message to print. */
int cli_tsc_khz_parse(const char *arg, uint32_t *khz);

/*
 * Before the run: whether the vCPU can take the --migrate-tsc-khz rate (vcpu_tsc_khz_check); a clear message
 * when not (a KVM without TSC scaling), so the run does not start only to fail at its pause.
 */
int cli_migrate_check(struct mvm_vcpu *vcpu, uint32_t tsc_khz);

/*
 * Installs SIGUSR1 (pause until SIGUSR2) and SIGUSR2 (resume) for vcpu's run and, when at_ms > 0, starts a
 * thread that pauses it at_ms into the run for for_ms (a migration to tsc_khz when it is not 0). 0 or -errno.
 */
int cli_pauses_start(struct cli_pauses *p, struct mvm_vcpu *vcpu, uint64_t at_ms, uint64_t for_ms, bool clock_runs,
                     uint32_t tsc_khz);

/* After the run: no more pauses (the handlers stay, doing nothing), the thread stopped if it still waits. */
void cli_pauses_stop(struct cli_pauses *p);

#endif
