/* Lab 5 guests' common body: frames out through virtio-net in batches, back through the loopback, counted and timed. */
#ifndef GUEST_LAB5_NET_H
#define GUEST_LAB5_NET_H

#include "runtime/runtime.h"
#include "runtime/virtio.h"

#define NET_FRAME_LEN 60     /* the smallest Ethernet frame (no FCS: the device adds none) */
#define NET_ETHERTYPE 0x88b5 /* IEEE 802 local experimental */

static struct virtio_net net __attribute__((unused));

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* Broadcast, from our MAC, a payload naming the frame's sequence number. */
static inline void frame_build(uint8_t *f, uint32_t seq)
{
    static const char text[] = "minivmm lab5 frame ";

    memset(f, 0, NET_FRAME_LEN);
    memset(f, 0xff, 6);
    memcpy(f + 6, net.mac, 6);
    f[12] = NET_ETHERTYPE >> 8;
    f[13] = NET_ETHERTYPE & 0xff;
    memcpy(f + 14, text, sizeof(text) - 1);
    memcpy(f + 14 + sizeof(text) - 1, &seq, sizeof(seq));
}

/* The bring-up, with the failing register in the assertion when it fails. */
static inline void net_up(uint64_t want, bool rx)
{
    uint32_t got = 0, expected = 0;
    int reg = virtio_net_init(&net, want, rx, &got, &expected);

    if (reg) {
        guest_printf("virtio-net set-up: register 0x%03x read 0x%x, expected 0x%x\n", reg, got, expected);
        GUEST_ASSERT_EQ(got, expected, "virtio-net set-up (register above)");
    }
}

/*
 * The device is synchronous: it has used every chain by the time the kick's
 * exit returns. Nothing used then means it stopped: NEEDS_RESET (its reason is
 * in the VMM's log) or a kick it did not want.
 */
static inline void *used_take(struct virtq *vq, uint32_t *len)
{
    void *token = virtq_get_used(vq, len);

    if (!token) {
        uint32_t status = virtio_read32(&net.dev, VIRTIO_MMIO_STATUS);

        GUEST_ASSERT_EQ(status & VIRTIO_CONFIG_S_NEEDS_RESET, 0, "device status NEEDS_RESET (see the VMM's log)");
        GUEST_ASSERT_EQ(virtq_used_idx(vq), (uint16_t)(vq->last_used + 1), "used->idx after the kick");
    }
    return token;
}

/* Sends p->packets frames, p->batch per kick; with the loopback, checks each one comes back intact. */
static inline void net_run(const struct mvm_virtio_params *defaults)
{
    struct mvm_virtio_params *shared = addr_ptr(MVM_VIRTIO_PARAMS_GPA);
    struct mvm_virtio_params p = shared->magic == MVM_VIRTIO_PARAMS_MAGIC ? *shared : *defaults;
    uint64_t want = (p.flags & MVM_VIRTIO_P_EVENT_IDX ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
                    (p.flags & MVM_VIRTIO_P_INDIRECT ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);
    bool rx = !(p.flags & MVM_VIRTIO_P_NO_RX);
    uint64_t t_start, tsc_first = 0, batches = 0, rx_frames = 0;
    uint8_t frame[NET_FRAME_LEN];
    uint32_t seq = 0;

    GUEST_ASSERT(p.batch >= 1 && p.batch <= VIRTIO_NET_TX_QUEUE && (!rx || p.batch <= VIRTIO_NET_RX_QUEUE));
    net_up(want, rx);
    guest_printf("virtio-net %02x:%02x:%02x:%02x:%02x:%02x, features 0x%llx\n", net.mac[0], net.mac[1], net.mac[2],
                 net.mac[3], net.mac[4], net.mac[5], (unsigned long long)net.dev.features);
    if (!net.tx.event_idx && (p.flags & MVM_VIRTIO_P_NO_INTERRUPT)) {
        virtq_interrupts(&net.tx, false);
        virtq_interrupts(&net.rx, false);
    }
    t_start = rdtsc();
    while (seq < p.packets) {
        uint32_t b = p.packets - seq < p.batch ? p.packets - seq : p.batch;
        uint64_t t0 = rdtsc();

        for (uint32_t k = 0; k < b; k++) {
            frame_build(frame, seq + k);
            GUEST_ASSERT(virtio_net_tx_add(&net, frame, NET_FRAME_LEN) >= 0);
        }
        /* With EVENT_IDX: one notification per batch, when its last frame is used (and received). */
        if (net.tx.event_idx) {
            virtq_used_event_set(&net.tx, (uint16_t)(net.tx.last_used + b - 1));
            virtq_used_event_set(&net.rx, (uint16_t)(net.rx.last_used + b - 1));
        }
        virtq_kick(&net.tx);
        for (uint32_t k = 0; k < b; k++) {
            GUEST_ASSERT(used_take(&net.tx, NULL) != NULL);
            if (k == 0)
                tsc_first += rdtsc() - t0;
        }
        for (uint32_t k = 0; rx && k < b; k++) {
            const struct virtio_net_hdr_v1 *hdr = NULL;
            uint32_t len = 0, got_seq;
            const uint8_t *f = virtio_net_rx_get(&net, &len, &hdr);

            if (!f)
                GUEST_ASSERT(used_take(&net.rx, NULL) != NULL);
            GUEST_ASSERT_EQ(len, NET_FRAME_LEN, "received frame length (used.len minus the 12-byte header)");
            GUEST_ASSERT_EQ(hdr->num_buffers, 1, "virtio_net_hdr_v1.num_buffers");
            memcpy(&got_seq, f + 33, sizeof(got_seq));
            GUEST_ASSERT_EQ(got_seq, seq + k, "sequence number of the frame received back");
            GUEST_ASSERT(!memcmp(f + 6, net.mac, 6));
            virtio_net_rx_recycle(&net, f);
            rx_frames++;
        }
        if (rx)
            virtq_kick(&net.rx);
        seq += b;
        batches++;
    }
    if (shared->magic == MVM_VIRTIO_PARAMS_MAGIC) {
        shared->tsc_total = rdtsc() - t_start;
        shared->tsc_first = tsc_first;
        shared->kicks = net.tx.kicks;
        shared->rx_frames = rx_frames;
        shared->batches = batches;
    }
    guest_printf("%u frames in batches of %u: %llu kicks of the transmit queue", p.packets, p.batch,
                 (unsigned long long)net.tx.kicks);
    if (rx)
        guest_printf(", %llu frames back through the receive queue (%llu kicks of it)", (unsigned long long)rx_frames,
                     (unsigned long long)net.rx.kicks);
    guest_printf("\n");
}

#endif
