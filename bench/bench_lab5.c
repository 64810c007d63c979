/*
 * Lab 5's measurement: 60-byte frames out through virtio-net, B per kick
 * (B = 1, 2, 4, ... 256), on the plain exit-per-kick path (each kick is one
 * MMIO exit the device services synchronously). One iteration is one frame.
 * Cases: transmit only, with and without EVENT_IDX (which here changes the
 * notifications the device raises, not the kicks); and through the loopback,
 * where the driver refills receive buffers after each batch, so without
 * EVENT_IDX every refill is one more kick.
 * Timing (manual): the guest's TSC from the first enqueue to the last frame
 * used, so driver set-up and console output are out; first_pkt_ns is the
 * mean over batches of the first frame's latency (enqueue of the batch's
 * first frame to its used entry): the seed's trade-off, throughput against
 * the first packet's wait. Kicks are counted exactly and checked.
 */
#include <errno.h>
#include <string.h>

#include "bench.h"
#include "bench_env.h"
#include "bench_vm.h"
#include "lab.h"
#include "lab5-virtio/lab5.h"
#include "x86.h"

#define LAB5_FRAME_BYTES 60
#define LAB5_EVENT_IDX   0x10000 /* in a case's arg, with the batch size */
#define LAB5_LOOPBACK    0x20000

/* Lab 5's device, found on the bus and configured for the bench before the guest loads. */
static int net_setup(struct mvm_vm *vm, void *ctx)
{
    struct lab5_net *net = lab5_net_find(vm);

    if (!net)
        return mvm_fail(ENODEV, "bench: no virtio-net device at 0x%x (lab 5's vm_init)", MVM_VIRTIO_MMIO_BASE);
    return lab5_net_configure(net, ctx);
}

static int net_vm_create(const struct mvm_backend *be, const struct mvm_virtio_params *p, struct lab5_net_stats *stats,
                         struct mvm_vm **vm_out, struct mvm_vcpu **vcpu_out)
{
    struct lab5_net_config cfg = {.stats_out = stats, .no_loopback = p->flags & MVM_VIRTIO_P_NO_RX};

    return bench_lab_vm_create(be, "lab5/net", MVM_VIRTIO_PARAMS_GPA, p, sizeof(*p), net_setup, &cfg, vm_out, vcpu_out);
}

