/* The guest's virtio driver, polled (no interrupt controller yet): virtio-mmio set-up, split virtqueues, virtio-net. */
#if defined(__x86_64__) /* the runtime is also built for 32-bit guests, which have no virtio */
#include "runtime/virtio.h"
#include "runtime/runtime.h"

/* Compiler barrier: x86 keeps stores in order and loads in order, so the driver's rmb/wmb need no fence. */
#define virtio_wmb() __asm__ volatile("" ::: "memory")
#define virtio_rmb() __asm__ volatile("" ::: "memory")
/* A store then a load of another location: the one reordering x86 does, so a real fence. */
#define virtio_mb() __asm__ volatile("mfence" ::: "memory")

/* One mov each: the VMM sees exactly one 32-bit MMIO access (never a read-modify-write). */
uint32_t virtio_read32(struct virtio_dev *d, uint32_t off)
{
    uint32_t v;

    __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(d->base + off) : "memory");
    return v;
}

void virtio_write32(struct virtio_dev *d, uint32_t off, uint32_t v)
{
    __asm__ volatile("movl %0, (%1)" : : "r"(v), "r"(d->base + off) : "memory");
}

uint32_t virtio_config_read(struct virtio_dev *d, uint32_t off, unsigned len)
{
    uintptr_t a = d->base + VIRTIO_MMIO_CONFIG + off;
    uint32_t v = 0;

    if (len == 1)
        __asm__ volatile("movzbl (%1), %0" : "=r"(v) : "r"(a) : "memory");
    else if (len == 2)
        __asm__ volatile("movzwl (%1), %0" : "=r"(v) : "r"(a) : "memory");
    else
        __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory");
    return v;
}

static int check(uint32_t off, uint32_t v, uint32_t want, uint32_t *got, uint32_t *expected)
{
    if (v == want)
        return 0;
    *got = v;
    *expected = want;
    return (int)off;
}

int virtio_init(struct virtio_dev *d, uintptr_t base, uint32_t device_id, uint64_t want, uint32_t *got,
                uint32_t *expected)
{
    uint64_t offered;
    uint32_t status;
    int rc;

    d->base = base;
    d->features = 0;
    if ((rc = check(VIRTIO_MMIO_MAGIC_VALUE, virtio_read32(d, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976, got, expected)) ||
        (rc = check(VIRTIO_MMIO_VERSION, virtio_read32(d, VIRTIO_MMIO_VERSION), 2, got, expected)) ||
        (rc = check(VIRTIO_MMIO_DEVICE_ID, virtio_read32(d, VIRTIO_MMIO_DEVICE_ID), device_id, got, expected)))
        return rc;
    virtio_write32(d, VIRTIO_MMIO_STATUS, 0);
    status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
    virtio_write32(d, VIRTIO_MMIO_STATUS, status);
    status |= VIRTIO_CONFIG_S_DRIVER;
    virtio_write32(d, VIRTIO_MMIO_STATUS, status);
    virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered = (uint64_t)virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    offered |= virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES);
    d->features = want & offered;
    virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
    virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
    status |= VIRTIO_CONFIG_S_FEATURES_OK;
    virtio_write32(d, VIRTIO_MMIO_STATUS, status);
    /* The device says yes by keeping FEATURES_OK set. */
    return check(VIRTIO_MMIO_STATUS, virtio_read32(d, VIRTIO_MMIO_STATUS), status, got, expected);
}

int virtq_init(struct virtq *vq, struct virtio_dev *d, uint16_t index, uint16_t size, void *mem, uint32_t *got,
               uint32_t *expected)
{
    uint32_t max;
    int rc;

    memset(vq, 0, sizeof(*vq));
    memset(mem, 0, vring_size(size, VRING_USED_ALIGN_SIZE));
    vq->dev = d;
    vq->index = index;
    vq->size = size;
    vq->event_idx = d->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    vring_init(&vq->ring, size, mem, VRING_USED_ALIGN_SIZE);
    /* The free list: every descriptor, linked through `next`. */
    for (uint16_t i = 0; i < size; i++)
        vq->ring.desc[i].next = (uint16_t)(i + 1);
    vq->num_free = size;
    virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, index);
    if ((rc = check(VIRTIO_MMIO_QUEUE_READY, virtio_read32(d, VIRTIO_MMIO_QUEUE_READY), 0, got, expected)))
        return rc;
    max = virtio_read32(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max < size)
        return check(VIRTIO_MMIO_QUEUE_NUM_MAX, max, size, got, expected);
    virtio_write32(d, VIRTIO_MMIO_QUEUE_NUM, size);
    virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(uintptr_t)vq->ring.desc);
    virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)((uint64_t)(uintptr_t)vq->ring.desc >> 32));
    virtio_write32(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(uintptr_t)vq->ring.avail);
    virtio_write32(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)((uint64_t)(uintptr_t)vq->ring.avail >> 32));
    virtio_write32(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(uintptr_t)vq->ring.used);
    virtio_write32(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)((uint64_t)(uintptr_t)vq->ring.used >> 32));
    virtio_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
    return check(VIRTIO_MMIO_QUEUE_READY, virtio_read32(d, VIRTIO_MMIO_QUEUE_READY), 1, got, expected);
}

