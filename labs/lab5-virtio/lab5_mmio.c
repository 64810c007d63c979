/* Lab 5's transport: virtio-mmio version 2 (virtio 1.2 section 4.2) on the VM's MMIO bus. Not a student file. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "lab5-virtio/lab5.h"

#define LAB5_MMIO_MAGIC  0x74726976 /* "virt" */
#define LAB5_MMIO_VENDOR 0x6d766d6d /* "mmvm" */
/* Features every device here offers: virtio 1.x, and both ring features the lab implements. */
#define LAB5_TRANSPORT_FEATURES                                                                                        \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC))

/* One queue as the driver sets it up through the registers, and the ring once it is ready. */
struct lab5_queue {
    uint16_t num;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool ready;
    struct lab5_virtq vq;
};

struct lab5_mmio {
    struct mvm_vm *vm;
    const struct lab5_ring_ops *ring;
    struct lab5_vdev vdev;
    FILE *log;
    uint32_t status;
    uint32_t device_features_sel, driver_features_sel, queue_sel;
    uint64_t driver_features;
    uint32_t interrupt_status;
    uint32_t config_generation;
    struct lab5_queue queue[LAB5_NET_QUEUES];
    uint64_t kicks[LAB5_NET_QUEUES], notifications[LAB5_NET_QUEUES];
    uint64_t device_errors, resets;
    char last_error[320];
};

static uint64_t offered(const struct lab5_mmio *t)
{
    return LAB5_TRANSPORT_FEATURES | t->vdev.features;
}

void lab5_mmio_device_error(struct lab5_mmio *t, const char *fmt, ...)
{
    char msg[sizeof(t->last_error) - 24];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(t->last_error, sizeof(t->last_error), "%s: %s", t->vdev.name, msg);
    t->device_errors++;
    if (t->log)
        fprintf(t->log, "%s; status NEEDS_RESET until the driver writes Status = 0\n", t->last_error);
    t->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    /* With DRIVER_OK set, the spec has the device send a configuration change notification. */
    if (t->status & VIRTIO_CONFIG_S_DRIVER_OK)
        t->interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
}

