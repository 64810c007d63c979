/* The guest's virtio driver, polled: virtio-mmio version 2 set-up, the driver side of split virtqueues, virtio-net. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

/*
 * The uapi headers need only linux/types.h: they compile freestanding, so the
 * guest shares the VMM's definitions. 64-bit guests only (the x86_64 asm/types.h).
 */
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTQ_MAX 256 /* the largest queue this driver sets up */

/* Where the drivers' buffers live: guest RAM above the image, identity-mapped (gva == gpa). */
#define VIRTIO_DMA_GPA          0x100000ul
#define VIRTIO_NET_RX_BUFS      (VIRTIO_DMA_GPA) /* 128 receive buffers of 2 KiB */
#define VIRTIO_NET_RX_BUF_SIZE  2048u
#define VIRTIO_NET_RX_QUEUE     128u
#define VIRTIO_NET_TX_SLOTS     (VIRTIO_DMA_GPA + 0x40000) /* 256 transmit slots of 1 KiB: header + frame */
#define VIRTIO_NET_TX_SLOT_SIZE 1024u
#define VIRTIO_NET_TX_QUEUE     256u
#define VIRTIO_NET_INDIRECT     (VIRTIO_DMA_GPA + 0x80000) /* 256 indirect tables of 2 descriptors */
#define VIRTIO_NET_RINGS        (VIRTIO_DMA_GPA + 0x90000) /* the receive, then the transmit queue's rings, 8 KiB each */
#define VIRTIO_NET_RING_BYTES   0x2000u
#define VIRTIO_NET_FRAME_MAX    (VIRTIO_NET_TX_SLOT_SIZE - sizeof(struct virtio_net_hdr_v1))

/* One virtio-mmio device. */
struct virtio_dev {
    uintptr_t base;
    uint64_t features; /* negotiated */
};

/* The driver side of one split virtqueue. Indices are free-running 16-bit counters, as on the device side. */
struct virtq {
    struct virtio_dev *dev;
    uint16_t index, size;
    struct vring ring; /* this driver's own pointers to its three areas */
    uint16_t free_head, num_free;
    uint16_t avail_idx;  /* entries added (published to the device by virtq_publish) */
    uint16_t kicked_idx; /* avail_idx at the last kick decision: `old` of vring_need_event */
    uint16_t last_used;  /* the next used entry to take */
    bool event_idx;
    uint64_t kicks;
    void *token[VIRTQ_MAX]; /* the caller's cookie per head */
};

/* One buffer of a chain to add: `out` ones (device reads) come before `in` ones (device writes). */
struct virtq_sg {
    const void *addr;
    uint32_t len;
};

/* The device's registers: aligned 32-bit MMIO accesses (each one an exit). */
uint32_t virtio_read32(struct virtio_dev *d, uint32_t off);
void virtio_write32(struct virtio_dev *d, uint32_t off, uint32_t v);
/* Configuration bytes at VIRTIO_MMIO_CONFIG + off, in accesses of `len` (1, 2 or 4) bytes. */
uint32_t virtio_config_read(struct virtio_dev *d, uint32_t off, unsigned len);

/*
 * Checks the device at `base` (magic, version 2, device ID) and negotiates:
 * reset, ACKNOWLEDGE, DRIVER, the features `want` & offered, FEATURES_OK
 * read back. Returns 0, or the failing register's offset (never 0) with
 * *got and *expected set, for the caller's assertion.
 */
int virtio_init(struct virtio_dev *d, uintptr_t base, uint32_t device_id, uint64_t want, uint32_t *got,
                uint32_t *expected);
/*
 * Sets up queue `index` of `size` entries in `mem` (zeroed here; 4 KiB
 * aligned, at least vring_size(size, 4) bytes) and makes it ready. Returns 0,
 * or the failing register's offset with *got and *expected set.
 */
int virtq_init(struct virtq *vq, struct virtio_dev *d, uint16_t index, uint16_t size, void *mem, uint32_t *got,
               uint32_t *expected);
/* Status |= DRIVER_OK: the device may use the queues. */
void virtio_driver_ok(struct virtio_dev *d);

/* Adds a chain of out + in buffers, not yet visible to the device. Returns the head, or -1 with too few free
 * descriptors. */
int virtq_add(struct virtq *vq, const struct virtq_sg *sg, unsigned out, unsigned in, void *token);
/* Same with one descriptor pointing at an indirect table `table` (out + in entries) the caller owns until it is used.
 */
int virtq_add_indirect(struct virtq *vq, struct vring_desc *table, const struct virtq_sg *sg, unsigned out, unsigned in,
                       void *token);
/* Makes every added chain visible: a write barrier, then avail->idx. */
void virtq_publish(struct virtq *vq);
/* After virtq_publish: true when the device wants a kick (avail_event with EVENT_IDX, else used->flags). */
bool virtq_kick_prepare(struct virtq *vq);
/* The kick: QueueNotify = the queue's index (an exit). */
void virtq_notify(struct virtq *vq);
/* Publishes, and kicks if the device wants it. Returns whether it kicked. */
bool virtq_kick(struct virtq *vq);
/* The next used chain's token (and the bytes written, *len), freeing its descriptors; NULL when none is used yet. */
void *virtq_get_used(struct virtq *vq, uint32_t *len);
/* The used->idx the device has published. */
uint16_t virtq_used_idx(const struct virtq *vq);
/* With EVENT_IDX: ask for a notification when the used entry at `idx` is written. */
void virtq_used_event_set(struct virtq *vq, uint16_t idx);
/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT on (the driver polls) or off. */
void virtq_interrupts(struct virtq *vq, bool on);

/* virtio-net on the driver above: receive queue 0, transmit queue 1. */
struct virtio_net {
    struct virtio_dev dev;
    struct virtq rx, tx;
    uint8_t mac[6];
    bool indirect;
    bool rx_on;
    uint32_t tx_next; /* the next transmit slot */
};

/*
 * Brings virtio-net up: virtio_init with VERSION_1 | MAC | STATUS and the
 * ring features in `want`, both queues, DRIVER_OK, and, when `rx`, every
 * receive buffer posted and kicked once. Returns as virtio_init does.
 */
int virtio_net_init(struct virtio_net *n, uint64_t want, bool rx, uint32_t *got, uint32_t *expected);
/* Copies a frame into the next transmit slot behind a zeroed v1 header and adds it (not yet published). -1: no room. */
int virtio_net_tx_add(struct virtio_net *n, const void *frame, uint32_t len);
/* The next received frame (its bytes after the header, and length), or NULL; virtio_net_rx_recycle gives its buffer
 * back. */
const uint8_t *virtio_net_rx_get(struct virtio_net *n, uint32_t *len, const struct virtio_net_hdr_v1 **hdr);
void virtio_net_rx_recycle(struct virtio_net *n, const uint8_t *frame);

#endif
