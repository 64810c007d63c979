/* libFuzzer target: lab 5's split-ring parser and chain walker, and the virtio-mmio transport, on whatever a guest
 * leaves in RAM and writes to the registers. */
#include <errno.h>
#include <string.h>

#include "device.h"
#include "fuzz_backend.h"
#include "fuzz_util.h"
#include "lab5-virtio/lab5.h"

/*
 * Input, byte 0 picks the path:
 *   even  the ring: bytes 1-2 QueueNum (any 16-bit value), 3 the ring features (bit 0 EVENT_IDX,
 *         bit 1 INDIRECT_DESC), 4-9 the three areas' gpas (16-bit each, times 2: any alignment),
 *         10-11 the device's starting indices; then guest RAM from gpa 0. The device pops,
 *         walks, pushes and decides on notifications until the ring is empty or broken.
 *   odd   the transport: RAM as above from byte 64, and bytes 1..63 a script of register
 *         writes (offset byte * 4, 32-bit value from the next 4 bytes: QueueNotify kicks the
 *         virtio-net device with whatever rings the script set up).
 * What must hold: every buffer of a walked chain lies inside guest RAM and inside its slot
 * (vm_gpa_to_hva agrees), a chain has at most LAB5_QUEUE_MAX buffers and readable buffers come
 * first, byte totals add up; a broken ring is -EPROTO with a message, never another error; the
 * transport never makes the VMM fail (guest mistakes are answered, not errors).
 */
#define RAM_SIZE (64u << 10)
#define RING_HDR 12
#define MMIO_HDR 64

static const struct lab5_ring_ops ring_ops = {
    .setup = lab5_virtq_setup,
    .pop = lab5_virtq_pop,
    .push = lab5_virtq_push,
    .should_notify = lab5_virtq_should_notify,
};

static struct mvm_vm *vm;
static struct mvm_vcpu *vcpu;
static uint8_t *ram;

static void vm_once(void)
{
    if (vm)
        return;
    FUZZ_CHECK(vm_create(&fuzz_backend_null, &vm) == 0 && vm_mem_add(vm, 0, RAM_SIZE, 0) == 0 &&
                   vcpu_create(vm, 0, &vcpu) == 0 && lab5_net_add(vm, MVM_VIRTIO_MMIO_BASE, &ring_ops, NULL) == 0,
               "VM set-up: %s", mvm_error());
    FUZZ_CHECK(lab5_net_configure(lab5_net_find(vm), &(struct lab5_net_config){.no_loopback = false}) == 0,
               "device set-up: %s", mvm_error());
    ram = vm_gpa_to_hva(vm, 0, RAM_SIZE);
}

static void ram_fill(const uint8_t *data, size_t size)
{
    if (size > RAM_SIZE)
        size = RAM_SIZE;
    memcpy(ram, data, size);
    memset(ram + size, 0, RAM_SIZE - size);
}

static void chain_check(const struct lab5_virtq *vq, const struct lab5_chain *c)
{
    uint64_t readable = 0, writable = 0;
    bool seen_writable = false;

    FUZZ_CHECK(c->head < vq->ring.num, "head %u in a queue of %u", c->head, vq->ring.num);
    FUZZ_CHECK(c->nbufs >= 1 && c->nbufs <= LAB5_QUEUE_MAX, "%u buffers", c->nbufs);
    for (unsigned i = 0; i < c->nbufs; i++) {
        const struct lab5_buf *b = &c->bufs[i];

        if (b->len) {
            FUZZ_CHECK(b->hva == vm_gpa_to_hva(vm, b->gpa, b->len), "buffer %u: hva differs from the translator", i);
            FUZZ_CHECK(b->hva >= ram && b->hva + b->len <= ram + RAM_SIZE, "buffer %u (gpa 0x%llx len %u) outside RAM",
                       i, (unsigned long long)b->gpa, b->len);
        }
        FUZZ_CHECK(!(seen_writable && !b->device_writes), "buffer %u: readable after writable", i);
        seen_writable |= b->device_writes;
        *(b->device_writes ? &writable : &readable) += b->len;
    }
    FUZZ_CHECK(readable == c->readable && writable == c->writable, "totals %u/%u, buffers say %llu/%llu", c->readable,
               c->writable, (unsigned long long)readable, (unsigned long long)writable);
}

static void ring_check(const uint8_t *data, size_t size)
{
    static struct lab5_chain chain;
    struct lab5_virtq vq;
    uint8_t hdr[RING_HDR] = {0};
    uint16_t num, g[3], idx;
    uint64_t features;
    int rc;

    memcpy(hdr, data, size < RING_HDR ? size : RING_HDR);
    memcpy(&num, hdr + 1, 2);
    features =
        (hdr[3] & 1 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) | (hdr[3] & 2 ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);
    memcpy(g, hdr + 4, 6);
    memcpy(&idx, hdr + 10, 2);
    ram_fill(data + (size < RING_HDR ? size : RING_HDR), size > RING_HDR ? size - RING_HDR : 0);
    rc = lab5_virtq_setup(&vq, vm, 1, num, g[0] * 2ull, g[1] * 2ull, g[2] * 2ull, features);
    FUZZ_CHECK(rc == 0 || rc == -EPROTO, "setup: %d (%s)", rc, mvm_error());
    if (rc)
        return;
    vq.last_avail_idx = vq.used_idx = idx;
    for (unsigned n = 0; n <= 2u * vq.ring.num + 1; n++) {
        uint16_t old = vq.used_idx;

        rc = lab5_virtq_pop(&vq, &chain);
        FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EPROTO, "pop: %d (%s)", rc, mvm_error());
        if (rc != 1)
            break;
        chain_check(&vq, &chain);
        FUZZ_CHECK(lab5_virtq_push(&vq, chain.head, chain.writable) == 0, "push of a popped head: %s", mvm_error());
        (void)lab5_virtq_should_notify(&vq, old);
    }
}

static void transport_check(const uint8_t *data, size_t size)
{
    size_t script = size < MMIO_HDR ? size : MMIO_HDR;

    ram_fill(data + script, size - script);
    vm_devices_reset(vm);
    for (size_t i = 1; i + 5 <= script; i += 5) {
        uint8_t v[4];
        uint64_t off = (uint64_t)data[i] * 4;
        int rc;

        memcpy(v, data + i + 1, 4);
        rc = vm_mmio_dispatch(vcpu, MVM_VIRTIO_MMIO_BASE + off, !(data[i + 1] == 0xff), v, 4);
        FUZZ_CHECK(rc == 0, "register 0x%03llx: the transport failed the VMM: %d (%s)", (unsigned long long)off, rc,
                   mvm_error());
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    vm_once();
    if (data[0] & 1)
        transport_check(data, size);
    else
        ring_check(data, size);
    return 0;
}
