/* Lab 6 visible tests: the scale, the 96-bit multiply, the version protocol, resume, and guests reading with no exit.
 */
#include "lab6_util.h"

/* KVM's kvm_get_time_scale(NSEC_PER_SEC, hz) for TSCs of common rates. */
static const struct {
    uint64_t hz;
    uint32_t mul;
    int8_t shift;
} scales[] = {
    {1000000000ull, 2147483648u, 1},  {2000000000ull, 2147483648u, 0},  {2500000000ull, 3435973836u, -1},
    {3000000000ull, 2863311530u, -1}, {2994370000ull, 2868695115u, -1}, {100000000ull, 2684354560u, 4},
};

static void tsc_scale_matches_kvm(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scales) / sizeof(scales[0]); i++) {
        uint32_t mul = 0;
        int8_t shift = 0;

        lab6_tsc_scale(scales[i].hz, &mul, &shift);
        if (mul != scales[i].mul || shift != scales[i].shift)
            fail_msg("lab6_tsc_scale(%llu Hz) gave mul %u, shift %d; KVM's kvm_get_time_scale gives mul %u, shift %d "
                     "(the rate brought into (1e9, 2e9] by shifts, then mul = (1e9 << 32) / rate)",
                     (unsigned long long)scales[i].hz, mul, shift, scales[i].mul, scales[i].shift);
    }
}

