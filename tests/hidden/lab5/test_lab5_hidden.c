/* Lab 5 hidden tests: hostile chains and indices, indirect tables, 16-bit index wrap, notification and kick suppression
 * counted exactly, a hostile guest, the pcap. */
#include "lab5_util.h"

static void expect_walk_error(struct mvm_vm *vm, struct lab5_virtq *vq, uint16_t head, const char *what)
{
    static struct lab5_chain c;
    int rc = lab5_chain_walk(vq, head, &c);

    (void)vm;
    if (rc != -EPROTO)
        fail_msg("lab5_chain_walk, %s: expected -EPROTO (the device needs a reset), got %d%s", what, rc,
                 rc == 0 ? " (accepted)" : "");
}

static void chain_walk_hostile(void **state)
{
    struct mvm_vm *vm = lab5_vm();
    struct lab5_virtq vq;
    static struct lab5_chain c;
    const uint64_t ind = 0x30000;

    (void)state;
    lab5_vq(vm, &vq, 0);
    desc_put(vm, T_DESC, 0, T_BUF, 16, VRING_DESC_F_NEXT, 1);
    desc_put(vm, T_DESC, 1, T_BUF, 16, VRING_DESC_F_NEXT, 0);
    expect_walk_error(vm, &vq, 0, "a loop 0 -> 1 -> 0");
    desc_put(vm, T_DESC, 0, T_BUF, 16, VRING_DESC_F_NEXT, 0);
    expect_walk_error(vm, &vq, 0, "descriptor 0 whose next is itself");
    desc_put(vm, T_DESC, 0, T_BUF, 16, VRING_DESC_F_NEXT, 8);
    expect_walk_error(vm, &vq, 0, "next = 8 in a queue of 8");
    desc_put(vm, T_DESC, 0, 0x1fff00, 0x200, 0, 0);
    expect_walk_error(vm, &vq, 0, "a buffer running past the end of RAM");
    desc_put(vm, T_DESC, 0, MVM_VIRTIO_MMIO_BASE, 4, 0, 0);
    expect_walk_error(vm, &vq, 0, "a buffer in MMIO space");
    desc_put(vm, T_DESC, 0, ~0ull - 7, 16, 0, 0);
    expect_walk_error(vm, &vq, 0, "a buffer whose end wraps past 2^64");
    desc_put(vm, T_DESC, 0, T_BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    desc_put(vm, T_DESC, 1, T_BUF, 16, 0, 0);
    expect_walk_error(vm, &vq, 0, "a readable buffer after a writable one");
    desc_put(vm, T_DESC, 0, T_BUF, 0, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    expect_walk_error(vm, &vq, 0, "a readable buffer after a zero-length writable one (count buffers, not bytes)");
    desc_put(vm, T_DESC, 0, ind, 32, VRING_DESC_F_INDIRECT, 0);
    expect_walk_error(vm, &vq, 0, "VRING_DESC_F_INDIRECT without VIRTIO_RING_F_INDIRECT_DESC");

    /* A chain of exactly the queue size is legal: no false loop. */
    for (uint16_t i = 0; i < T_NUM; i++)
        desc_put(vm, T_DESC, i, T_BUF + i * 0x10, 0x10, i + 1 < T_NUM ? VRING_DESC_F_NEXT : 0, i + 1);
    if (lab5_chain_walk(&vq, 0, &c) != 0 || c.nbufs != T_NUM || c.readable != T_NUM * 0x10)
        fail_msg("a chain of %d descriptors in a queue of %d is legal: expected %d buffers, %d bytes (%s)", T_NUM,
                 T_NUM, T_NUM, T_NUM * 0x10, mvm_error());

    lab5_vq(vm, &vq, 1ull << VIRTIO_RING_F_INDIRECT_DESC);
    desc_put(vm, ind, 0, T_BUF, 12, VRING_DESC_F_NEXT, 1);
    desc_put(vm, ind, 1, T_BUF + 0x100, 60, VRING_DESC_F_NEXT, 2);
    desc_put(vm, ind, 2, T_BUF + 0x1000, 2048, VRING_DESC_F_WRITE, 0);
    desc_put(vm, T_DESC, 3, ind, 48, VRING_DESC_F_INDIRECT, 0);
    if (lab5_chain_walk(&vq, 3, &c) != 0 || c.head != 3 || c.nbufs != 3 || c.readable != 72 || c.writable != 2048)
        fail_msg("head 3 -> an indirect table of 3 (12 + 60 readable, 2048 writable): expected 3 buffers, 72 and 2048 "
                 "bytes, head 3; got %u buffers, %u and %u (%s)",
                 c.nbufs, c.readable, c.writable, mvm_error());
    desc_put(vm, T_DESC, 3, ind, 40, VRING_DESC_F_INDIRECT, 0);
    expect_walk_error(vm, &vq, 3, "an indirect table of 40 bytes (not a multiple of 16)");
    desc_put(vm, T_DESC, 3, ind, 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 4);
    expect_walk_error(vm, &vq, 3, "INDIRECT together with NEXT");
    desc_put(vm, ind, 1, ind, 16, VRING_DESC_F_INDIRECT, 0);
    desc_put(vm, T_DESC, 3, ind, 48, VRING_DESC_F_INDIRECT, 0);
    expect_walk_error(vm, &vq, 3, "an indirect descriptor inside an indirect table");
    desc_put(vm, T_DESC, 3, T_DESC, 16 * T_NUM, VRING_DESC_F_INDIRECT, 0);
    expect_walk_error(vm, &vq, 3, "an indirect table that is the descriptor table itself (its entry 3 is indirect)");
    desc_put(vm, ind, 0, T_BUF, 12, VRING_DESC_F_NEXT, 1);
    desc_put(vm, ind, 1, T_BUF, 12, VRING_DESC_F_NEXT, 0);
    desc_put(vm, T_DESC, 3, ind, 32, VRING_DESC_F_INDIRECT, 0);
    expect_walk_error(vm, &vq, 3, "a loop inside an indirect table");
    desc_put(vm, T_DESC, 3, 0x1ffff0, 32, VRING_DESC_F_INDIRECT, 0);
    expect_walk_error(vm, &vq, 3, "an indirect table running past the end of RAM");
    vm_destroy(vm);
}

static void pop_bad_indices_and_wrap(void **state)
{
    struct mvm_vm *vm = lab5_vm();
    struct lab5_virtq vq;
    static struct lab5_chain c;
    int rc;

    (void)state;
    lab5_vq(vm, &vq, 0);
    desc_put(vm, T_DESC, 0, T_BUF, 64, 0, 0);
    avail_put(vm, 0, 0, T_NUM + 1);
    if ((rc = lab5_virtq_pop(&vq, &c)) != -EPROTO)
        fail_msg("avail->idx %d with last_avail_idx 0 in a queue of %d: expected -EPROTO, got %d", T_NUM + 1, T_NUM,
                 rc);
    lab5_vq(vm, &vq, 0);
    avail_put(vm, 0, T_NUM, 1);
    if ((rc = lab5_virtq_pop(&vq, &c)) != -EPROTO)
        fail_msg("avail->ring[0] = %d, a head past the table: expected -EPROTO, got %d", T_NUM, rc);
    /* Free-running 16-bit indices: 65535 -> 0 is one entry, not -65535. */
    lab5_vq(vm, &vq, 0);
    vq.last_avail_idx = 65535;
    vq.used_idx = 65535;
    avail_put(vm, 65535, 0, 0);
    rc = lab5_virtq_pop(&vq, &c);
    if (rc != 1 || vq.last_avail_idx != 0)
        fail_msg("last_avail_idx 65535, avail->idx 0: one entry pending (indices wrap at 2^16); expected 1 and "
                 "last_avail_idx 0, got %d and %u (%s)",
                 rc, vq.last_avail_idx, rc < 0 ? mvm_error() : "");
    if (lab5_virtq_push(&vq, 0, 5) != 0 || used_idx_get(vm) != 0 || vq.used_idx != 0)
        fail_msg("used_idx 65535 + 1 push: used->idx must wrap to 0 (got %u)", used_idx_get(vm));
    /* With EVENT_IDX, an empty ring asks for a kick at last_avail_idx through avail_event. */
    lab5_vq(vm, &vq, 1ull << VIRTIO_RING_F_EVENT_IDX);
    vq.last_avail_idx = 5;
    avail_put(vm, 0, 0, 5);
    if ((rc = lab5_virtq_pop(&vq, &c)) != 0)
        fail_msg("EVENT_IDX, empty ring: expected 0, got %d", rc);
    {
        uint16_t ev = 0;

        assert_int_equal(vm_read(vm, T_USED + 4 + 8 * T_NUM, &ev, 2), 0);
        if (ev != 5)
            fail_msg("EVENT_IDX, empty ring at last_avail_idx 5: avail_event (after used->ring[%d]) must be 5, is %u",
                     T_NUM, ev);
    }
    vm_destroy(vm);
}

/* Runs lab5/net with these parameters and checks it finished. */
static void net_run(struct lab5_run *r, struct guest_run *run, uint32_t n, uint32_t b, uint32_t flags)
{
    r->params = (struct mvm_virtio_params){.packets = n, .batch = b, .flags = flags};
    lab5_run_guest("lab5/net", r, run);
    lab5_expect_done(r, run, "lab5/net");
}

static void notifications_counted(void **state)
{
    static const struct {
        const char *what;
        uint32_t flags;
        uint64_t want;
    } cases[] = {
        {"no EVENT_IDX, interrupts on: one per used frame", MVM_VIRTIO_P_NO_RX, 64},
        {"no EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT: none", MVM_VIRTIO_P_NO_RX | MVM_VIRTIO_P_NO_INTERRUPT, 0},
        {"EVENT_IDX, used_event at each batch's last frame: one per batch", MVM_VIRTIO_P_NO_RX | MVM_VIRTIO_P_EVENT_IDX,
         8},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lab5_run r;
        struct guest_run run;

        net_run(&r, &run, 64, 8, cases[i].flags);
        if (r.stats.notifications[LAB5_NET_TXQ] != cases[i].want)
            fail_msg("64 frames, 8 per kick, %s: expected %llu transmit notifications, the device raised %llu",
                     cases[i].what, (unsigned long long)cases[i].want,
                     (unsigned long long)r.stats.notifications[LAB5_NET_TXQ]);
        lab5_run_free(&r, &run);
    }
}

/* 256 frames through a receive queue of 128: the driver recycles buffers after every batch. */
static void event_idx_spares_rx_kicks(void **state)
{
    struct lab5_run r;
    struct guest_run run;

    (void)state;
    net_run(&r, &run, 256, 32, 0);
    if (r.stats.kicks[LAB5_NET_RXQ] != 9 || r.stats.rx_frames != 256)
        fail_msg("no EVENT_IDX: the driver kicks the receive queue after posting (1) and after each of 8 refills: "
                 "expected 9 kicks and 256 frames back, got %llu and %llu",
                 (unsigned long long)r.stats.kicks[LAB5_NET_RXQ], (unsigned long long)r.stats.rx_frames);
    lab5_run_free(&r, &run);
    net_run(&r, &run, 256, 32, MVM_VIRTIO_P_EVENT_IDX);
    if (r.stats.kicks[LAB5_NET_RXQ] != 1 || r.stats.rx_frames != 256 || r.stats.notifications[LAB5_NET_RXQ] != 8)
        fail_msg(
            "EVENT_IDX: avail_event of the receive queue stays where the device last asked, so the refills need no "
            "kick: expected 1 receive kick, 256 frames and 8 receive notifications (used_event per batch); got "
            "%llu, %llu and %llu",
            (unsigned long long)r.stats.kicks[LAB5_NET_RXQ], (unsigned long long)r.stats.rx_frames,
            (unsigned long long)r.stats.notifications[LAB5_NET_RXQ]);
    lab5_run_free(&r, &run);
}

static void hostile_guest(void **state)
{
    struct lab5_run r = {0};
    struct guest_run run;
    static const char *const lines[] = {
        "a loop through descriptor", "next = 999",           "gpa 0x3fd00000", "gpa 0xfffffffffffff000",
        "avail->idx = 300",          "avail->ring[0] = 256", "indirect",
    };
    int n = 0;

    (void)state;
    lab5_run_guest("lab5/hostile", &r, &run);
    lab5_expect_done(&r, &run, "lab5/hostile");
    for (const char *p = r.log; p && (p = strstr(p, "NEEDS_RESET")); p++)
        n++;
    if (r.stats.device_errors != 11 || n != 11)
        fail_msg("lab5/hostile breaks the ring 11 ways: expected 11 device errors, each one log line; got %llu errors, "
                 "%d lines:\n%s",
                 (unsigned long long)r.stats.device_errors, n, r.log);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (!strstr(r.log, lines[i]))
            fail_msg("the device log should name what was wrong (\"%s\"):\n%s", lines[i], r.log);
    lab5_run_free(&r, &run);
}

static void indirect_guest(void **state)
{
    struct lab5_run r = {0};
    struct guest_run run;

    (void)state;
    lab5_run_guest("lab5/net_indirect", &r, &run);
    lab5_expect_done(&r, &run, "lab5/net_indirect");
    if (!(r.stats.features & (1ull << VIRTIO_RING_F_INDIRECT_DESC)) || r.stats.rx_frames != 32 ||
        r.stats.notifications[LAB5_NET_TXQ] != 0 || harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050") != 3)
        fail_msg("lab5/net_indirect: INDIRECT_DESC negotiated, 32 frames back, no notifications (NO_INTERRUPT) and 3 "
                 "kicks (receive, transmit, receive); got features 0x%llx, %llu frames, %llu notifications, %d kicks",
                 (unsigned long long)r.stats.features, (unsigned long long)r.stats.rx_frames,
                 (unsigned long long)r.stats.notifications[LAB5_NET_TXQ],
                 harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050"));
    lab5_run_free(&r, &run);
}

static int pcap_hook(struct mvm_vm *vm, void *opaque)
{
    struct lab5_net_config cfg = {.pcap = opaque};
    struct lab5_net *net = lab5_net_find(vm);

    return net ? lab5_net_configure(net, &cfg) : -ENODEV;
}

static void pcap_written(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct guest_run run;
    uint32_t hdr[6], rec[4];

    (void)state;
    assert_non_null(f);
    harness_run_guest_mode("lab5/net", HARNESS_MODE_LONG, pcap_hook, f, &run);
    fclose(f);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (len != 24 + 32 * (16 + 60))
        fail_msg("pcap of 32 frames of 60 bytes: expected 24 + 32 * 76 = %d bytes, got %zu", 24 + 32 * 76, len);
    memcpy(hdr, buf, sizeof(hdr));
    memcpy(rec, buf + 24, sizeof(rec));
    if (hdr[0] != 0xa1b2c3d4 || hdr[5] != 1 || rec[2] != 60 || rec[3] != 60 || memcmp(buf + 40 + 14, "minivmm", 7))
        fail_msg("pcap: magic 0xa1b2c3d4, link type 1 (Ethernet), then records of 60 bytes holding the guest's frame");
    free(buf);
    harness_free(&run);
}

static void net_b1_exit_dump_exact(void **state)
{
    struct lab5_run r = {0};
    struct guest_run run;

    (void)state;
    lab5_run_guest("lab5/net_b1", &r, &run);
    lab5_expect_done(&r, &run, "lab5/net_b1");
    if (harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050 len=4 data=01000000") != 32 ||
        harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050 len=4 data=00000000") != 33 ||
        run.res.by_reason[KVM_EXIT_MMIO] != 112)
        fail_msg("lab5/net_b1 (32 frames, one per kick, no EVENT_IDX): 32 transmit kicks, 33 receive kicks (post + "
                 "32 refills) and 112 MMIO exits in all; got %d, %d, %llu. Exits:\n%s",
                 harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050 len=4 data=01000000"),
                 harness_count_exits(&run, "MMIO write gpa=0x000000003fd00050 len=4 data=00000000"),
                 (unsigned long long)run.res.by_reason[KVM_EXIT_MMIO], run.exits);
    lab5_run_free(&r, &run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_walk_hostile),    cmocka_unit_test(pop_bad_indices_and_wrap),
        cmocka_unit_test(notifications_counted), cmocka_unit_test(event_idx_spares_rx_kicks),
        cmocka_unit_test(hostile_guest),         cmocka_unit_test(indirect_guest),
        cmocka_unit_test(pcap_written),          cmocka_unit_test(net_b1_exit_dump_exact),
    };

    return harness_main(argc, argv, "lab5_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
