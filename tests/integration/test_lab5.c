/* Lab 5 visible tests: queue set-up checks, a chain walk, pop and push, the notification decision, then virtio-net
 * guests: kicks per batch, loopback, the transport. */
#include "lab5_util.h"

static void virtq_setup_checks(void **state)
{
    struct mvm_vm *vm = lab5_vm();
    struct lab5_virtq vq;
    static const struct {
        const char *what;
        uint16_t num;
        uint64_t desc, avail, used;
    } bad[] = {
        {"QueueNum 0", 0, T_DESC, T_AVAIL, T_USED},
        {"QueueNum 6 (not a power of two)", 6, T_DESC, T_AVAIL, T_USED},
        {"QueueNum 512 (above QueueNumMax 256)", 512, T_DESC, T_AVAIL, T_USED},
        {"QueueDesc 0x10008 (not 16-byte aligned)", 8, T_DESC + 8, T_AVAIL, T_USED},
        {"QueueDriver 0x11001 (not 2-byte aligned)", 8, T_DESC, T_AVAIL + 1, T_USED},
        {"QueueDevice 0x12002 (not 4-byte aligned)", 8, T_DESC, T_AVAIL, T_USED + 2},
        {"QueueDesc at 0x1ffff0: 128 bytes do not fit in 2 MiB of RAM", 8, 0x1ffff0, T_AVAIL, T_USED},
        {"QueueDevice at 0x1fffe0: 4 + 64 + 2 bytes do not fit", 8, T_DESC, T_AVAIL, 0x1fffe0},
        {"QueueDriver in the device's MMIO range", 8, T_DESC, MVM_VIRTIO_MMIO_BASE, T_USED},
    };
    int rc;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = lab5_virtq_setup(&vq, vm, 1, bad[i].num, bad[i].desc, bad[i].avail, bad[i].used, 0);
        if (rc != -EPROTO)
            fail_msg("lab5_virtq_setup, %s: expected -EPROTO (a device error), got %d (%s)", bad[i].what, rc,
                     rc ? mvm_error() : "accepted");
    }
    rc = lab5_virtq_setup(&vq, vm, 1, T_NUM, T_DESC, T_AVAIL, T_USED, 1ull << VIRTIO_RING_F_EVENT_IDX);
    if (rc != 0)
        fail_msg("lab5_virtq_setup of a good queue failed: %s", mvm_error());
    if (vq.ring.num != T_NUM || (void *)vq.ring.desc != vm_gpa_to_hva(vm, T_DESC, 1) ||
        (void *)vq.ring.avail != vm_gpa_to_hva(vm, T_AVAIL, 1) || (void *)vq.ring.used != vm_gpa_to_hva(vm, T_USED, 1))
        fail_msg("ring.num must be QueueNum and ring.desc/avail/used the host addresses of the three areas "
                 "(vm_gpa_to_hva)");
    if (!vq.event_idx || vq.indirect || vq.last_avail_idx || vq.used_idx || vq.vm != vm)
        fail_msg(
            "features VIRTIO_RING_F_EVENT_IDX only: expected event_idx true, indirect false, indices 0 and vm set");
    vm_destroy(vm);
}