void virtio_driver_ok(struct virtio_dev *d)
{
    virtio_write32(d, VIRTIO_MMIO_STATUS,
                   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
                       VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Puts the head in the next avail slot; the device sees it only after virtq_publish. */
static void avail_add(struct virtq *vq, uint16_t head, void *token)
{
    vq->token[head] = token;
    vq->ring.avail->ring[vq->avail_idx % vq->size] = head;
    vq->avail_idx++;
}

int virtq_add(struct virtq *vq, const struct virtq_sg *sg, unsigned out, unsigned in, void *token)
{
    unsigned n = out + in;
    uint16_t head = vq->free_head, i = head;

    if (n == 0 || n > vq->num_free)
        return -1;
    for (unsigned k = 0; k < n; k++) {
        struct vring_desc *d = &vq->ring.desc[i];

        d->addr = (uint64_t)(uintptr_t)sg[k].addr;
        d->len = sg[k].len;
        d->flags = (uint16_t)((k >= out ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0));
        i = d->next; /* the free list's link doubles as the chain's */
    }
    vq->free_head = i;
    vq->num_free = (uint16_t)(vq->num_free - n);
    avail_add(vq, head, token);
    return head;
}

int virtq_add_indirect(struct virtq *vq, struct vring_desc *table, const struct virtq_sg *sg, unsigned out, unsigned in,
                       void *token)
{
    unsigned n = out + in;
    uint16_t head = vq->free_head;
    struct vring_desc *d;

    if (n == 0 || vq->num_free == 0)
        return -1;
    for (unsigned k = 0; k < n; k++) {
        table[k].addr = (uint64_t)(uintptr_t)sg[k].addr;
        table[k].len = sg[k].len;
        table[k].flags = (uint16_t)((k >= out ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0));
        table[k].next = (uint16_t)(k + 1 < n ? k + 1 : 0);
    }
    d = &vq->ring.desc[head];
    d->addr = (uint64_t)(uintptr_t)table;
    d->len = (uint32_t)(n * sizeof(*table));
    d->flags = VRING_DESC_F_INDIRECT;
    vq->free_head = d->next;
    vq->num_free--;
    avail_add(vq, head, token);
    return head;
}

void virtq_publish(struct virtq *vq)
{
    /* The ring entries and descriptors before the index that makes them the device's. */
    virtio_wmb();
    *(volatile uint16_t *)&vq->ring.avail->idx = vq->avail_idx;
}

/* The event words after each ring (vring_used_event/vring_avail_event), as 16-bit volatile locations. */
static volatile uint16_t *used_event_word(struct virtq *vq)
{
    return (volatile uint16_t *)(void *)&vq->ring.avail->ring[vq->size];
}

static volatile uint16_t *avail_event_word(struct virtq *vq)
{
    return (volatile uint16_t *)(void *)&vq->ring.used->ring[vq->size];
}

bool virtq_kick_prepare(struct virtq *vq)
{
    uint16_t old = vq->kicked_idx, now = vq->avail_idx;
    bool need;

    /* Our avail->idx store before our read of the device's wish: store -> load needs the fence. */
    virtio_mb();
    if (vq->event_idx)
        need = vring_need_event(*avail_event_word(vq), now, old);
    else
        need = !(*(volatile uint16_t *)&vq->ring.used->flags & VRING_USED_F_NO_NOTIFY);
    vq->kicked_idx = now;
    return need;
}

void virtq_notify(struct virtq *vq)
{
    vq->kicks++;
    virtio_write32(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
}

bool virtq_kick(struct virtq *vq)
{
    virtq_publish(vq);
    if (!virtq_kick_prepare(vq))
        return false;
    virtq_notify(vq);
    return true;
}

uint16_t virtq_used_idx(const struct virtq *vq)
{
    return *(volatile uint16_t *)&vq->ring.used->idx;
}

void *virtq_get_used(struct virtq *vq, uint32_t *len)
{
    struct vring_used_elem e;
    uint16_t i, n = 1;
    void *token;

    if (virtq_used_idx(vq) == vq->last_used)
        return NULL;
    /* used->idx before the element it covers (the device wrote the element first). */
    virtio_rmb();
    e = vq->ring.used->ring[vq->last_used % vq->size];
    vq->last_used++;
    if (e.id >= vq->size)
        return NULL;
    token = vq->token[e.id];
    /* Back on the free list: follow NEXT to the chain's last descriptor. */
    for (i = (uint16_t)e.id; vq->ring.desc[i].flags & VRING_DESC_F_NEXT; i = vq->ring.desc[i].next)
        n++;
    vq->ring.desc[i].next = vq->free_head;
    vq->free_head = (uint16_t)e.id;
    vq->num_free = (uint16_t)(vq->num_free + n);
    if (len)
        *len = e.len;
    return token;
}

void virtq_used_event_set(struct virtq *vq, uint16_t idx)
{
    *used_event_word(vq) = idx;
}

void virtq_interrupts(struct virtq *vq, bool on)
{
    *(volatile uint16_t *)&vq->ring.avail->flags = on ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
}

int virtio_net_init(struct virtio_net *n, uint64_t want, bool rx, uint32_t *got, uint32_t *expected)
{
    uint64_t features =
        want | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
    int rc;

    memset(n, 0, sizeof(*n));
    if ((rc = virtio_init(&n->dev, MVM_VIRTIO_MMIO_BASE, VIRTIO_ID_NET, features, got, expected)) ||
        (rc = virtq_init(&n->rx, &n->dev, 0, VIRTIO_NET_RX_QUEUE, addr_ptr(VIRTIO_NET_RINGS), got, expected)) ||
        (rc = virtq_init(&n->tx, &n->dev, 1, VIRTIO_NET_TX_QUEUE, addr_ptr(VIRTIO_NET_RINGS + VIRTIO_NET_RING_BYTES),
                         got, expected)))
        return rc;
    for (unsigned i = 0; i < 6; i++)
        n->mac[i] = (uint8_t)virtio_config_read(&n->dev, i, 1);
    n->indirect = n->dev.features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    virtio_driver_ok(&n->dev);
    n->rx_on = rx;
    if (rx) {
        for (unsigned i = 0; i < VIRTIO_NET_RX_QUEUE; i++) {
            uint8_t *buf = addr_ptr(VIRTIO_NET_RX_BUFS + i * VIRTIO_NET_RX_BUF_SIZE);
            struct virtq_sg sg = {buf, VIRTIO_NET_RX_BUF_SIZE};

            virtq_add(&n->rx, &sg, 0, 1, buf);
        }
        virtq_kick(&n->rx);
    }
    return 0;
}

int virtio_net_tx_add(struct virtio_net *n, const void *frame, uint32_t len)
{
    uint32_t slot = n->tx_next % VIRTIO_NET_TX_QUEUE;
    uint8_t *buf = addr_ptr(VIRTIO_NET_TX_SLOTS + slot * VIRTIO_NET_TX_SLOT_SIZE);
    const uint32_t hlen = sizeof(struct virtio_net_hdr_v1);
    int head;

    if (len > VIRTIO_NET_FRAME_MAX)
        return -1;
    memset(buf, 0, hlen);
    memcpy(buf + hlen, frame, len);
    if (n->indirect) {
        /* Two entries, header and frame, in this slot's indirect table: one ring descriptor per frame. */
        struct virtq_sg sg[2] = {{buf, hlen}, {buf + hlen, len}};

        head = virtq_add_indirect(&n->tx, addr_ptr(VIRTIO_NET_INDIRECT + slot * 2 * sizeof(struct vring_desc)), sg, 2,
                                  0, buf);
    } else {
        /* Header and frame in one buffer: virtio 1.x lets the driver lay the chain out as it likes. */
        struct virtq_sg sg = {buf, hlen + len};

        head = virtq_add(&n->tx, &sg, 1, 0, buf);
    }
    if (head >= 0)
        n->tx_next++;
    return head;
}

const uint8_t *virtio_net_rx_get(struct virtio_net *n, uint32_t *len, const struct virtio_net_hdr_v1 **hdr)
{
    uint32_t used_len = 0;
    uint8_t *buf = virtq_get_used(&n->rx, &used_len);
    const uint32_t hlen = sizeof(struct virtio_net_hdr_v1);

    if (!buf)
        return NULL;
    if (hdr)
        *hdr = (const struct virtio_net_hdr_v1 *)buf;
    *len = used_len >= hlen ? used_len - hlen : 0;
    return buf + hlen;
}

void virtio_net_rx_recycle(struct virtio_net *n, const uint8_t *frame)
{
    uint8_t *buf = (uint8_t *)(uintptr_t)(frame - sizeof(struct virtio_net_hdr_v1));
    struct virtq_sg sg = {buf, VIRTIO_NET_RX_BUF_SIZE};

    virtq_add(&n->rx, &sg, 0, 1, buf);
}

#endif
