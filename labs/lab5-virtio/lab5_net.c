/* Lab 5's device: virtio-net (device ID 1, the v1 header); transmitted frames go to a pcap stream and back to the
 * receive queue. Not a student file. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "lab5-virtio/lab5.h"

#define LAB5_NET_HDR_LEN       sizeof(struct virtio_net_hdr_v1)
#define PCAP_MAGIC             0xa1b2c3d4u
#define PCAP_LINKTYPE_ETHERNET 1u

/* The configuration the driver reads at VIRTIO_MMIO_CONFIG: the MAC and the link status. */
#define LAB5_NET_CONFIG_LEN (offsetof(struct virtio_net_config, status) + sizeof(uint16_t))
_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio-net v1 header: 12 bytes");

struct lab5_net {
    struct lab5_mmio *t;
    struct virtio_net_config config;
    struct lab5_net_config cfg;
    uint64_t tx_frames, tx_bytes, rx_frames, rx_dropped;
    struct lab5_chain chain; /* the chain being serviced (too big for the stack) */
    uint8_t frame[LAB5_NET_FRAME_MAX];
};

static void net_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
    struct lab5_net *net = dev;

    memcpy(data, (const uint8_t *)&net->config + off, len);
}

void lab5_net_stats_get(const struct lab5_net *net, struct lab5_net_stats *out)
{
    memset(out, 0, sizeof(*out));
    lab5_mmio_stats_get(net->t, out);
    out->tx_frames = net->tx_frames;
    out->tx_bytes = net->tx_bytes;
    out->rx_frames = net->rx_frames;
    out->rx_dropped = net->rx_dropped;
}

static void stats_publish(struct lab5_net *net)
{
    if (net->cfg.stats_out)
        lab5_net_stats_get(net, net->cfg.stats_out);
}

/* One pcap record: the frame as the guest sent it, stamped with the host's wall clock. */
static void pcap_record(FILE *f, const uint8_t *frame, uint32_t len)
{
    struct timespec ts;
    uint32_t rec[4];

    clock_gettime(CLOCK_REALTIME, &ts);
    rec[0] = (uint32_t)ts.tv_sec;
    rec[1] = (uint32_t)(ts.tv_nsec / 1000);
    rec[2] = rec[3] = len;
    fwrite(rec, sizeof(rec), 1, f);
    fwrite(frame, 1, len, f);
}

/* Loops one frame back into the receive queue: a header (no offloads, one buffer) and the frame, scattered. */
static int rx_deliver(struct lab5_net *net, const uint8_t *frame, uint32_t len)
{
    struct lab5_chain *c = &net->chain;
    struct virtio_net_hdr_v1 hdr = {.num_buffers = 1};
    uint16_t old_used = lab5_mmio_used_idx(net->t, LAB5_NET_RXQ);
    uint32_t total = (uint32_t)LAB5_NET_HDR_LEN + len, done = 0;
    int rc = lab5_mmio_pop(net->t, LAB5_NET_RXQ, c);

    if (rc <= 0) {
        net->rx_dropped++; /* no receive buffer (or a broken ring): the frame is lost, as on a wire */
        return rc == -EPROTO ? 0 : rc;
    }
    if (c->readable) {
        lab5_mmio_device_error(net->t,
                               "receive queue: the chain at head %u has %u device-readable bytes; receive "
                               "buffers are all device-writable (VRING_DESC_F_WRITE)",
                               c->head, c->readable);
        return 0;
    }
    if (c->writable < total) {
        net->rx_dropped++; /* too small: used with length 0, which the driver recycles */
        rc = lab5_mmio_push(net->t, LAB5_NET_RXQ, c->head, 0);
    } else {
        for (uint16_t i = 0; i < c->nbufs && done < total; i++) {
            uint32_t n = c->bufs[i].len < total - done ? c->bufs[i].len : total - done;

            for (uint32_t k = 0; k < n; k++, done++)
                c->bufs[i].hva[k] =
                    done < LAB5_NET_HDR_LEN ? ((const uint8_t *)&hdr)[done] : frame[done - LAB5_NET_HDR_LEN];
        }
        net->rx_frames++;
        rc = lab5_mmio_push(net->t, LAB5_NET_RXQ, c->head, total);
    }
    if (rc == 0)
        lab5_mmio_notify(net->t, LAB5_NET_RXQ, old_used);
    return rc == -EPROTO ? 0 : rc;
}

