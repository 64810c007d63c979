/* Lab 5 guest: the virtio-mmio transport, register by register: identity, feature negotiation, queues, config,
 * interrupt status, reset. */
#include "lab5/net.h"

#define REG(off)    virtio_read32(&net.dev, (off))
#define SET(off, v) virtio_write32(&net.dev, (off), (v))
#define S_ACK       VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV       VIRTIO_CONFIG_S_DRIVER
#define S_FOK       VIRTIO_CONFIG_S_FEATURES_OK

/* Reset, ACKNOWLEDGE, DRIVER, the 64 feature bits `f`, FEATURES_OK; the Status read back. */
static uint32_t negotiate(uint64_t f)
{
    SET(VIRTIO_MMIO_STATUS, 0);
    SET(VIRTIO_MMIO_STATUS, S_ACK);
    SET(VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
    SET(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    SET(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
    SET(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    SET(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    SET(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
    return REG(VIRTIO_MMIO_STATUS);
}

void guest_main(void)
{
    const uint64_t ring = (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    uint64_t offered;
    uint32_t gen, st;
    uint8_t frame[NET_FRAME_LEN];

    net.dev.base = MVM_VIRTIO_MMIO_BASE;
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976, "MagicValue: \"virt\"");
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_VERSION), 2, "Version: 2 is virtio 1.x's virtio-mmio");
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET, "DeviceID: 1 is virtio-net");
    SET(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered = (uint64_t)REG(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    SET(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    offered |= REG(VIRTIO_MMIO_DEVICE_FEATURES);
    GUEST_ASSERT_EQ(offered & (ring | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MAC),
                    ring | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MAC,
                    "DeviceFeatures: VERSION_1, EVENT_IDX, INDIRECT_DESC, MAC");
    guest_printf("magic, version 2, device 1 (net); offered features 0x%llx\n", (unsigned long long)offered);

    st = negotiate(1ull << VIRTIO_NET_F_MAC);
    GUEST_ASSERT_EQ(st & S_FOK, 0, "FEATURES_OK without VERSION_1 must read back clear");
    st = negotiate(1ull << VIRTIO_F_VERSION_1 | 1ull << 40);
    GUEST_ASSERT_EQ(st & S_FOK, 0, "FEATURES_OK with a feature not offered (bit 40) must read back clear");
    st = negotiate(1ull << VIRTIO_F_VERSION_1 | ring);
    GUEST_ASSERT_EQ(st, S_ACK | S_DRV | S_FOK, "Status after a good negotiation");
    guest_printf("FEATURES_OK refused without VERSION_1 and with bit 40, kept for 0x%llx\n",
                 (unsigned long long)(1ull << VIRTIO_F_VERSION_1 | ring));

    SET(VIRTIO_MMIO_QUEUE_SEL, 0);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_QUEUE_NUM_MAX), 256, "QueueNumMax of queue 0 (receive)");
    SET(VIRTIO_MMIO_QUEUE_SEL, 2);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "QueueNumMax of queue 2: virtio-net has 2 here");
    gen = REG(VIRTIO_MMIO_CONFIG_GENERATION);
    for (unsigned i = 0; i < 6; i++)
        net.mac[i] = (uint8_t)virtio_config_read(&net.dev, i, 1);
    GUEST_ASSERT_EQ(virtio_config_read(&net.dev, 6, 2), VIRTIO_NET_S_LINK_UP, "config status: link up");
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_CONFIG_GENERATION), gen,
                    "ConfigGeneration unchanged: the config read is consistent");
    guest_printf("config: mac %02x:%02x:%02x:%02x:%02x:%02x, link up, generation %u\n", net.mac[0], net.mac[1],
                 net.mac[2], net.mac[3], net.mac[4], net.mac[5], gen);

    /* A queue size that is not a power of two: the device refuses the queue and needs a reset. */
    SET(VIRTIO_MMIO_QUEUE_SEL, 1);
    SET(VIRTIO_MMIO_QUEUE_NUM, 6);
    SET(VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_NET_RINGS);
    SET(VIRTIO_MMIO_QUEUE_AVAIL_LOW, VIRTIO_NET_RINGS + 0x1000);
    SET(VIRTIO_MMIO_QUEUE_USED_LOW, VIRTIO_NET_RINGS + 0x1800);
    SET(VIRTIO_MMIO_QUEUE_READY, 1);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_QUEUE_READY), 0, "QueueReady after QueueNum 6");
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET,
                    "Status NEEDS_RESET after QueueNum 6");
    SET(VIRTIO_MMIO_STATUS, 0);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_STATUS), 0, "Status after reset");
    guest_printf("QueueNum 6 refused (NEEDS_RESET); reset clears it\n");

    /* One frame with interrupts wanted: the device raises InterruptStatus bit 0 (there is no interrupt line yet). */
    net_up(0, false);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_INTERRUPT_STATUS), 0, "InterruptStatus before any frame");
    frame_build(frame, 0);
    GUEST_ASSERT(virtio_net_tx_add(&net, frame, sizeof(frame)) >= 0);
    virtq_kick(&net.tx);
    GUEST_ASSERT(used_take(&net.tx, NULL) != NULL);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING, "InterruptStatus after a used buffer");
    SET(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_INTERRUPT_STATUS), 0, "InterruptStatus after InterruptACK");
    guest_printf("a used buffer sets InterruptStatus 0x1; InterruptACK clears it\n");

    SET(VIRTIO_MMIO_STATUS, 0);
    SET(VIRTIO_MMIO_QUEUE_SEL, 1);
    GUEST_ASSERT_EQ(REG(VIRTIO_MMIO_QUEUE_READY), 0, "QueueReady of queue 1 after reset");
    guest_printf("reset: Status 0x%x, queue 1 not ready\n", REG(VIRTIO_MMIO_STATUS));
}