static uint64_t scale_ref(uint64_t delta, uint32_t mul, int8_t shift)
{
    delta = shift < 0 ? delta >> -shift : delta << shift;
    return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

static void scale_delta_96bit(void **state)
{
    static const struct {
        uint64_t delta;
        uint32_t mul;
        int8_t shift;
        const char *why;
    } cases[] = {
        {3000000000ull, 2863311530u, -1, "one second of a 3 GHz TSC"},
        {1ull << 40, 0xffffffffu, 0, "delta * mul passes 2^64 (a 64-bit multiply wraps)"},
        {5000000000ull * 3600, 3435973836u, -1, "an hour of a 2.5 GHz TSC (the product needs 96 bits)"},
        {123456789, 2147483648u, 1, "a left shift"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = lab6_scale_delta(cases[i].delta, cases[i].mul, cases[i].shift);
        uint64_t want = scale_ref(cases[i].delta, cases[i].mul, cases[i].shift);

        if (got != want)
            fail_msg("lab6_scale_delta(%llu, mul %u, shift %d) (%s) gave %llu; (delta shifted * mul) >> 32 is %llu",
                     (unsigned long long)cases[i].delta, cases[i].mul, cases[i].shift, cases[i].why,
                     (unsigned long long)got, (unsigned long long)want);
    }
}

static void publish_version_protocol(void **state)
{
    struct pvclock_vcpu_time_info old = {.version = 4,
                                         .tsc_timestamp = 1000,
                                         .system_time = 2000,
                                         .tsc_to_system_mul = 2147483648u,
                                         .tsc_shift = 1,
                                         .flags = 1};
    struct lab6_clock c = {.tsc_hz = 2500000000ull,
                           .tsc_timestamp = 0x1234567890ull,
                           .system_time = 987654321,
                           .mul = 3435973836u,
                           .shift = -1,
                           .flags = PVCLOCK_TSC_STABLE_BIT};

    (void)state;
    lab6_publish_checked(&old, &c, "a publish over version 4");
}

static void resume_continuous_and_jump(void **state)
{
    struct lab6_clock c0 = {.tsc_hz = 2500000000ull,
                            .tsc_timestamp = 1000000,
                            .system_time = 5000000000ull,
                            .mul = 3435973836u,
                            .shift = -1,
                            .flags = PVCLOCK_TSC_STABLE_BIT};
    struct lab6_clock c;
    uint64_t at_pause = 1000000 + 2500000000ull; /* one second after the point: 6 s of guest time */
    uint64_t now = at_pause + 750000000ull;      /* 0.3 s of TSC later */
    uint64_t t_pause =
        5000000000ull + scale_ref(2500000000ull, c0.mul, c0.shift); /* 1 ns short of 6 s: mul rounds down */

    (void)state;
    if (lab6_clock_at(&c0, at_pause) != t_pause)
        fail_msg("lab6_clock_at: one second of a 2.5 GHz TSC after a point at 5 s must give %llu ns, gave %llu",
                 (unsigned long long)t_pause, (unsigned long long)lab6_clock_at(&c0, at_pause));
    c = c0;
    lab6_clock_resume(&c, at_pause, now, 2500000000ull, 0);
    if (c.tsc_timestamp != now || c.system_time != t_pause || c.mul != c0.mul || c.shift != c0.shift)
        fail_msg("resume with add_ns 0 (time stands still): the point must become (tsc_now %llu, %llu ns, the "
                 "time at the pause) with the same scale; got (%llu, %llu), mul %u, shift %d",
                 (unsigned long long)now, (unsigned long long)t_pause, (unsigned long long)c.tsc_timestamp,
                 (unsigned long long)c.system_time, c.mul, c.shift);
    c = c0;
    lab6_clock_resume(&c, at_pause, now, 2500000000ull, 300000000);
    if (c.system_time != t_pause + 300000000 || lab6_clock_at(&c, now + 2500000000ull) != 2 * t_pause - 4700000000ull)
        fail_msg("resume with add_ns = 0.3 s (time jumps by the pause): the point must be %llu ns at tsc_now (the "
                 "time at the pause + 0.3 s), and one second of TSC later %llu; got %llu and %llu",
                 (unsigned long long)(t_pause + 300000000), (unsigned long long)(2 * t_pause - 4700000000ull),
                 (unsigned long long)c.system_time, (unsigned long long)lab6_clock_at(&c, now + 2500000000ull));
    if (c.flags != PVCLOCK_TSC_STABLE_BIT || c.tsc_hz != 2500000000ull)
        fail_msg("lab6_clock_resume keeps the flags and records the TSC rate it was given");
}

static void guest_reads_without_exits(void **state)
{
    struct lab6_run r = {.params = {.reads = lab6_reads(1000000)}};
    struct guest_run run;

    (void)state;
    lab6_run_clock(&r, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    lab6_expect_exits(&run, "lab6/clock");
    if (r.params.done != r.params.reads || r.params.backwards != 0)
        fail_msg("the guest did %llu of %llu reads, %llu of them backwards", (unsigned long long)r.params.done,
                 (unsigned long long)r.params.reads, (unsigned long long)r.params.backwards);
    if (r.page.version == 0 || (r.page.version & 1))
        fail_msg("the page's version at the end is %u: it must be even and non-zero once published", r.page.version);
    print_message("lab6/clock on %s: %llu reads, 0 exits among them, never backwards, %llu retries, %llu TSC "
                  "cycles per read, largest step %llu ns\n",
                  run.backend, (unsigned long long)r.params.reads, (unsigned long long)r.params.retries,
                  (unsigned long long)(r.params.tsc_cycles / r.params.reads), (unsigned long long)r.params.max_step_ns);
    harness_free(&run);
}

static void clock_agrees_with_kvmclock(void **state)
{
    struct lab6_run r = {.params = {.reads = lab6_reads(1000000), .flags = MVM_PVC_P_KVMCLOCK}};
    struct guest_run run;

    (void)state;
    lab6_run_clock(&r, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "kvmclock: read beside it"))
        fail_msg("the guest found no kvmclock (CPUID 0x40000001 bit 3) or did not compare:\n%s", run.console);
    lab6_expect_exits(&run, "lab6/clock with kvmclock (its MSR write is handled in the kernel)");
    print_message("pvclock - kvmclock on %s: %lld ns at the start, at most %llu ns apart over the run\n", run.backend,
                  (long long)r.params.kvm_diff_first, (unsigned long long)r.params.kvm_diff_max);
    harness_free(&run);
}

/* A pause in the middle of the reads: time never goes backwards; it stands still, or jumps by the pause. */
static void pause_case(bool clock_runs)
{
    struct lab6_run r = {
        .params = {.reads = lab6_reads(1000000)}, .action = LAB6_HOST_PAUSE, .pause_ms = 300, .clock_runs = clock_runs};
    struct guest_run run;
    const char *mode = clock_runs ? "jumps by the pause" : "stands still";
    unsigned long long pause_ns;

    lab6_run_clock(&r, &run);
    pause_ns = run.res.paused_ns;
    EXPECT_STOP(&run, MVM_STOP_DONE);
    lab6_expect_exits(&run, "a pause is no exit (KVM_RUN returns -EINTR)");
    if (run.res.pauses != 1 || r.pauses != 1 || r.resumes != 1)
        fail_msg("expected one pause in the middle of the reads; the run took %u, the devices saw %d and %d resumes",
                 run.res.pauses, r.pauses, r.resumes);
    if (r.params.backwards)
        fail_msg("time %s: %llu reads went backwards across the pause", mode, (unsigned long long)r.params.backwards);
    if (r.params.republished != 1)
        fail_msg("the page must be published once during the reads, at the resume; the guest saw %llu new versions",
                 (unsigned long long)r.params.republished);
    /*
     * At the new version the guest saw time move by step_ns while the TSC moved by step_tsc_ns (in ns), the pause
     * included. Time jumps: step_ns takes in the whole pause. Time stands still: step_ns is step_tsc_ns less the
     * pause. (A quarter of the pause is left for the TSC rate's calibration and the sampling around the pause.)
     */
    if (clock_runs && r.params.step_ns < pause_ns / 4 * 3)
        fail_msg("time jumps by the pause: the VM stood %llu ns, so time must move by at least that when the page "
                 "changes at the resume; it moved %llu ns (was add_ns given to the new point?)",
                 pause_ns, (unsigned long long)r.params.step_ns);
    if (!clock_runs && r.params.step_ns + pause_ns / 4 * 3 > r.params.step_tsc_ns)
        fail_msg("time stands still over the pause (%llu ns): across it the TSC moved %llu ns, so time may move only "
                 "that less the pause; it moved %llu ns (the new point's system_time must be the time at the pause, "
                 "at tsc_now)",
                 pause_ns, (unsigned long long)r.params.step_tsc_ns, (unsigned long long)r.params.step_ns);
    print_message("pause of %llu ns, time %s: across it time moved %llu ns while the TSC moved %llu ns\n", pause_ns,
                  mode, (unsigned long long)r.params.step_ns, (unsigned long long)r.params.step_tsc_ns);
    harness_free(&run);
}

static void pause_time_stands_still(void **state)
{
    (void)state;
    pause_case(false);
}

static void pause_time_jumps(void **state)
{
    (void)state;
    pause_case(true);
}

/*
 * kvmclock across a "stop" pause: KVM_SET_CLOCK puts KVM's clock back, and KVM publishes its page again at once
 * (KVM_REQ_CLOCK_UPDATE), so the guest's kvmclock stands still over the pause as lab 6's page does: the guest
 * keeps comparing the two and asserts they stay within 1 ms (a page left alone would be 300 ms ahead).
 */
static void kvmclock_follows_set_clock(void **state)
{
    struct lab6_run r = {.params = {.reads = lab6_reads(400000), .flags = MVM_PVC_P_KVMCLOCK},
                         .action = LAB6_HOST_PAUSE,
                         .pause_ms = 300};
    struct guest_run run;

    (void)state;
    lab6_run_clock(&r, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (run.res.pauses != 1 || r.params.republished != 1 || !strstr(run.console, "kvmclock: read beside it"))
        fail_msg(
            "expected one pause, one publish of lab 6's page and kvmclock compared; got %u pauses, %llu publishes, "
            "console:\n%s",
            run.res.pauses, (unsigned long long)r.params.republished, run.console);
    print_message("a 300 ms pause with time standing still: pvclock and kvmclock at most %llu ns apart over the run\n",
                  (unsigned long long)r.params.kvm_diff_max);
    harness_free(&run);
}

/* Whether the backend under test can run a guest TSC at another rate (KVM_CAP_TSC_CONTROL). */
static bool tsc_scaling(void)
{
    const struct mvm_backend *be;
    int fd, cap = 0;

    if (mvm_backend_pick(harness_backend_name(), &be) == 0 && (fd = be->open_dev()) >= 0) {
        cap = be->ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL);
        be->close(fd);
    }
    return cap > 0;
}

/*
 * A "migration" in the middle of the reads: the VM pauses, its TSC moves to 1.5 times its rate (KVM_SET_TSC_KHZ,
 * IA32_TSC put back), and resumes. Lab 6's page is published once more, with the scale of the new rate, and
 * time neither goes backwards nor moves by more than the TSC did (time stands still over the pause). Where the
 * backend cannot scale the TSC (KVM in QEMU), the new host has the same rate: the rest is checked the same.
 */
static void migration_keeps_time_monotonic(void **state)
{
    struct lab6_run r = {.params = {.reads = lab6_reads(1000000), .flags = MVM_PVC_P_KVMCLOCK},
                         .action = LAB6_HOST_MIGRATE,
                         .pause_ms = 100};
    struct guest_run run;
    uint32_t mul = 0;
    int8_t shift = 0;
    bool scaled;

    (void)state;
    scaled = tsc_scaling();
    r.tsc_khz = lab6_host_tsc_khz();
    if (scaled)
        r.tsc_khz = r.tsc_khz / 2 * 3; /* 1.5 times the rate; without scaling, the same rate */
    if (!r.tsc_khz)
        fail_msg("KVM_GET_TSC_KHZ gave no rate: %s", mvm_error());
    lab6_run_clock(&r, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    lab6_expect_exits(&run, "a migration is no exit (KVM_RUN returns -EINTR)");
    if (run.res.pauses != 1)
        fail_msg("expected one pause with a migration to a %u kHz TSC; the run took %u pauses", r.tsc_khz,
                 run.res.pauses);
    if (r.params.backwards || r.params.republished != 1)
        fail_msg("across a migration to a %u kHz TSC: %llu reads went backwards, the page was published %llu times "
                 "during the reads (once expected, at the resume)",
                 r.tsc_khz, (unsigned long long)r.params.backwards, (unsigned long long)r.params.republished);
    lab6_tsc_scale((uint64_t)r.tsc_khz * 1000, &mul, &shift);
    if (r.page.tsc_to_system_mul != mul || r.page.tsc_shift != shift)
        fail_msg("after the migration the page must carry the scale of the new %u kHz TSC (mul %u, shift %d); it has "
                 "mul %u, shift %d: the resume must read the rate again (KVM_GET_TSC_KHZ) and recompute it",
                 r.tsc_khz, mul, shift, r.page.tsc_to_system_mul, r.page.tsc_shift);
    if (r.params.step_ns > r.params.step_tsc_ns)
        fail_msg("time stands still over the migration's pause: across it time moved %llu ns, more than the TSC "
                 "did (%llu ns at the new scale)",
                 (unsigned long long)r.params.step_ns, (unsigned long long)r.params.step_tsc_ns);
    print_message("migration to a %u kHz TSC%s after %llu reads: page scale mul %u, shift %d, %llu reads in all, "
                  "none backwards; kvmclock beside it at most %llu ns apart\n",
                  r.tsc_khz, scaled ? "" : " (the same rate: this backend cannot scale the TSC)",
                  (unsigned long long)r.params.reads / 2, mul, shift, (unsigned long long)r.params.reads,
                  (unsigned long long)r.params.kvm_diff_max);
    harness_free(&run);
}

static void steal_publish_protocol(void **state)
{
    (void)state;
    lab6_steal_checked(0, 0, 0, "the first update of a zeroed page (version 0 -> 1 -> 2, steal stays 0)");
    lab6_steal_checked(4, 1000000, 250000, "adding 250 us to 1 ms over version 4");
    lab6_steal_checked(7, 5, 1ull << 40, "an update over an odd version 7 (a writer cut off: 9, then 10)");
}

/*
 * lab6/steal: its steal page registered and brought up to date at every round; at half the rounds the VM pauses
 * for 300 ms with guest time jumping over it: the resume adds the pause (less nothing: steal is at least the
 * pause, within the pause's own measure), and steal never goes down on either page (lab 6's, and KVM's where
 * CPUID offers MSR_KVM_STEAL_TIME).
 */
static void pause_adds_steal(void **state)
{
    struct lab6_run r = {.params = {.reads = 8},
                         .steal = {.spin_us = 2000},
                         .action = LAB6_HOST_PAUSE,
                         .pause_ms = 300,
                         .clock_runs = true};
    struct guest_run run;
    uint64_t added, pause_ns;

    (void)state;
    lab6_run_guest(&r, "lab6/steal", &run);
    pause_ns = run.res.paused_ns;
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (run.res.pauses != 1)
        fail_msg("expected one pause at half the rounds, the run took %u", run.res.pauses);
    added = r.steal.after_wait_ns - r.steal.before_wait_ns;
    if (r.steal.after_wait_ns < r.steal.before_wait_ns || added < pause_ns)
        fail_msg("a pause of %llu ns with guest time jumping over it must add at least that much steal at the "
                 "resume (the vCPU could not run); steal went from %llu to %llu ns",
                 (unsigned long long)pause_ns, (unsigned long long)r.steal.before_wait_ns,
                 (unsigned long long)r.steal.after_wait_ns);
    if (r.steal.backwards || (r.steal.version & 1) || r.steal.last_ns < r.steal.after_wait_ns)
        fail_msg("steal went down %llu times, or the page ended odd (version %u) or below the resume's value",
                 (unsigned long long)r.steal.backwards, r.steal.version);
    if (r.steal.has_kvm && !lab6_kvm_pvm("MSR_KVM_STEAL_TIME (it leaves the page unwritten)") &&
        ((r.steal.kvm_version_first & 1) || r.steal.kvm_version_first == 0 || (r.steal.kvm_version & 1) ||
         r.steal.kvm_last_ns < r.steal.kvm_first_ns))
        fail_msg("KVM's steal page (MSR_KVM_STEAL_TIME): version %u right after the WRMSR and %u at the end (both "
                 "even and non-zero expected: KVM writes it before the guest runs on), steal from %llu to %llu ns",
                 r.steal.kvm_version_first, r.steal.kvm_version, (unsigned long long)r.steal.kvm_first_ns,
                 (unsigned long long)r.steal.kvm_last_ns);
    print_message("pause of %llu ns: lab 6's steal rose by %llu ns across it; KVM's steal time %s (%llu ns over the "
                  "run: run delay only, a pause is not steal to KVM)\n",
                  (unsigned long long)pause_ns, (unsigned long long)added, r.steal.has_kvm ? "on" : "not offered",
                  (unsigned long long)(r.steal.kvm_last_ns - r.steal.kvm_first_ns));
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tsc_scale_matches_kvm),
        cmocka_unit_test(scale_delta_96bit),
        cmocka_unit_test(publish_version_protocol),
        cmocka_unit_test(resume_continuous_and_jump),
        cmocka_unit_test(guest_reads_without_exits),
        cmocka_unit_test(clock_agrees_with_kvmclock),
        cmocka_unit_test(pause_time_stands_still),
        cmocka_unit_test(pause_time_jumps),
        cmocka_unit_test(migration_keeps_time_monotonic),
        cmocka_unit_test(steal_publish_protocol),
        cmocka_unit_test(pause_adds_steal),
        cmocka_unit_test(kvmclock_follows_set_clock),
    };

    return harness_main(argc, argv, "lab6", tests, sizeof(tests) / sizeof(tests[0]));
}
