/* Unit tests of the page-walk model: the exact reference counts of native and nested walks, with and without caches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pagewalk_model.h"

#define KIB 1024ull
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

static void cold_walks(void **state)
{
    (void)state;
    assert_int_equal(pagewalk_refs_cold(4, 0), 4);  /* native, 4 KiB pages: PML4E, PDPTE, PDE, PTE */
    assert_int_equal(pagewalk_refs_cold(3, 0), 3);  /* native, 2 MiB pages: the PDE is the leaf */
    assert_int_equal(pagewalk_refs_cold(4, 4), 24); /* the 2D worst case: 4 x (4 + 1) + 4 */
    assert_int_equal(pagewalk_refs_cold(3, 3), 15); /* 2 MiB pages in both dimensions */
    assert_int_equal(pagewalk_refs_cold(4, 3), 19);
    assert_int_equal(pagewalk_refs_cold(3, 4), 19);
    assert_int_equal(pagewalk_refs_cold(5, 4), 0); /* not modelled */
    assert_int_equal(pagewalk_refs_cold(4, 2), 0);
}

/* The first access of a fresh model is a cold walk whatever the caches: the model agrees with the formula. */
static void first_access_is_cold(void **state)
{
    static const unsigned levels[][2] = {{4, 0}, {3, 0}, {4, 4}, {3, 3}, {4, 3}, {3, 4}};
    struct pagewalk_model m;

    (void)state;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        for (unsigned pwc = 0; pwc <= 32; pwc += 32) {
            struct pagewalk_config cfg = {levels[i][0], levels[i][1], pwc, 64};

            assert_true(pagewalk_model_init(&m, &cfg));
            assert_int_equal(pagewalk_model_access(&m, 0x12345000), pagewalk_refs_cold(levels[i][0], levels[i][1]));
        }
    }
}

static void nested_split_into_guest_and_host(void **state)
{
    struct pagewalk_config cfg = {.guest_levels = 4, .host_levels = 4};
    struct pagewalk_model m;

    (void)state;
    assert_true(pagewalk_model_init(&m, &cfg));
    assert_int_equal(pagewalk_model_access(&m, 0x7000), 24);
    /* 4 guest entries; 5 host walks of 4 (four guest tables, then the data page). */
    assert_int_equal(m.stats.guest_refs, 4);
    assert_int_equal(m.stats.host_refs, 20);
}

static void warm_pwc_native(void **state)
{
    struct pagewalk_config cfg = {.guest_levels = 4, .pwc_entries = 32};
    struct pagewalk_model m;

    (void)state;
    assert_true(pagewalk_model_init(&m, &cfg));
    assert_int_equal(pagewalk_model_access(&m, 0), 4);
    /* Same 2 MiB region: the PDE is cached, only the PTE is read. */
    assert_int_equal(pagewalk_model_access(&m, 0x1000), 1);
    /* Next 2 MiB region, same 1 GiB: the PDPTE is cached; PDE and PTE are read. */
    assert_int_equal(pagewalk_model_access(&m, 2 * MIB), 2);
    /* Next 1 GiB: only the PML4E helps. */
    assert_int_equal(pagewalk_model_access(&m, GIB), 3);
}

static void warm_pwc_nested(void **state)
{
    struct pagewalk_config cfg = {.guest_levels = 4, .host_levels = 4, .pwc_entries = 32};
    struct pagewalk_model m;

    (void)state;
    assert_true(pagewalk_model_init(&m, &cfg));
    assert_int_equal(pagewalk_model_access(&m, 0), 24);
    /* Guest PDE cached: read the guest PTE (1 host ref, its table's host PDE is cached, + 1) and the data (1). */
    assert_int_equal(pagewalk_model_access(&m, 0x1000), 3);
}

/* Sequential 4 KiB steps through 2 MiB: one cold walk, then the PWC's cost per page; without PWC every walk is cold. */
static void sequential_totals(void **state)
{
    struct pagewalk_config native = {4, 0, 0, 0}, native_pwc = {4, 0, 32, 0};
    struct pagewalk_config nested = {4, 4, 0, 0}, nested_pwc = {4, 4, 32, 0};
    const uint64_t n = 512;

    (void)state;
    assert_int_equal(pagewalk_simulate(&native, PAGEWALK_SEQUENTIAL, 2 * MIB, n, 1).refs, 4 * n);
    assert_int_equal(pagewalk_simulate(&native_pwc, PAGEWALK_SEQUENTIAL, 2 * MIB, n, 1).refs, 4 + (n - 1) * 1);
    assert_int_equal(pagewalk_simulate(&nested, PAGEWALK_SEQUENTIAL, 2 * MIB, n, 1).refs, 24 * n);
    assert_int_equal(pagewalk_simulate(&nested_pwc, PAGEWALK_SEQUENTIAL, 2 * MIB, n, 1).refs, 24 + (n - 1) * 3);
}

