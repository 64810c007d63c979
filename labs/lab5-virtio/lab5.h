/*
 * Lab 5: virtio from the ring up. Three files, kvm-host's split: the split
 * virtqueue's device side (lab5_virtq.c, the student's), the virtio-mmio
 * transport (lab5_mmio.c) and the virtio-net device (lab5_net.c). Layouts and
 * constants come from the uapi headers, never written by hand here.
 */
#ifndef LAB5_VIRTIO_LAB5_H
#define LAB5_VIRTIO_LAB5_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mvm.h"

/* The largest queue the device offers (QueueNumMax); a chain never has more buffers than this. */
#define LAB5_QUEUE_MAX 256
/* virtio-net's queues: receive (the device writes frames into the driver's buffers) and transmit. */
#define LAB5_NET_RXQ    0
#define LAB5_NET_TXQ    1
#define LAB5_NET_QUEUES 2
/* The largest Ethernet frame the device moves (no GSO is offered), after the virtio-net header. */
#define LAB5_NET_FRAME_MAX 1514

/*
 * Error codes of the ring functions: -EPROTO means the guest broke the ring's
 * contract (a device error: the transport sets NEEDS_RESET and logs the
 * message); any other -errno is the VMM's own failure.
 */

/* One split virtqueue, device side. The transport fills it at QueueReady = 1 (lab5_virtq_setup). */
struct lab5_virtq {
    struct mvm_vm *vm;
    unsigned index;    /* the queue's number, for messages */
    struct vring ring; /* num = QueueNum; desc/avail/used: host pointers to the guest's three areas */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated: used_event/avail_event instead of flags */
    bool indirect;           /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    uint16_t last_avail_idx; /* free-running: the next avail->ring slot the device pops */
    uint16_t used_idx;       /* free-running: the device's copy of used->idx */
};

/* One buffer of a chain: guest memory [gpa, gpa + len), already translated to host `hva`. */
struct lab5_buf {
    uint64_t gpa;
    uint8_t *hva; /* NULL when len is 0 */
    uint32_t len;
    bool device_writes; /* VRING_DESC_F_WRITE: the device writes it (else it only reads it) */
};

/* A validated descriptor chain: what the driver made available at one head. */
struct lab5_chain {
    uint16_t head; /* the head descriptor's index: what goes back in the used element */
    uint16_t nbufs;
    uint32_t readable; /* total bytes of the device-readable buffers */
    uint32_t writable; /* total bytes of the device-writable buffers (they come last) */
    struct lab5_buf bufs[LAB5_QUEUE_MAX];
};

/*
 * Checks and maps a queue the driver has set up, then fills *vq (zeroing its
 * indices): QueueNum `num` a power of two in 1..LAB5_QUEUE_MAX, the areas
 * aligned as the spec says (descriptors 16, driver area 2, device area 4) and
 * each wholly in guest RAM (vm_gpa_to_hva) with the sizes of its ring of
 * `num` entries plus the event index word. `features` is the negotiated set.
 * Returns 0, or -EPROTO with a message naming the register and the value.
 */
int lab5_virtq_setup(struct lab5_virtq *vq, struct mvm_vm *vm, unsigned index, uint16_t num, uint64_t desc_gpa,
                     uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);

/*
 * Walks the chain that starts at descriptor `head` and fills *chain: every
 * buffer translated through vm_gpa_to_hva; indirect tables followed (when
 * negotiated, one level, never with NEXT); device-writable buffers after all
 * readable ones; at most ring.num descriptors (a loop ends there) and
 * LAB5_QUEUE_MAX buffers; byte totals that fit in 32 bits. Reads each
 * descriptor from guest memory once. Returns 0, or -EPROTO with a message
 * naming the descriptor index, the field and what was expected.
 */
int lab5_chain_walk(struct lab5_virtq *vq, uint16_t head, struct lab5_chain *chain);