/* A kick of the transmit queue: every frame the driver made available, one by one, each completed as it goes. */
static int tx_service(struct lab5_net *net)
{
    struct lab5_chain *c = &net->chain;
    int rc;

    while ((rc = lab5_mmio_pop(net->t, LAB5_NET_TXQ, c)) == 1) {
        uint16_t head = c->head, old_used;
        uint32_t len = 0, skip = (uint32_t)LAB5_NET_HDR_LEN;

        if (c->writable || c->readable < LAB5_NET_HDR_LEN || c->readable - LAB5_NET_HDR_LEN > LAB5_NET_FRAME_MAX) {
            lab5_mmio_device_error(net->t,
                                   "transmit queue: the chain at head %u has %u readable and %u writable "
                                   "bytes; a frame is %zu bytes of header then 0..%u of frame, all device-readable",
                                   head, c->readable, c->writable, LAB5_NET_HDR_LEN, LAB5_NET_FRAME_MAX);
            return 0;
        }
        /* Gather the frame, skipping the header, however the driver split it into buffers. */
        for (uint16_t i = 0; i < c->nbufs; i++) {
            uint32_t n = c->bufs[i].len;
            const uint8_t *p = c->bufs[i].hva;

            if (skip >= n) {
                skip -= n;
                continue;
            }
            memcpy(net->frame + len, p + skip, n - skip);
            len += n - skip;
            skip = 0;
        }
        net->tx_frames++;
        net->tx_bytes += len;
        if (net->cfg.pcap)
            pcap_record(net->cfg.pcap, net->frame, len);
        if (!net->cfg.no_loopback && lab5_mmio_queue_live(net->t, LAB5_NET_RXQ)) {
            rc = rx_deliver(net, net->frame, len);
            if (rc < 0)
                return rc;
        }
        /* The frame is on the wire: return the buffers (nothing written into them), then maybe notify. */
        old_used = lab5_mmio_used_idx(net->t, LAB5_NET_TXQ);
        rc = lab5_mmio_push(net->t, LAB5_NET_TXQ, head, 0);
        if (rc < 0)
            return rc == -EPROTO ? 0 : rc;
        lab5_mmio_notify(net->t, LAB5_NET_TXQ, old_used);
    }
    return rc == -EPROTO ? 0 : rc;
}

static int net_queue_notify(void *dev, struct lab5_mmio *t, unsigned q)
{
    struct lab5_net *net = dev;
    int rc = 0;

    (void)t;
    /* A receive kick says buffers were added; frames only come from the loopback, so there is nothing to do. */
    if (q == LAB5_NET_TXQ)
        rc = tx_service(net);
    stats_publish(net);
    return rc;
}

static void net_reset(void *dev)
{
    (void)dev;
}

static void net_destroy(void *dev)
{
    struct lab5_net *net = dev;

    stats_publish(net);
    free(net);
}

int lab5_net_add(struct mvm_vm *vm, uint64_t base, const struct lab5_ring_ops *ring, struct lab5_net **out)
{
    struct lab5_net *net = calloc(1, sizeof(*net));
    struct lab5_vdev vdev = {
        .name = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS),
        .config_len = LAB5_NET_CONFIG_LEN,
        .queues = LAB5_NET_QUEUES,
        .dev = net,
        .config_read = net_config_read,
        .queue_notify = net_queue_notify,
        .reset = net_reset,
        .destroy = net_destroy,
    };
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}; /* locally administered */
    int rc;

    if (!net)
        return mvm_fail(ENOMEM, "virtio-net: out of memory");
    memcpy(net->config.mac, mac, sizeof(mac));
    net->config.status = VIRTIO_NET_S_LINK_UP;
    rc = lab5_mmio_add(vm, base, ring, &vdev, &net->t);
    if (rc < 0)
        return rc;
    if (out)
        *out = net;
    return 0;
}

struct lab5_net *lab5_net_find(struct mvm_vm *vm)
{
    struct lab5_mmio *t = lab5_mmio_find(vm, MVM_VIRTIO_MMIO_BASE);

    return t ? lab5_mmio_vdev(t) : NULL;
}

int lab5_net_configure(struct lab5_net *net, const struct lab5_net_config *cfg)
{
    net->cfg = *cfg;
    lab5_mmio_log_set(net->t, cfg->log);
    if (cfg->pcap) {
        /* The classic pcap header: version 2.4, UTC, microsecond stamps, snap length 65535, Ethernet. */
        const uint32_t hdr[6] = {PCAP_MAGIC, 2 | 4u << 16, 0, 0, 65535, PCAP_LINKTYPE_ETHERNET};

        if (fwrite(hdr, sizeof(hdr), 1, cfg->pcap) != 1)
            return mvm_fail(EIO, "virtio-net: writing the pcap header failed");
    }
    stats_publish(net);
    return 0;
}
