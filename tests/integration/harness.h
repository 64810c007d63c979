/* Integration-test harness: run a built guest on the chosen backend and capture everything it did. */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include "mvm.h"

struct guest_run {
    const char *backend; /* the backend it ran on */
    char *console;       /* serial + debug port output, NUL-terminated */
    size_t console_len;
    char *exits; /* canonical exit dump, one line per exit */
    size_t exits_len;
    struct mvm_run_result res;
    struct kvm_regs regs; /* registers after the run */
    struct kvm_sregs sregs;
    int rc;          /* vcpu_run's return */
    char error[768]; /* set up or run failure, for messages */
};

/* The backend named by $MINIVMM_BACKEND (auto|kvm|soft; default auto). */
const char *harness_backend_name(void);

/* Path of built-in guest `name` (e.g. "lab1/hello"): $MINIVMM_GUEST_DIR, else the guests/ beside the test binary's
 * directory (O/tests/test_x -> O/guests/), so a build with O=dir finds its own guests. */
void harness_guest_path(const char *name, char *buf, size_t len);

/*
 * Runs guest `name` from real mode at entry 0x1000 with 2 MiB of RAM, the
 * standard devices and limits (100000 exits, 5 s). Returns 0 when the VM was
 * set up and run (whatever the guest did), -errno with run->error otherwise.
 */
int harness_run_guest(const char *name, struct guest_run *run);
/* Same for raw code bytes loaded at load_gpa and entered at entry_gpa. */
int harness_run_code(const void *code, size_t len, uint64_t load_gpa, uint64_t entry_gpa, struct guest_run *run);
void harness_free(struct guest_run *run);

/* The CPU mode a guest starts in, and whose set-up functions put it there. */
enum harness_mode {
    HARNESS_MODE_REAL,      /* lab 1's set-up: lab1_vcpu_setup_real */
    HARNESS_MODE_PROTECTED, /* lab 2's: lab2_vcpu_setup_protected */
    HARNESS_MODE_LONG,      /* lab 3's: lab3_page_tables_build in the boot pool, then lab3_vcpu_setup_long */
};
/* Called once the VM has its RAM and standard devices, before the vCPU runs: registers more handlers. */
typedef int (*harness_vm_hook)(struct mvm_vm *vm, void *opaque);

/*
 * Runs guest `name` loaded and entered at MVM_BOOT_LOAD_GPA in `mode`, with
 * 2 MiB of RAM, the standard devices, `hook` (may be NULL) and the usual
 * limits. Returns as harness_run_guest() does.
 */
int harness_run_guest_mode(const char *name, enum harness_mode mode, harness_vm_hook hook, void *opaque,
                           struct guest_run *run);

/* Same for raw code bytes, loaded and entered at MVM_BOOT_LOAD_GPA in `mode`. */
int harness_run_code_mode(const void *code, size_t len, enum harness_mode mode, harness_vm_hook hook, void *opaque,
                          struct guest_run *run);

/* Counts lines of the exit dump that start with `prefix`. */
int harness_count_exits(const struct guest_run *run, const char *prefix);

/* A one-paragraph explanation of how a run ended, for failure messages. */
const char *harness_explain(const struct guest_run *run);

#endif

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

/* Fails the test with a message that says what was expected and how the run ended. */
#define EXPECT_STOP(run, want)                                                                                         \
    do {                                                                                                               \
        if ((run)->error[0] || (run)->res.stop != (want))                                                              \
            fail_msg("expected the guest to end with '%s', but %s", mvm_stop_name(want), harness_explain(run));        \
    } while (0)

/*
 * main() of a test binary: runs all tests, or only those named by
 * `--only NAME` (the grader runs one test per process).
 */
int harness_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests, size_t n);