/* A driver mistake that the device ignores (the access has no effect), logged without NEEDS_RESET. */
static void driver_warn(struct lab5_mmio *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void driver_warn(struct lab5_mmio *t, const char *fmt, ...)
{
    va_list ap;

    if (!t->log)
        return;
    fprintf(t->log, "%s: ", t->vdev.name);
    va_start(ap, fmt);
    vfprintf(t->log, fmt, ap);
    va_end(ap);
    fputs("; ignored\n", t->log);
}

static void transport_reset(struct lab5_mmio *t)
{
    t->status = 0;
    t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
    t->driver_features = 0;
    t->interrupt_status = 0;
    memset(t->queue, 0, sizeof(t->queue));
    if (t->vdev.reset)
        t->vdev.reset(t->vdev.dev);
}

bool lab5_mmio_queue_live(struct lab5_mmio *t, unsigned q)
{
    return q < t->vdev.queues && t->queue[q].ready && (t->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !(t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

int lab5_mmio_pop(struct lab5_mmio *t, unsigned q, struct lab5_chain *chain)
{
    int rc;

    if (!lab5_mmio_queue_live(t, q))
        return 0;
    rc = t->ring->pop(&t->queue[q].vq, chain);
    if (rc == -EPROTO)
        lab5_mmio_device_error(t, "queue %u: %s", q, mvm_error());
    return rc;
}

int lab5_mmio_push(struct lab5_mmio *t, unsigned q, uint16_t head, uint32_t len)
{
    int rc;

    if (!lab5_mmio_queue_live(t, q))
        return 0;
    rc = t->ring->push(&t->queue[q].vq, head, len);
    if (rc == -EPROTO)
        lab5_mmio_device_error(t, "queue %u: %s", q, mvm_error());
    return rc;
}

uint16_t lab5_mmio_used_idx(struct lab5_mmio *t, unsigned q)
{
    return q < t->vdev.queues ? t->queue[q].vq.used_idx : 0;
}

void lab5_mmio_notify(struct lab5_mmio *t, unsigned q, uint16_t old_used)
{
    if (!lab5_mmio_queue_live(t, q) || t->queue[q].vq.used_idx == old_used)
        return;
    if (t->ring->should_notify(&t->queue[q].vq, old_used)) {
        /* Where an interrupt controller exists, the interrupt is injected here; this VM has none yet. */
        t->interrupt_status |= VIRTIO_MMIO_INT_VRING;
        t->notifications[q]++;
    }
}

void lab5_mmio_log_set(struct lab5_mmio *t, FILE *log)
{
    t->log = log;
}

void *lab5_mmio_vdev(struct lab5_mmio *t)
{
    return t->vdev.dev;
}

void lab5_mmio_stats_get(const struct lab5_mmio *t, struct lab5_net_stats *out)
{
    for (unsigned q = 0; q < LAB5_NET_QUEUES; q++) {
        out->kicks[q] = t->kicks[q];
        out->notifications[q] = t->notifications[q];
    }
    out->device_errors = t->device_errors;
    out->resets = t->resets;
    out->status = t->status;
    out->features = t->driver_features;
    snprintf(out->last_error, sizeof(out->last_error), "%s", t->last_error);
}

/* QueueReady = 1: the ring checks the layout and maps it; a bad one is a device error. */
static void queue_enable(struct lab5_mmio *t, unsigned q)
{
    struct lab5_queue *qu = &t->queue[q];
    int rc;

    if (!(t->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        lab5_mmio_device_error(t,
                               "QueueReady = 1 for queue %u before FEATURES_OK (Status 0x%x): the driver sets "
                               "up queues after feature negotiation",
                               q, t->status);
        return;
    }
    rc = t->ring->setup(&qu->vq, t->vm, q, qu->num, qu->desc_gpa, qu->avail_gpa, qu->used_gpa, t->driver_features);
    if (rc < 0) {
        lab5_mmio_device_error(t, "QueueReady = 1 for queue %u refused: %s", q, mvm_error());
        return;
    }
    qu->ready = true;
}

static void status_write(struct lab5_mmio *t, uint32_t v)
{
    uint32_t added = v & ~t->status;

    if (v == 0) {
        t->resets++;
        transport_reset(t);
        return;
    }
    if (t->status & ~v & ~VIRTIO_CONFIG_S_NEEDS_RESET) {
        driver_warn(t, "Status 0x%x clears bits of 0x%x: only a write of 0 (reset) clears status bits", v, t->status);
        return;
    }
    if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
        uint64_t extra = t->driver_features & ~offered(t);

        if (extra || !(t->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
            /* Not accepted: FEATURES_OK reads back clear, which is how the driver learns it. */
            driver_warn(t, "FEATURES_OK refused: DriverFeatures 0x%llx %s (offered 0x%llx)",
                        (unsigned long long)t->driver_features,
                        extra ? "has features the device does not offer" : "lacks VIRTIO_F_VERSION_1 (bit 32)",
                        (unsigned long long)offered(t));
            v &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        }
    }
    if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
        driver_warn(t, "DRIVER_OK without FEATURES_OK (Status 0x%x)", v);
        v &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    }
    /* NEEDS_RESET is the device's bit: the driver cannot set or clear it. */
    t->status = (v & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Writes to the queue set-up registers count only while the selected queue is not ready. */
static struct lab5_queue *queue_for_setup(struct lab5_mmio *t, uint64_t off)
{
    if (t->queue_sel >= t->vdev.queues) {
        driver_warn(t, "register 0x%03llx written with QueueSel = %u, but the device has %u queues",
                    (unsigned long long)off, t->queue_sel, t->vdev.queues);
        return NULL;
    }
    if (t->queue[t->queue_sel].ready) {
        driver_warn(t, "register 0x%03llx written while queue %u is ready (write QueueReady = 0 first)",
                    (unsigned long long)off, t->queue_sel);
        return NULL;
    }
    return &t->queue[t->queue_sel];
}

static void set_low(uint64_t *r, uint32_t v)
{
    *r = (*r & ~0xffffffffull) | v;
}

static void set_high(uint64_t *r, uint32_t v)
{
    *r = (*r & 0xffffffffull) | (uint64_t)v << 32;
}

static int reg_write(struct lab5_mmio *t, uint64_t off, uint32_t v)
{
    struct lab5_queue *qu;

    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        t->device_features_sel = v;
        return 0;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        t->driver_features_sel = v;
        return 0;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if ((t->status & VIRTIO_CONFIG_S_FEATURES_OK) || !(t->status & VIRTIO_CONFIG_S_DRIVER))
            driver_warn(t, "DriverFeatures written with Status 0x%x: only after DRIVER and before FEATURES_OK",
                        t->status);
        else if (t->driver_features_sel == 0)
            set_low(&t->driver_features, v);
        else if (t->driver_features_sel == 1)
            set_high(&t->driver_features, v);
        else if (v)
            driver_warn(t, "DriverFeatures 0x%x with DriverFeaturesSel = %u: there are 64 feature bits", v,
                        t->driver_features_sel);
        return 0;
    case VIRTIO_MMIO_QUEUE_SEL:
        t->queue_sel = v;
        return 0;
    case VIRTIO_MMIO_QUEUE_NUM:
        if ((qu = queue_for_setup(t, off)))
            qu->num = v > 0xffff ? 0 : (uint16_t)v; /* checked at QueueReady */
        return 0;
    case VIRTIO_MMIO_QUEUE_READY:
        if (t->queue_sel >= t->vdev.queues)
            driver_warn(t, "QueueReady with QueueSel = %u, but the device has %u queues", t->queue_sel, t->vdev.queues);
        else if (v == 0)
            t->queue[t->queue_sel].ready = false;
        else if (!t->queue[t->queue_sel].ready)
            queue_enable(t, t->queue_sel);
        return 0;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
    case VIRTIO_MMIO_QUEUE_USED_LOW:
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        if (!(qu = queue_for_setup(t, off)))
            return 0;
        {
            uint64_t *r = off < VIRTIO_MMIO_QUEUE_AVAIL_LOW  ? &qu->desc_gpa
                          : off < VIRTIO_MMIO_QUEUE_USED_LOW ? &qu->avail_gpa
                                                             : &qu->used_gpa;

            (off & 4 ? set_high : set_low)(r, v);
        }
        return 0;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        if (v >= t->vdev.queues) {
            driver_warn(t, "QueueNotify %u: the device has %u queues", v, t->vdev.queues);
            return 0;
        }
        t->kicks[v]++;
        if (t->status & VIRTIO_CONFIG_S_NEEDS_RESET)
            return 0;
        if (!lab5_mmio_queue_live(t, v)) {
            driver_warn(t, "QueueNotify %u with Status 0x%x and QueueReady %u: kick a ready queue after DRIVER_OK", v,
                        t->status, t->queue[v].ready);
            return 0;
        }
        return t->vdev.queue_notify(t->vdev.dev, t, v);
    case VIRTIO_MMIO_INTERRUPT_ACK:
        t->interrupt_status &= ~v;
        return 0;
    case VIRTIO_MMIO_STATUS:
        status_write(t, v);
        return 0;
    case VIRTIO_MMIO_GUEST_PAGE_SIZE:
    case VIRTIO_MMIO_QUEUE_ALIGN:
    case VIRTIO_MMIO_QUEUE_PFN:
        driver_warn(t, "legacy register 0x%03llx written: this is a version 2 (virtio 1.x) device",
                    (unsigned long long)off);
        return 0;
    default:
        driver_warn(t, "write of 0x%x to register 0x%03llx, which is read-only or reserved", v,
                    (unsigned long long)off);
        return 0;
    }
}

static uint32_t reg_read(struct lab5_mmio *t, uint64_t off)
{
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return LAB5_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION:
        return 2;
    case VIRTIO_MMIO_DEVICE_ID:
        return t->vdev.device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return LAB5_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return t->device_features_sel < 2 ? (uint32_t)(offered(t) >> (32 * t->device_features_sel)) : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return t->queue_sel < t->vdev.queues ? LAB5_QUEUE_MAX : 0;
    case VIRTIO_MMIO_QUEUE_READY:
        return t->queue_sel < t->vdev.queues && t->queue[t->queue_sel].ready;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return t->interrupt_status;
    case VIRTIO_MMIO_STATUS:
        return t->status;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
        return 0xffffffff; /* no shared memory regions: the length reads as -1 */
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return t->config_generation;
    default:
        return 0;
    }
}

static int mmio_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct lab5_mmio *t = dev->priv;
    uint32_t v;

    (void)vcpu;
    memset(data, 0, len);
    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t c = off - VIRTIO_MMIO_CONFIG;

        if (c + len <= t->vdev.config_len)
            t->vdev.config_read(t->vdev.dev, (uint32_t)c, data, len);
        return 0;
    }
    if (len != 4 || off % 4) {
        driver_warn(t, "%u-byte read at register 0x%03llx: virtio-mmio registers take aligned 32-bit accesses", len,
                    (unsigned long long)off);
        return 0;
    }
    v = reg_read(t, off);
    memcpy(data, &v, 4);
    return 0;
}

static int mmio_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct lab5_mmio *t = dev->priv;
    uint32_t v;

    (void)vcpu;
    if (off >= VIRTIO_MMIO_CONFIG) {
        driver_warn(t, "write to configuration byte 0x%llx: virtio-net's configuration is read-only",
                    (unsigned long long)(off - VIRTIO_MMIO_CONFIG));
        return 0;
    }
    if (len != 4 || off % 4) {
        driver_warn(t, "%u-byte write at register 0x%03llx: virtio-mmio registers take aligned 32-bit accesses", len,
                    (unsigned long long)off);
        return 0;
    }
    memcpy(&v, data, 4);
    return reg_write(t, off, v);
}

static void mmio_reset(struct mvm_device *dev)
{
    transport_reset(dev->priv);
}

static void mmio_destroy(struct mvm_device *dev)
{
    struct lab5_mmio *t = dev->priv;

    if (t->vdev.destroy)
        t->vdev.destroy(t->vdev.dev);
    free(t);
}

static const struct mvm_device_ops lab5_mmio_ops = {
    .name = "virtio-mmio",
    .read = mmio_read,
    .write = mmio_write,
    .reset = mmio_reset,
    .destroy = mmio_destroy,
};

int lab5_mmio_add(struct mvm_vm *vm, uint64_t base, const struct lab5_ring_ops *ring, const struct lab5_vdev *vdev,
                  struct lab5_mmio **out)
{
    struct lab5_mmio *t;
    struct mvm_device *dev;
    int rc;

    if (vdev->queues > LAB5_NET_QUEUES || vdev->config_len > MVM_VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG) {
        if (vdev->destroy)
            vdev->destroy(vdev->dev);
        return mvm_fail(EINVAL, "%s: %u queues and %u config bytes; the transport holds %u and %u", vdev->name,
                        vdev->queues, vdev->config_len, LAB5_NET_QUEUES, MVM_VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG);
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        if (vdev->destroy)
            vdev->destroy(vdev->dev);
        return mvm_fail(ENOMEM, "%s: out of memory", vdev->name);
    }
    t->vm = vm;
    t->ring = ring;
    t->vdev = *vdev;
    t->log = stderr;
    rc = vm_device_add(vm, &lab5_mmio_ops, MVM_BUS_MMIO, base, MVM_VIRTIO_MMIO_SIZE, t, &dev);
    if (rc < 0)
        return rc;
    if (out)
        *out = t;
    return 0;
}

struct lab5_mmio *lab5_mmio_find(struct mvm_vm *vm, uint64_t base)
{
    struct mvm_device *dev = vm_device_find(vm, MVM_BUS_MMIO, base);

    return dev && dev->ops == &lab5_mmio_ops ? dev->priv : NULL;
}
