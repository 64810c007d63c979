/* Lab 5 guest: broken rings on purpose; each must leave the device in NEEDS_RESET with nothing used, then a reset
 * recovers it. */
#include "lab5/net.h"

#define IND ((struct vring_desc *)addr_ptr(VIRTIO_NET_INDIRECT))

static uint64_t features;

/* A well-formed frame's buffer (header + frame), for the descriptors below. */
static uint64_t good_buf(void)
{
    uint8_t *buf = addr_ptr(VIRTIO_NET_TX_SLOTS);

    memset(buf, 0, 12);
    frame_build(buf + 12, 0);
    return (uint64_t)(uintptr_t)buf;
}

static void desc_set(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

/* Makes head 0 available as slot 0 and kicks. */
static void offer_head(uint16_t head, uint16_t idx)
{
    net.tx.ring.avail->ring[0] = head;
    __asm__ volatile("" ::: "memory");
    *(volatile uint16_t *)&net.tx.ring.avail->idx = idx;
    virtq_notify(&net.tx);
}

/* After a broken offer: nothing used, NEEDS_RESET set; then reset, bring up again and send a good frame. */
static void expect_needs_reset(const char *what)
{
    uint8_t frame[NET_FRAME_LEN];

    GUEST_ASSERT_EQ(virtq_used_idx(&net.tx), 0, "used->idx: the device must not use a broken chain");
    GUEST_ASSERT_EQ(virtio_read32(&net.dev, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET,
                    VIRTIO_CONFIG_S_NEEDS_RESET, "Status NEEDS_RESET after a broken ring");
    net_up(features, false);
    frame_build(frame, 1);
    GUEST_ASSERT(virtio_net_tx_add(&net, frame, sizeof(frame)) >= 0);
    virtq_kick(&net.tx);
    GUEST_ASSERT(used_take(&net.tx, NULL) != NULL);
    guest_printf("%s: NEEDS_RESET, nothing used; reset, and the next frame goes\n", what);
    net_up(features, false); /* fresh rings for the next case */
}

void guest_main(void)
{
    features = 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    net_up(features, false);

    desc_set(&net.tx.ring.desc[0], good_buf(), 72, VRING_DESC_F_NEXT, 1);
    desc_set(&net.tx.ring.desc[1], good_buf(), 8, VRING_DESC_F_NEXT, 0);
    offer_head(0, 1);
    expect_needs_reset("a chain that loops (0 -> 1 -> 0)");

    desc_set(&net.tx.ring.desc[0], good_buf(), 72, VRING_DESC_F_NEXT, 999);
    offer_head(0, 1);
    expect_needs_reset("next = 999 in a queue of 256");

    desc_set(&net.tx.ring.desc[0], MVM_VIRTIO_MMIO_BASE, 72, 0, 0);
    offer_head(0, 1);
    expect_needs_reset("a buffer in the device's own MMIO range");

    desc_set(&net.tx.ring.desc[0], 0xfffffffffffff000ull, 0x2000, 0, 0);
    offer_head(0, 1);
    expect_needs_reset("a buffer whose end wraps past 2^64");

    desc_set(&net.tx.ring.desc[0], good_buf(), 72, 0, 0);
    offer_head(0, 300);
    expect_needs_reset("avail->idx 300 with 256 entries");

    offer_head(256, 1);
    expect_needs_reset("avail->ring[0] = 256, a head past the table");

    desc_set(&net.tx.ring.desc[0], (uint64_t)(uintptr_t)IND, 16, VRING_DESC_F_INDIRECT, 0);
    desc_set(&IND[0], (uint64_t)(uintptr_t)&IND[4], 16, VRING_DESC_F_INDIRECT, 0);
    offer_head(0, 1);
    expect_needs_reset("an indirect table inside an indirect table");

    desc_set(&net.tx.ring.desc[0], (uint64_t)(uintptr_t)IND, 24, VRING_DESC_F_INDIRECT, 0);
    offer_head(0, 1);
    expect_needs_reset("an indirect table of 24 bytes");

    desc_set(&net.tx.ring.desc[0], good_buf(), 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    desc_set(&net.tx.ring.desc[1], good_buf(), 72, 0, 0);
    offer_head(0, 1);
    expect_needs_reset("a readable buffer after a writable one");

    desc_set(&net.tx.ring.desc[0], good_buf(), 72, VRING_DESC_F_WRITE, 0);
    offer_head(0, 1);
    expect_needs_reset("a device-writable buffer in a transmit chain");

    features = 0;
    net_up(features, false);
    desc_set(&net.tx.ring.desc[0], (uint64_t)(uintptr_t)IND, 16, VRING_DESC_F_INDIRECT, 0);
    desc_set(&IND[0], good_buf(), 72, 0, 0);
    offer_head(0, 1);
    expect_needs_reset("VRING_DESC_F_INDIRECT not negotiated");
}