static void chain_walk_direct(void **state)
{
    struct mvm_vm *vm = lab5_vm();
    struct lab5_virtq vq;
    static struct lab5_chain c;
    int rc;

    (void)state;
    lab5_vq(vm, &vq, 0);
    /* head 5 -> 2 -> 7: 12 readable, 100 readable, 1500 writable */
    desc_put(vm, T_DESC, 5, T_BUF, 12, VRING_DESC_F_NEXT, 2);
    desc_put(vm, T_DESC, 2, T_BUF + 0x100, 100, VRING_DESC_F_NEXT, 7);
    desc_put(vm, T_DESC, 7, T_BUF + 0x1000, 1500, VRING_DESC_F_WRITE, 0);
    rc = lab5_chain_walk(&vq, 5, &c);
    if (rc != 0)
        fail_msg("lab5_chain_walk(head 5) of 5 -> 2 -> 7 failed: %s", mvm_error());
    if (c.head != 5 || c.nbufs != 3 || c.readable != 112 || c.writable != 1500)
        fail_msg("chain 5 -> 2 -> 7: expected head 5, 3 buffers, 112 readable and 1500 writable bytes; got head %u, "
                 "%u buffers, %u and %u",
                 c.head, c.nbufs, c.readable, c.writable);
    if (c.bufs[1].gpa != T_BUF + 0x100 || c.bufs[1].hva != vm_gpa_to_hva(vm, T_BUF + 0x100, 100) ||
        c.bufs[1].len != 100 || c.bufs[1].device_writes || !c.bufs[2].device_writes)
        fail_msg("buffer 1 must be gpa 0x%x len 100 at its host address (vm_gpa_to_hva), readable; buffer 2 "
                 "writable",
                 T_BUF + 0x100);
    rc = lab5_chain_walk(&vq, 8, &c);
    if (rc != -EPROTO)
        fail_msg("lab5_chain_walk(head 8) in a queue of 8: expected -EPROTO, got %d", rc);
    vm_destroy(vm);
}

static void pop_and_push(void **state)
{
    struct mvm_vm *vm = lab5_vm();
    struct lab5_virtq vq;
    static struct lab5_chain c;
    struct vring_used_elem e;
    int rc;

    (void)state;
    lab5_vq(vm, &vq, 0);
    for (uint16_t i = 0; i < 3; i++)
        desc_put(vm, T_DESC, i, T_BUF + i * 0x100, 64 + i, 0, 0);
    rc = lab5_virtq_pop(&vq, &c);
    if (rc != 0)
        fail_msg("lab5_virtq_pop on an empty ring (avail->idx 0): expected 0, got %d (%s)", rc,
                 rc < 0 ? mvm_error() : "a chain");
    avail_put(vm, 0, 2, 1);
    avail_put(vm, 1, 0, 2);
    for (int k = 0; k < 2; k++) {
        rc = lab5_virtq_pop(&vq, &c);
        if (rc != 1 || c.head != (k ? 0 : 2) || c.readable != (k ? 64u : 66u))
            fail_msg("pop %d: expected 1 with head %d (avail->ring[%d]), got %d, head %u (%s)", k, k ? 0 : 2, k, rc,
                     c.head, rc < 0 ? mvm_error() : "");
    }
    if (lab5_virtq_pop(&vq, &c) != 0 || vq.last_avail_idx != 2)
        fail_msg("after popping both entries: pop returns 0 and last_avail_idx is 2 (got %u)", vq.last_avail_idx);
    rc = lab5_virtq_push(&vq, 2, 1234);
    if (rc == 0)
        rc = lab5_virtq_push(&vq, 0, 0);
    if (rc != 0)
        fail_msg("lab5_virtq_push failed: %s", mvm_error());
    assert_int_equal(vm_read(vm, T_USED + 4, &e, sizeof(e)), 0);
    if (e.id != 2 || e.len != 1234 || used_idx_get(vm) != 2 || vq.used_idx != 2)
        fail_msg("after pushing head 2 (len 1234) and head 0: used->ring[0] = {2, 1234} and used->idx = 2; got {%u, "
                 "%u}, used->idx %u, vq.used_idx %u",
                 e.id, e.len, used_idx_get(vm), vq.used_idx);
    if (lab5_virtq_push(&vq, 8, 0) != -EPROTO)
        fail_msg("lab5_virtq_push(head 8) in a queue of 8: expected -EPROTO");
    vm_destroy(vm);
}

