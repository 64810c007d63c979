/* Lab 6 hidden tests: extreme rates, the multiply's edges, the protocol from odd and wrapping versions, migration, torn
 * reads. */
#include "lab6_util.h"

static void tsc_scale_extremes(void **state)
{
    static const struct {
        uint64_t hz;
        uint32_t mul;
        int8_t shift;
    } cases[] = {
        {1000, 4096000000u, 20},          {1000000, 4194304000u, 10},        {999999999, 2147483650u, 1},
        {1000000001, 4294967291u, 0},     {2000000001, 2147483648u, 0},      {4294967296ull, 4000000000u, -2},
        {4300000000ull, 3995318414u, -2}, {10000000000ull, 3435973836u, -3}, {100000000000ull, 2748779069u, -6},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t mul = 0;
        int8_t shift = 0;

        lab6_tsc_scale(cases[i].hz, &mul, &shift);
        if (mul != cases[i].mul || shift != cases[i].shift)
            fail_msg("lab6_tsc_scale(%llu Hz) gave mul %u, shift %d; KVM gives mul %u, shift %d (rates above 2^32 "
                     "halve first; a rate just above 2e9 halves to 1e9 and doubles back)",
                     (unsigned long long)cases[i].hz, mul, shift, cases[i].mul, cases[i].shift);
    }
}

static void scale_delta_edges(void **state)
{
    static const struct {
        uint64_t delta;
        uint32_t mul;
        int8_t shift;
        uint64_t want;
    } cases[] = {
        {~0ull, 0xffffffffu, -6, 0x3fffffffbffffffull}, /* the largest product a right shift leaves */
        {1ull << 63, 0x80000000u, -1, 1ull << 61},
        {0xffffffffull, 0xffffffffu, 0, 0xfffffffeull},
        {0, 0xffffffffu, 3, 0},
        {7, 0x80000000u, 2, 14},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = lab6_scale_delta(cases[i].delta, cases[i].mul, cases[i].shift);

        if (got != cases[i].want)
            fail_msg("lab6_scale_delta(0x%llx, mul 0x%x, shift %d) gave 0x%llx, expected 0x%llx (the product in 96 "
                     "bits, shifted right by 32)",
                     (unsigned long long)cases[i].delta, cases[i].mul, cases[i].shift, (unsigned long long)got,
                     (unsigned long long)cases[i].want);
    }
}

static void publish_odd_and_wrapping_versions(void **state)
{
    struct pvclock_vcpu_time_info odd = {.version = 7, .tsc_timestamp = 1, .system_time = 2};
    struct pvclock_vcpu_time_info top = {.version = 0xffffffffu - 1, .tsc_timestamp = 5, .system_time = 6};
    struct pvclock_vcpu_time_info fresh = {0};
    struct lab6_clock c = {
        .tsc_timestamp = 111, .system_time = 222, .mul = 0x80000000u, .shift = 1, .flags = PVCLOCK_TSC_STABLE_BIT};

    (void)state;
    lab6_publish_checked(&fresh, &c, "the first publish, over a zeroed page (version 0 -> 1 -> 2)");
    lab6_publish_checked(&odd, &c, "a publish over an odd version 7 (a writer cut off: (7 + 1) | 1 = 9, then 10)");
    lab6_publish_checked(&top, &c, "a publish at version 0xfffffffe (it wraps: 0xffffffff, then 0)");
}

static void resume_after_migration(void **state)
{
    /* A 2.5 GHz host to a 3 GHz one whose TSC reads lower than the old one did at the pause. */
    struct lab6_clock c = {.tsc_hz = 2500000000ull,
                           .tsc_timestamp = 1ull << 40,
                           .system_time = 1000000000ull,
                           .mul = 3435973836u,
                           .shift = -1,
                           .flags = PVCLOCK_TSC_STABLE_BIT};
    uint64_t at_pause = (1ull << 40) + 5000000000ull, now = 12345;
    uint64_t stood = 1000000000ull + (uint64_t)(((unsigned __int128)(5000000000ull >> 1) * 3435973836u) >> 32);

    (void)state;
    lab6_clock_resume(&c, at_pause, now, 3000000000ull, 0);
    if (c.tsc_hz != 3000000000ull || c.mul != 2863311530u || c.shift != -1)
        fail_msg("after a migration to a 3 GHz TSC the scale must be recomputed for it (mul 2863311530, shift -1); "
                 "got tsc_hz %llu, mul %u, shift %d",
                 (unsigned long long)c.tsc_hz, c.mul, c.shift);
    if (c.tsc_timestamp != now || c.system_time != stood)
        fail_msg("after a migration the point must be (the new host's TSC now = %llu, the time at the pause = %llu), "
                 "even though the new TSC is lower; got (%llu, %llu)",
                 (unsigned long long)now, (unsigned long long)stood, (unsigned long long)c.tsc_timestamp,
                 (unsigned long long)c.system_time);
    if (lab6_clock_at(&c, now + 3000000000ull) != stood + 999999999ull)
        fail_msg("one second of the new 3 GHz TSC after the resume must add one second (less a ns of rounding): "
                 "expected %llu, got %llu",
                 (unsigned long long)(stood + 999999999ull),
                 (unsigned long long)lab6_clock_at(&c, now + 3000000000ull));
}

