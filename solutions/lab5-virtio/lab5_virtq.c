/* Lab 5 (student file): the device side of a virtio split virtqueue: set-up checks, chain walk, pop, push, notify. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "lab5-virtio/lab5.h"

/* Bytes of each area for a queue of `num` entries, the event index word included (virtio 1.2, 2.7). */
#define DESC_BYTES(num)  (sizeof(struct vring_desc) * (num))
#define AVAIL_BYTES(num) (sizeof(struct vring_avail) + sizeof(uint16_t) * (num) + sizeof(uint16_t))
#define USED_BYTES(num)  (sizeof(struct vring_used) + sizeof(struct vring_used_elem) * (num) + sizeof(uint16_t))

int lab5_virtq_setup(struct lab5_virtq *vq, struct mvm_vm *vm, unsigned index, uint16_t num, uint64_t desc_gpa,
                     uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
    void *desc, *avail, *used;

    if (num == 0 || num > LAB5_QUEUE_MAX || (num & (num - 1)))
        return mvm_fail(EPROTO, "QueueNum %u: a split queue's size is a power of two from 1 to QueueNumMax (%u)", num,
                        LAB5_QUEUE_MAX);
    if (desc_gpa % VRING_DESC_ALIGN_SIZE || avail_gpa % VRING_AVAIL_ALIGN_SIZE || used_gpa % VRING_USED_ALIGN_SIZE)
        return mvm_fail(EPROTO,
                        "QueueDesc 0x%llx, QueueDriver 0x%llx, QueueDevice 0x%llx: they must be aligned to "
                        "%d, %d and %d bytes",
                        (unsigned long long)desc_gpa, (unsigned long long)avail_gpa, (unsigned long long)used_gpa,
                        VRING_DESC_ALIGN_SIZE, VRING_AVAIL_ALIGN_SIZE, VRING_USED_ALIGN_SIZE);
    desc = vm_gpa_to_hva(vm, desc_gpa, DESC_BYTES(num));
    avail = vm_gpa_to_hva(vm, avail_gpa, AVAIL_BYTES(num));
    used = vm_gpa_to_hva(vm, used_gpa, USED_BYTES(num));
    if (!desc || !avail || !used)
        return mvm_fail(EPROTO, "%s 0x%llx: its %zu bytes for %u entries are not all in guest RAM",
                        !desc    ? "QueueDesc"
                        : !avail ? "QueueDriver (the available ring)"
                                 : "QueueDevice (the used ring)",
                        (unsigned long long)(!desc    ? desc_gpa
                                             : !avail ? avail_gpa
                                                      : used_gpa),
                        !desc    ? DESC_BYTES(num)
                        : !avail ? AVAIL_BYTES(num)
                                 : USED_BYTES(num),
                        num);
    memset(vq, 0, sizeof(*vq));
    vq->vm = vm;
    vq->index = index;
    vq->ring.num = num;
    vq->ring.desc = desc;
    vq->ring.avail = avail;
    vq->ring.used = used;
    vq->desc_gpa = desc_gpa;
    vq->avail_gpa = avail_gpa;
    vq->used_gpa = used_gpa;
    vq->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    vq->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    return 0;
}