static void notify_decision(void **state)
{
    struct mvm_vm *vm = lab5_vm();
    struct lab5_virtq vq;
    uint16_t flags = VRING_AVAIL_F_NO_INTERRUPT, ev;

    (void)state;
    lab5_vq(vm, &vq, 0);
    vq.used_idx = 3;
    if (!lab5_virtq_should_notify(&vq, 2))
        fail_msg("no EVENT_IDX, avail->flags 0: the device notifies");
    assert_int_equal(vm_write(vm, T_AVAIL, &flags, 2), 0);
    if (lab5_virtq_should_notify(&vq, 2))
        fail_msg("no EVENT_IDX, avail->flags VRING_AVAIL_F_NO_INTERRUPT: no notification");
    lab5_vq(vm, &vq, 1ull << VIRTIO_RING_F_EVENT_IDX);
    vq.used_idx = 4; /* entries 0..3 used since old_used 0 */
    for (ev = 0; ev < 6; ev++) {
        bool want = ev < 4;

        /* used_event sits after avail->ring[T_NUM]; the flags are ignored with EVENT_IDX */
        assert_int_equal(vm_write(vm, T_AVAIL + 4 + 2 * T_NUM, &ev, 2), 0);
        if (lab5_virtq_should_notify(&vq, 0) != want)
            fail_msg("EVENT_IDX, used entries [0, 4), used_event %u: expected %s (vring_need_event)", ev,
                     want ? "a notification" : "none");
    }
    vm_destroy(vm);
}

/* The smoke test of the issue: N frames, B per kick, plain path: exactly ceil(N/B) kicks, one exit each. */
static void net_kicks_per_batch(void **state)
{
    static const uint32_t cases[][2] = {{64, 8}, {64, 1}, {50, 16}, {256, 256}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lab5_run r = {.params = {.packets = cases[i][0], .batch = cases[i][1], .flags = MVM_VIRTIO_P_NO_RX}};
        struct guest_run run;
        uint32_t n = cases[i][0], b = cases[i][1], want = (n + b - 1) / b;
        int kicks;

        lab5_run_guest("lab5/net", &r, &run);
        lab5_expect_done(&r, &run, "lab5/net");
        kicks = harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050 len=4 data=01000000");
        if ((uint32_t)kicks != want || r.stats.kicks[LAB5_NET_TXQ] != want || r.stats.tx_frames != n)
            fail_msg("%u frames, %u per kick: expected ceil(%u/%u) = %u QueueNotify exits for queue 1 and %u frames "
                     "on the wire; got %d exits, the device counted %llu kicks and %llu frames. Device log:\n%s",
                     n, b, n, b, want, n, kicks, (unsigned long long)r.stats.kicks[LAB5_NET_TXQ],
                     (unsigned long long)r.stats.tx_frames, r.log);
        lab5_run_free(&r, &run);
    }
}

static void net_loopback(void **state)
{
    struct lab5_run r = {0};
    struct guest_run run;

    (void)state;
    lab5_run_guest("lab5/net", &r, &run);
    lab5_expect_done(&r, &run, "lab5/net");
    if (!strstr(run.console, "32 frames in batches of 8: 4 kicks of the transmit queue, 32 frames back through the "
                             "receive queue (1 kicks of it)"))
        fail_msg("lab5/net's summary is not what 32 frames in 4 batches, looped back, give:\n%s", run.console);
    if (r.stats.rx_frames != 32 || r.stats.rx_dropped != 0 || r.stats.device_errors != 0)
        fail_msg("the device looped back %llu frames (dropped %llu, %llu device errors); expected 32, 0, 0. Log:\n%s",
                 (unsigned long long)r.stats.rx_frames, (unsigned long long)r.stats.rx_dropped,
                 (unsigned long long)r.stats.device_errors, r.log);
    lab5_run_free(&r, &run);
}

static void transport_probe(void **state)
{
    struct lab5_run r = {0};
    struct guest_run run;

    (void)state;
    lab5_run_guest("lab5/probe", &r, &run);
    lab5_expect_done(&r, &run, "lab5/probe");
    if (!strstr(run.console, "a used buffer sets InterruptStatus 0x1; InterruptACK clears it"))
        fail_msg("lab5/probe did not see InterruptStatus bit 0 after a used buffer:\n%s", run.console);
    lab5_run_free(&r, &run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(virtq_setup_checks), cmocka_unit_test(chain_walk_direct),   cmocka_unit_test(pop_and_push),
        cmocka_unit_test(notify_decision),    cmocka_unit_test(net_kicks_per_batch), cmocka_unit_test(net_loopback),
        cmocka_unit_test(transport_probe),
    };

    return harness_main(argc, argv, "lab5", tests, sizeof(tests) / sizeof(tests[0]));
}