static void torn_reads_under_concurrent_publish(void **state)
{
    struct lab6_run r = {.params = {.reads = lab6_reads(200000)}, .action = LAB6_HOST_REPUBLISH};
    struct guest_run run;

    (void)state;
    lab6_run_clock(&r, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    lab6_expect_exits(&run, "reads while another host thread publishes");
    if (r.publishes == 0)
        fail_msg("the test's thread never published (the guest did %llu reads)", (unsigned long long)r.params.done);
    if (r.params.backwards)
        fail_msg("while a host thread re-published the page %llu times (the same line through two points a "
                 "millisecond apart), %llu guest reads went backwards: some read mixed two publishes, so the version "
                 "protocol let a half-written page through",
                 (unsigned long long)r.publishes, (unsigned long long)r.params.backwards);
    print_message("%llu publishes by a host thread during %llu guest reads: %llu reads retried, none torn\n",
                  (unsigned long long)r.publishes, (unsigned long long)r.params.reads,
                  (unsigned long long)r.params.retries);
    harness_free(&run);
}

static void steal_publish_wrapping_and_large(void **state)
{
    (void)state;
    lab6_steal_checked(0xfffffffeu, 123, 456, "an update at version 0xfffffffe (it wraps: 0xffffffff, then 0)");
    lab6_steal_checked(2, 0xffffffff00000000ull, 0x200000000ull, "steal past 2^32 ns (a 64-bit add, not 32)");
}

/*
 * A migration to a slower TSC with time jumping over the pause: the page takes the new scale, time never goes
 * backwards, and across the resume it moves by at least the pause (it jumps), not less. Without TSC scaling
 * (KVM in QEMU) the new host has the same rate.
 */
static void migration_slower_tsc_time_jumps(void **state)
{
    struct lab6_run r = {
        .params = {.reads = lab6_reads(400000)}, .action = LAB6_HOST_MIGRATE, .pause_ms = 150, .clock_runs = true};
    const struct mvm_backend *be;
    struct guest_run run;
    uint32_t mul = 0;
    int8_t shift = 0;
    int fd, cap = 0;

    (void)state;
    if (mvm_backend_pick(harness_backend_name(), &be) == 0 && (fd = be->open_dev()) >= 0) {
        cap = be->ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL);
        be->close(fd);
    }
    r.tsc_khz = cap > 0 ? 1000000 : lab6_host_tsc_khz(); /* a 1 GHz host; without TSC scaling, the same rate */
    lab6_run_clock(&r, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    lab6_expect_exits(&run, "a migration with time jumping");
    lab6_tsc_scale((uint64_t)r.tsc_khz * 1000, &mul, &shift);
    if (r.params.backwards || r.params.republished != 1 || r.page.tsc_to_system_mul != mul || r.page.tsc_shift != shift)
        fail_msg("migration to a %u kHz TSC: %llu reads backwards, %llu publishes seen (1 expected), page mul %u "
                 "shift %d (that rate's scale is mul %u, shift %d)",
                 r.tsc_khz, (unsigned long long)r.params.backwards, (unsigned long long)r.params.republished,
                 r.page.tsc_to_system_mul, r.page.tsc_shift, mul, shift);
    if (r.params.step_ns < run.res.paused_ns)
        fail_msg("time jumps over the migration's pause of %llu ns, but across it moved only %llu ns",
                 (unsigned long long)run.res.paused_ns, (unsigned long long)r.params.step_ns);
    harness_free(&run);
}

static void exit_dump_exact(void **state)
{
    static const char head[] = "IO out port=0x0510 size=4 count=1 data=11000000\n"
                               "IO out port=0x0510 size=4 count=1 data=11000000\n"
                               "IO out port=0x0510 size=4 count=1 data=11000000\n"
                               "IO out port=0x0510 size=4 count=1 data=11000000\n"
                               "IO out port=0x03f8 size=1 count=1 data=70\n";
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab6/clock", HARNESS_MODE_LONG, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (strncmp(run.exits, head, sizeof(head) - 1))
        fail_msg("lab6/clock's exits must start with its 4 doorbell OUTs (3 refused, 1 page) and then its first "
                 "console byte, no other exit between:\n%.600s",
                 run.exits);
    lab6_expect_exits(&run, "lab6/clock with its defaults");
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tsc_scale_extremes),
        cmocka_unit_test(scale_delta_edges),
        cmocka_unit_test(publish_odd_and_wrapping_versions),
        cmocka_unit_test(resume_after_migration),
        cmocka_unit_test(torn_reads_under_concurrent_publish),
        cmocka_unit_test(exit_dump_exact),
        cmocka_unit_test(steal_publish_wrapping_and_large),
        cmocka_unit_test(migration_slower_tsc_time_jumps),
    };

    return harness_main(argc, argv, "lab6_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