static void tlb_hits_cost_nothing(void **state)
{
    struct pagewalk_config cfg = {.guest_levels = 4, .host_levels = 4, .tlb_entries = 8};
    struct pagewalk_stats s;

    (void)state;
    /* 8 pages, visited 10 times over: only the first round walks. */
    s = pagewalk_simulate(&cfg, PAGEWALK_SEQUENTIAL, 8 * 4 * KIB, 80, 1);
    assert_int_equal(s.walks, 8);
    assert_int_equal(s.refs, 8 * 24);
    /* 9 pages through 8 LRU entries in a loop: every access misses. */
    s = pagewalk_simulate(&cfg, PAGEWALK_SEQUENTIAL, 9 * 4 * KIB, 90, 1);
    assert_int_equal(s.walks, 90);
}

/* A 2 MiB guest page on 4 KiB host pages splinters: the TLB holds 4 KiB translations. */
static void tlb_reach_follows_smaller_page(void **state)
{
    struct pagewalk_config big = {3, 3, 0, 4}, splintered = {3, 4, 0, 4};

    (void)state;
    assert_int_equal(pagewalk_simulate(&big, PAGEWALK_SEQUENTIAL, 2 * MIB, 512, 1).walks, 1);
    assert_int_equal(pagewalk_simulate(&splintered, PAGEWALK_SEQUENTIAL, 2 * MIB, 512, 1).walks, 512);
}

/* Random access over 64 GiB defeats a 32-entry PWC that sequential access keeps warm. */
static void random_costs_more(void **state)
{
    struct pagewalk_config cfg = {4, 4, 32, 0}, cold = {4, 4, 0, 0};
    struct pagewalk_stats seq, rnd, rnd_cold;
    const uint64_t n = 4096;

    (void)state;
    seq = pagewalk_simulate(&cfg, PAGEWALK_SEQUENTIAL, 64 * GIB, n, 7);
    rnd = pagewalk_simulate(&cfg, PAGEWALK_RANDOM, 64 * GIB, n, 7);
    rnd_cold = pagewalk_simulate(&cold, PAGEWALK_RANDOM, 64 * GIB, n, 7);
    assert_int_equal(rnd_cold.refs, 24 * n);
    assert_true(seq.refs < 4 * n);
    assert_true(rnd.refs > 2 * seq.refs);
    assert_true(rnd.refs < rnd_cold.refs);
    /* Deterministic: the same seed gives the same counts. */
    assert_int_equal(pagewalk_simulate(&cfg, PAGEWALK_RANDOM, 64 * GIB, n, 7).refs, rnd.refs);
}

static void patterns_stay_in_footprint(void **state)
{
    (void)state;
    assert_int_equal(pagewalk_pattern_addr(PAGEWALK_SEQUENTIAL, 3, 16 * KIB, 4 * KIB, 0), 12 * KIB);
    assert_int_equal(pagewalk_pattern_addr(PAGEWALK_SEQUENTIAL, 4, 16 * KIB, 4 * KIB, 0), 0);
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t a = pagewalk_pattern_addr(PAGEWALK_RANDOM, i, 40 * KIB, 4 * KIB, 99);

        assert_true(a < 40 * KIB);
        assert_int_equal(a % (4 * KIB), 0);
    }
}

static void bad_configs_rejected(void **state)
{
    struct pagewalk_config bad_levels = {2, 0, 0, 0}, bad_pwc = {4, 4, PAGEWALK_MAX_PWC + 1, 0};
    struct pagewalk_model m;

    (void)state;
    assert_false(pagewalk_model_init(&m, &bad_levels));
    assert_false(pagewalk_model_init(&m, &bad_pwc));
    assert_int_equal(pagewalk_simulate(&bad_levels, PAGEWALK_SEQUENTIAL, 4096, 10, 0).refs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cold_walks),
        cmocka_unit_test(first_access_is_cold),
        cmocka_unit_test(nested_split_into_guest_and_host),
        cmocka_unit_test(warm_pwc_native),
        cmocka_unit_test(warm_pwc_nested),
        cmocka_unit_test(sequential_totals),
        cmocka_unit_test(tlb_hits_cost_nothing),
        cmocka_unit_test(tlb_reach_follows_smaller_page),
        cmocka_unit_test(random_costs_more),
        cmocka_unit_test(patterns_stay_in_footprint),
        cmocka_unit_test(bad_configs_rejected),
    };

    return cmocka_run_group_tests_name("pagewalk_model", tests, NULL, NULL);
}
