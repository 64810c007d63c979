/*
 * Load on the soft backend: 10,000 VM create/run/destroy cycles in one process, and 100 VMs alive at once on
 * 100 threads, each guest's code and answer VM-specific (bench/load_vm.h), so nothing may be lost or crossed.
 * Counts only, no timings; leaks are the sanitizer pass's to find (make O=build/san SAN=1). Figures:
 * bench/bench_load.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load_vm.h"

#define CYCLES  10000
#define THREADS 100

static const struct mvm_backend *soft;

static int setup(void **state)
{
    (void)state;
    if (mvm_backend_pick("soft", &soft) < 0)
        soft = NULL;
    return 0;
}

static void cycles_in_one_process(void **state)
{
    char why[200] = "";
    int ok = 0, wrong = 0, failed = 0;

    (void)state;
    if (!soft)
        skip();
    for (uint32_t seed = 0; seed < CYCLES; seed++) {
        int r = load_vm_cycle(soft, seed, why, sizeof(why));

        if (r == 1) {
            ok++;
        } else if (r == 0) {
            if (wrong++ == 0)
                print_message("first wrong answer: %s\n", why);
        } else if (failed++ == 0) {
            print_message("first VMM failure (seed %u): %s\n", seed, mvm_error());
        }
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(ok, CYCLES);
}

static void vms_at_once_on_threads(void **state)
{
    struct load_at_once res;

    (void)state;
    if (!soft)
        skip();
    if (load_vms_at_once(soft, THREADS, 1000, &res) < 0)
        fail_msg("%s", mvm_error());
    if (res.why[0])
        print_message("first problem: %s\n", res.why);
    assert_int_equal(res.created, THREADS);
    assert_int_equal(res.right, THREADS);
}

int main(void)
{
    /*
     * Every VM alive at once holds an engine, and each engine's code buffer is zeroed (made resident) once:
     * 1 MiB each keeps 100 engines at about 100 MiB, and makes the buffer fill and flush during the cycles.
     */
    setenv("MINIVMM_SOFT_TCG_MIB", "1", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cycles_in_one_process),
        cmocka_unit_test(vms_at_once_on_threads),
    };
    return cmocka_run_group_tests_name("soft backend load", tests, setup, NULL);
}