static void bench_lab5_net(struct bench_state *st, const struct mvm_backend *be, int64_t arg)
{
    const struct mvm_run_opts opts = {.max_ms = 120000};
    uint32_t batch = (uint32_t)(arg & 0xffff);
    bool event_idx = arg & LAB5_EVENT_IDX, loopback = arg & LAB5_LOOPBACK;
    uint64_t n = bench_iterations(st), batches = (n + batch - 1) / batch;
    uint64_t want_rx_kicks = loopback ? (event_idx ? 1 : 1 + batches) : 0;
    struct mvm_virtio_params p = {
        .magic = MVM_VIRTIO_PARAMS_MAGIC,
        .packets = (uint32_t)n,
        .batch = batch,
        .flags = (event_idx ? MVM_VIRTIO_P_EVENT_IDX : 0) | (loopback ? 0 : MVM_VIRTIO_P_NO_RX),
    };
    struct lab5_net_stats stats;
    struct mvm_run_result res;
    struct mvm_vcpu *vcpu;
    struct mvm_vm *vm;
    int rc;

    if (n > UINT32_MAX) {
        bench_fail(st, "lab5: %llu frames do not fit the guest's 32-bit count", (unsigned long long)n);
        return;
    }
    memset(&stats, 0, sizeof(stats));
    rc = net_vm_create(be, &p, &stats, &vm, &vcpu);
    if (rc < 0) {
        bench_fail(st, "%s", mvm_error());
        return;
    }
    memset(&res, 0, sizeof(res));
    while (rc == 0 && bench_keep_running_batch(st, n))
        rc = vcpu_run(vcpu, &opts, &res);
    if (rc == 0)
        rc = vm_read(vm, MVM_VIRTIO_PARAMS_GPA, &p, sizeof(p));
    if (rc < 0)
        bench_fail(st, "%s", mvm_error());
    else if (res.stop != MVM_STOP_DONE)
        bench_fail(st, "lab5/net, %llu frames, %u per kick: ended with '%s': %s", (unsigned long long)n, batch,
                   mvm_stop_name(res.stop), res.detail);
    else if (stats.kicks[LAB5_NET_TXQ] != batches || p.kicks != batches || stats.tx_frames != n ||
             stats.kicks[LAB5_NET_RXQ] != want_rx_kicks || (loopback && stats.rx_frames != n))
        bench_fail(st,
                   "lab5/net, %llu frames, %u per kick: expected %llu transmit kicks (ceil(N/B)), %llu receive kicks "
                   "and %llu frames; the device counted %llu and %llu kicks, %llu frames (%llu back), the guest %llu",
                   (unsigned long long)n, batch, (unsigned long long)batches, (unsigned long long)want_rx_kicks,
                   (unsigned long long)n, (unsigned long long)stats.kicks[LAB5_NET_TXQ],
                   (unsigned long long)stats.kicks[LAB5_NET_RXQ], (unsigned long long)stats.tx_frames,
                   (unsigned long long)stats.rx_frames, (unsigned long long)p.kicks);
    else {
        double ns = (double)p.tsc_total * bench_ns_per_cycle();
        uint64_t kicks = stats.kicks[LAB5_NET_TXQ] + stats.kicks[LAB5_NET_RXQ];

        bench_set_iteration_time(st, ns / 1e9);
        bench_set_counter(st, "exits_per_iter", (double)kicks / n);
        bench_set_counter(st, "notifications_per_pkt",
                          (double)(stats.notifications[LAB5_NET_TXQ] + stats.notifications[LAB5_NET_RXQ]) / n);
        bench_set_counter(st, "first_pkt_ns", p.batches ? (double)p.tsc_first * bench_ns_per_cycle() / p.batches : 0);
        bench_set_counter(st, "pkts_per_s", ns > 0 ? n / (ns / 1e9) : 0);
        bench_set_counter(st, "MB_per_s", ns > 0 ? n * LAB5_FRAME_BYTES / (ns / 1e9) / 1e6 : 0);
        bench_set_label(st, bench_backend_label(be));
    }
    vm_destroy(vm);
}

static void bench_lab5_tx(struct bench_state *st, const struct mvm_backend *be, int64_t batch)
{
    bench_lab5_net(st, be, batch);
}

static void bench_lab5_tx_event_idx(struct bench_state *st, const struct mvm_backend *be, int64_t batch)
{
    bench_lab5_net(st, be, batch | LAB5_EVENT_IDX);
}

static void bench_lab5_loopback(struct bench_state *st, const struct mvm_backend *be, int64_t batch)
{
    bench_lab5_net(st, be, batch | LAB5_LOOPBACK);
}

static void bench_lab5_loopback_event_idx(struct bench_state *st, const struct mvm_backend *be, int64_t batch)
{
    bench_lab5_net(st, be, batch | LAB5_LOOPBACK | LAB5_EVENT_IDX);
}

static const int64_t batch_sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 0};
static const int64_t loopback_sizes[] = {1, 8, 64, 0}; /* at most the 128 receive buffers */

/* The names say the batch: lab5/tx/8batch/soft is 8 frames per kick. */
const struct bench_case bench_lab5_cases[] = {
    {.name = "lab5/tx", .fn = bench_lab5_tx, .args = batch_sizes, .arg_unit = "batch", .flags = BENCH_MANUAL_TIME},
    {.name = "lab5/tx_event_idx",
     .fn = bench_lab5_tx_event_idx,
     .args = batch_sizes,
     .arg_unit = "batch",
     .flags = BENCH_MANUAL_TIME},
    {.name = "lab5/loopback",
     .fn = bench_lab5_loopback,
     .args = loopback_sizes,
     .arg_unit = "batch",
     .flags = BENCH_MANUAL_TIME},
    {.name = "lab5/loopback_event_idx",
     .fn = bench_lab5_loopback_event_idx,
     .args = loopback_sizes,
     .arg_unit = "batch",
     .flags = BENCH_MANUAL_TIME},
    {0},
};