/*
 * Pops the next available chain: 1 and *chain filled (last_avail_idx moves
 * on), 0 when the driver has made nothing new available (with EVENT_IDX, the
 * device then asks for a kick at the next entry through avail_event), or
 * -EPROTO when avail->idx ran more than ring.num ahead of the device or the
 * ring holds a head >= ring.num or a bad chain (lab5_chain_walk).
 * Memory order: avail->idx is read before the ring entry and descriptors it covers.
 */
int lab5_virtq_pop(struct lab5_virtq *vq, struct lab5_chain *chain);

/*
 * Returns the chain at `head` to the driver with `len` bytes written into its
 * device-writable buffers: the used element first, then used->idx (release
 * order). Returns 0, or -EPROTO for a head >= ring.num.
 */
int lab5_virtq_push(struct lab5_virtq *vq, uint16_t head, uint32_t len);

/*
 * After pushes that moved used->idx from `old_used` to vq->used_idx: whether
 * the driver asked to be notified (an interrupt, once there is an interrupt
 * controller). With EVENT_IDX: vring_need_event(used_event, new, old); else
 * unless the driver set VRING_AVAIL_F_NO_INTERRUPT. A full barrier separates
 * the used->idx store from the read of the driver's choice.
 */
bool lab5_virtq_should_notify(struct lab5_virtq *vq, uint16_t old_used);

/* The ring functions the transport calls: the student's or the reference, as the plug-in hands them over. */
struct lab5_ring_ops {
    int (*setup)(struct lab5_virtq *vq, struct mvm_vm *vm, unsigned index, uint16_t num, uint64_t desc_gpa,
                 uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);
    int (*pop)(struct lab5_virtq *vq, struct lab5_chain *chain);
    int (*push)(struct lab5_virtq *vq, uint16_t head, uint32_t len);
    bool (*should_notify)(struct lab5_virtq *vq, uint16_t old_used);
};

/*
 * The transport (lab5_mmio.c): virtio-mmio version 2 registers, the status
 * handshake, feature negotiation, queue set-up, InterruptStatus/ACK, config
 * generation and reset, for one device behind it (struct lab5_vdev).
 */
struct lab5_mmio;
struct lab5_net_stats;

/* What a device behind the transport provides. `dev` is its state. */
struct lab5_vdev {
    const char *name;    /* "virtio-net", for messages */
    uint32_t device_id;  /* VIRTIO_ID_NET, ... */
    uint64_t features;   /* device-type features offered (the transport adds VERSION_1 and the ring's) */
    uint32_t config_len; /* bytes of device configuration at VIRTIO_MMIO_CONFIG */
    unsigned queues;     /* how many virtqueues */
    void *dev;
    /* Copies config bytes [off, off + len) into data (the transport checked the range). */
    void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
    /* The driver kicked queue q (ready, DRIVER_OK set). Returns 0, or -errno when the VMM failed. */
    int (*queue_notify)(void *dev, struct lab5_mmio *t, unsigned q);
    /* Back to the power-on state (driver reset or VM reset). */
    void (*reset)(void *dev);
    /* Frees dev. */
    void (*destroy)(void *dev);
};

/*
 * Adds the transport at `base` of the VM's MMIO bus with `vdev` behind it,
 * using `ring` for every queue; the bus owns both from then on. Returns 0 and
 * sets *out (may be NULL), or -errno with a message.
 */
int lab5_mmio_add(struct mvm_vm *vm, uint64_t base, const struct lab5_ring_ops *ring, const struct lab5_vdev *vdev,
                  struct lab5_mmio **out);