int lab5_chain_walk(struct lab5_virtq *vq, uint16_t head, struct lab5_chain *chain)
{
    const struct vring_desc *table = vq->ring.desc;
    uint32_t table_len = vq->ring.num, seen = 0;
    const char *where = "descriptor";
    bool indirect = false; /* in an indirect table (by a flag: the table's address may equal the ring's own) */
    uint16_t i = head;

    chain->head = head;
    chain->nbufs = 0;
    chain->readable = chain->writable = 0;
    if (head >= vq->ring.num)
        return mvm_fail(EPROTO, "head %u: a descriptor index must be below the queue size %u", head, vq->ring.num);
    for (;;) {
        struct vring_desc d;
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        struct lab5_buf *b;

        /* One copy out of guest memory: the guest may rewrite the descriptor while we look at it. */
        memcpy(&d, &table[i], sizeof(d));
        addr = le64toh(d.addr);
        len = le32toh(d.len);
        flags = le16toh(d.flags);
        if (++seen > table_len)
            return mvm_fail(EPROTO,
                            "the chain at head %u is longer than its %s (%u descriptors): a loop through "
                            "%s %u?",
                            head, indirect ? "indirect table" : "queue", table_len, where, i);
        if (flags & VRING_DESC_F_INDIRECT) {
            if (!vq->indirect)
                return mvm_fail(EPROTO,
                                "%s %u has VRING_DESC_F_INDIRECT, but VIRTIO_RING_F_INDIRECT_DESC was not "
                                "negotiated",
                                where, i);
            if (indirect)
                return mvm_fail(EPROTO, "%s %u: an indirect table may not point at another one", where, i);
            if (flags & VRING_DESC_F_NEXT)
                return mvm_fail(EPROTO, "descriptor %u has both VRING_DESC_F_INDIRECT and VRING_DESC_F_NEXT", i);
            if (len == 0 || len % sizeof(struct vring_desc) || len / sizeof(struct vring_desc) > LAB5_QUEUE_MAX)
                return mvm_fail(EPROTO,
                                "descriptor %u: indirect table of len %u; expected a multiple of %zu, at most "
                                "%u entries",
                                i, len, sizeof(struct vring_desc), LAB5_QUEUE_MAX);
            table = vm_gpa_to_hva(vq->vm, addr, len);
            if (!table)
                return mvm_fail(EPROTO, "descriptor %u: indirect table at gpa 0x%llx len %u is not all in guest RAM", i,
                                (unsigned long long)addr, len);
            table_len = len / sizeof(struct vring_desc);
            seen = 0;
            i = 0;
            where = "indirect descriptor";
            indirect = true;
            continue;
        }
        if (chain->nbufs == LAB5_QUEUE_MAX)
            return mvm_fail(EPROTO, "the chain at head %u has more than %u buffers", head, LAB5_QUEUE_MAX);
        b = &chain->bufs[chain->nbufs];
        b->gpa = addr;
        b->len = len;
        b->device_writes = flags & VRING_DESC_F_WRITE;
        b->hva = NULL;
        if (len && !(b->hva = vm_gpa_to_hva(vq->vm, addr, len)))
            return mvm_fail(EPROTO, "%s %u: buffer at gpa 0x%llx len %u is not all in guest RAM", where, i,
                            (unsigned long long)addr, len);
        if (len > UINT32_MAX - chain->readable - chain->writable)
            return mvm_fail(EPROTO, "the chain at head %u: its lengths add up to more than 4 GiB at %s %u", head, where,
                            i);
        if (b->device_writes) {
            chain->writable += len;
        } else {
            /* Compare with the previous buffer, not the writable total: a zero-length writable one counts too. */
            if (chain->nbufs && chain->bufs[chain->nbufs - 1].device_writes)
                return mvm_fail(EPROTO,
                                "%s %u is device-readable after a device-writable one: in a chain the "
                                "readable buffers come first",
                                where, i);
            chain->readable += len;
        }
        chain->nbufs++;
        if (!(flags & VRING_DESC_F_NEXT))
            return 0;
        if (le16toh(d.next) >= table_len)
            return mvm_fail(EPROTO, "%s %u: next = %u, but the table has %u entries", where, i, le16toh(d.next),
                            table_len);
        i = le16toh(d.next);
    }
}

/* avail->idx, read before anything it covers (acquire: pairs with the driver's write barrier before its store). */
static uint16_t avail_idx_read(const struct lab5_virtq *vq)
{
    return le16toh(__atomic_load_n(&vq->ring.avail->idx, __ATOMIC_ACQUIRE));
}

int lab5_virtq_pop(struct lab5_virtq *vq, struct lab5_chain *chain)
{
    uint16_t avail_idx = avail_idx_read(vq), head;
    int rc;

    if (avail_idx == vq->last_avail_idx && vq->event_idx) {
        /* Empty: ask for a kick when the driver adds the next entry, then look once more (the full barrier
           orders our avail_event store before that load; the driver pairs it with its own barrier). */
        __atomic_store_n(&vring_avail_event(&vq->ring), htole16(vq->last_avail_idx), __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        avail_idx = avail_idx_read(vq);
    }
    if (avail_idx == vq->last_avail_idx)
        return 0;
    if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->ring.num)
        return mvm_fail(EPROTO,
                        "avail->idx = %u but the device has popped up to %u: %u entries pending, more than "
                        "the queue size %u",
                        avail_idx, vq->last_avail_idx, (uint16_t)(avail_idx - vq->last_avail_idx), vq->ring.num);
    head = le16toh(__atomic_load_n(&vq->ring.avail->ring[vq->last_avail_idx % vq->ring.num], __ATOMIC_RELAXED));
    if (head >= vq->ring.num)
        return mvm_fail(EPROTO, "avail->ring[%u] = %u: a head must be below the queue size %u",
                        vq->last_avail_idx % vq->ring.num, head, vq->ring.num);
    rc = lab5_chain_walk(vq, head, chain);
    if (rc < 0)
        return rc;
    vq->last_avail_idx++;
    return 1;
}

int lab5_virtq_push(struct lab5_virtq *vq, uint16_t head, uint32_t len)
{
    struct vring_used_elem *e;

    if (head >= vq->ring.num)
        return mvm_fail(EPROTO, "push of head %u: a descriptor index must be below the queue size %u", head,
                        vq->ring.num);
    e = &vq->ring.used->ring[vq->used_idx % vq->ring.num];
    e->id = htole32(head);
    e->len = htole32(len);
    vq->used_idx++;
    /* Release: the element is visible before the index that publishes it. */
    __atomic_store_n(&vq->ring.used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
    return 0;
}

bool lab5_virtq_should_notify(struct lab5_virtq *vq, uint16_t old_used)
{
    /* Full barrier: our used->idx store before our read of what the driver wants (store -> load order). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (vq->event_idx) {
        uint16_t event = le16toh(__atomic_load_n(&vring_used_event(&vq->ring), __ATOMIC_RELAXED));

        return vring_need_event(event, vq->used_idx, old_used);
    }
    return !(le16toh(__atomic_load_n(&vq->ring.avail->flags, __ATOMIC_RELAXED)) & VRING_AVAIL_F_NO_INTERRUPT);
}