/* The transport whose device is `dev` at `base` of `vm`, or NULL. */
struct lab5_mmio *lab5_mmio_find(struct mvm_vm *vm, uint64_t base);
/* The device state behind a transport. */
void *lab5_mmio_vdev(struct lab5_mmio *t);
/* Where device errors are logged, one line each (NULL: nowhere). */
void lab5_mmio_log_set(struct lab5_mmio *t, FILE *log);
/* True when queue q is ready and the device may use it (DRIVER_OK set, NEEDS_RESET clear). */
bool lab5_mmio_queue_live(struct lab5_mmio *t, unsigned q);
/*
 * The ring calls as a device makes them: pop (1, 0 or -errno), push (0 or
 * -errno) and the notification decision. A -EPROTO from the ring is a device
 * error: the transport sets NEEDS_RESET, logs the ring's message, and the
 * queue stays idle until the driver resets the device; the call returns it.
 */
int lab5_mmio_pop(struct lab5_mmio *t, unsigned q, struct lab5_chain *chain);
int lab5_mmio_push(struct lab5_mmio *t, unsigned q, uint16_t head, uint32_t len);
/* After pushes from `old_used`: raises a used-buffer notification if the ring says the driver wants one. */
void lab5_mmio_notify(struct lab5_mmio *t, unsigned q, uint16_t old_used);
/* The queue's current used index (for lab5_mmio_notify's old_used). */
uint16_t lab5_mmio_used_idx(struct lab5_mmio *t, unsigned q);
/* Sets NEEDS_RESET and logs one line (printf-style) naming the device. */
void lab5_mmio_device_error(struct lab5_mmio *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The transport's part of the counters (kicks, notifications, errors, resets, status, features, last error). */
void lab5_mmio_stats_get(const struct lab5_mmio *t, struct lab5_net_stats *out);

/* What the device side of virtio-net counts; a test reads it after the VM is gone (lab5_net_config.stats_out). */
struct lab5_net_stats {
    uint64_t kicks[LAB5_NET_QUEUES];         /* QueueNotify writes, per queue */
    uint64_t notifications[LAB5_NET_QUEUES]; /* used-buffer notifications raised (InterruptStatus bit 0) */
    uint64_t tx_frames, tx_bytes;            /* frames the driver transmitted (after the virtio-net header) */
    uint64_t rx_frames;                      /* frames looped back into the receive queue */
    uint64_t rx_dropped;                     /* looped-back frames with no receive buffer (or one too small) */
    uint64_t device_errors;                  /* times the device set NEEDS_RESET */
    uint64_t resets;                         /* Status = 0 writes */
    uint32_t status;                         /* the device status register at the end */
    uint64_t features;                       /* the features the driver had negotiated (FEATURES_OK) */
    char last_error[320];                    /* the last device error's line, "" if none */
};

/* How the CLI, tests and benchmarks configure the VM's virtio-net device (lab5_net_configure). */
struct lab5_net_config {
    FILE *pcap;                       /* transmitted frames go here as a pcap stream (NULL: none); not closed */
    FILE *log;                        /* one line per device error (NULL: none); the default is stderr */
    bool no_loopback;                 /* true: transmitted frames do not come back in the receive queue */
    struct lab5_net_stats *stats_out; /* updated at every kick and when the device goes away; may be NULL */
};

/* The virtio-net device (device ID 1) behind the transport. */
struct lab5_net;

/*
 * Adds the virtio-mmio transport with a virtio-net device behind it at
 * guest-physical `base` (MVM_VIRTIO_MMIO_SIZE bytes of MMIO), serviced by the
 * ring functions `ring`. The VM's bus owns it. Returns 0 and sets *out (may
 * be NULL), or -errno with a message.
 */
int lab5_net_add(struct mvm_vm *vm, uint64_t base, const struct lab5_ring_ops *ring, struct lab5_net **out);

/* The virtio-net device at MVM_VIRTIO_MMIO_BASE of `vm`, or NULL (no lab 5 device there). */
struct lab5_net *lab5_net_find(struct mvm_vm *vm);

/* Applies `cfg` to the device (the pcap header is written now). Returns 0, or -errno with a message. */
int lab5_net_configure(struct lab5_net *net, const struct lab5_net_config *cfg);

/* The device's counters now. */
void lab5_net_stats_get(const struct lab5_net *net, struct lab5_net_stats *out);

#endif
