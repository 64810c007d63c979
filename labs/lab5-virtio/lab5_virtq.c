/* Lab 5 (student file): the device side of a virtio split virtqueue: set-up checks, chain walk, pop, push, notify. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "lab5-virtio/lab5.h"

/* Bytes of each area for a queue of `num` entries, the event index word included (virtio 1.2, 2.7). */
#define DESC_BYTES(num)  (sizeof(struct vring_desc) * (num))
#define AVAIL_BYTES(num) (sizeof(struct vring_avail) + sizeof(uint16_t) * (num) + sizeof(uint16_t))
#define USED_BYTES(num)  (sizeof(struct vring_used) + sizeof(struct vring_used_elem) * (num) + sizeof(uint16_t))

/*
 * Check and map the queue the driver set up (the transport calls this when the
 * driver writes QueueReady = 1). Everything here came from the guest.
 *
 * TODO(lab5):
 *  1. -EPROTO (mvm_fail) unless num is a power of two in 1..LAB5_QUEUE_MAX,
 *     naming the register: "QueueNum 6: ...".
 *  2. -EPROTO unless desc_gpa, avail_gpa and used_gpa are aligned to
 *     VRING_DESC_ALIGN_SIZE, VRING_AVAIL_ALIGN_SIZE and VRING_USED_ALIGN_SIZE.
 *  3. Translate each area with vm_gpa_to_hva() for its whole size
 *     (DESC_BYTES, AVAIL_BYTES, USED_BYTES: the ring plus the event word);
 *     NULL means it is not all in guest RAM: -EPROTO naming QueueDesc,
 *     QueueDriver or QueueDevice and the address.
 *  4. Zero *vq, then fill it: vm, index, ring.num and the three host
 *     pointers in ring.desc/avail/used, the gpas, and event_idx / indirect
 *     from the negotiated `features` (bits VIRTIO_RING_F_EVENT_IDX and
 *     VIRTIO_RING_F_INDIRECT_DESC).
 */
int lab5_virtq_setup(struct lab5_virtq *vq, struct mvm_vm *vm, unsigned index, uint16_t num, uint64_t desc_gpa,
                     uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
    (void)vq;
    (void)vm;
    (void)features;
    return mvm_fail(ENOSYS,
                    "lab5: lab5_virtq_setup() is not written yet: check QueueNum %u (a power of two) and map "
                    "queue %u's descriptor table 0x%llx, available ring 0x%llx and used ring 0x%llx",
                    num, index, (unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
                    (unsigned long long)used_gpa);
}

/*
 * Walk the descriptor chain that starts at `head` into *chain.
 *
 * TODO(lab5):
 *  1. chain->head = head, no buffers yet. A head >= vq->ring.num: -EPROTO.
 *  2. Loop over the table (at first vq->ring.desc, vq->ring.num entries):
 *     copy descriptor i out of guest memory ONCE (memcpy into a local) and
 *     decode it with le64toh/le32toh/le16toh: the guest may rewrite it
 *     while you look (check-then-use on shared memory is a TOCTOU bug).
 *  3. Count the descriptors you visit in this table: more than the table
 *     has entries means the chain loops: -EPROTO ("a loop through descriptor 3?").
 *  4. VRING_DESC_F_INDIRECT: only if vq->indirect; never with NEXT, never
 *     inside an indirect table; len a non-zero multiple of 16, at most
 *     LAB5_QUEUE_MAX entries; translate the table (vm_gpa_to_hva), then go
 *     on from its entry 0 with len / 16 entries (count again from 0).
 *     Remember you are inside one with a flag, not by comparing table
 *     addresses: the guest may point an indirect table at the ring's own.
 *  5. Otherwise a buffer: at most LAB5_QUEUE_MAX per chain; translate
 *     [addr, addr + len) with vm_gpa_to_hva unless len is 0 (hva NULL);
 *     the running readable + writable total must stay below 4 GiB;
 *     VRING_DESC_F_WRITE buffers add to chain->writable, the others to
 *     chain->readable, and a readable one after a writable one is -EPROTO.
 *  6. No VRING_DESC_F_NEXT: done, return 0. Else `next` must be below the
 *     table's entries (-EPROTO) and is the next i.
 * Every -EPROTO message names the descriptor index, the field and the expectation.
 */
int lab5_chain_walk(struct lab5_virtq *vq, uint16_t head, struct lab5_chain *chain)
{
    (void)vq;
    (void)chain;
    return mvm_fail(ENOSYS,
                    "lab5: lab5_chain_walk() is not written yet: follow the descriptors from head %u "
                    "(VRING_DESC_F_NEXT, _WRITE, _INDIRECT), translating each buffer",
                    head);
}

/*
 * Pop the next chain the driver made available: 1 (and *chain), 0 (none), or -EPROTO.
 *
 * TODO(lab5):
 *  1. Read avail->idx with acquire order:
 *       le16toh(__atomic_load_n(&vq->ring.avail->idx, __ATOMIC_ACQUIRE))
 *     The driver wrote the ring entry and descriptors, then a write barrier,
 *     then avail->idx; acquire keeps your later reads after this one.
 *  2. If it equals vq->last_avail_idx and vq->event_idx: store
 *     htole16(last_avail_idx) in vring_avail_event(&vq->ring) ("kick me when
 *     you add the entry at this index"), a full barrier
 *     (__atomic_thread_fence(__ATOMIC_SEQ_CST)), and read avail->idx again:
 *     the driver may have added one before it could see your request.
 *  3. Still equal: return 0.
 *  4. Indices are free-running 16-bit counters: (uint16_t)(avail_idx -
 *     last_avail_idx) entries are pending. More than ring.num: -EPROTO
 *     naming avail->idx, last_avail_idx and the queue size.
 *  5. head = avail->ring[last_avail_idx % ring.num] (le16toh); below ring.num
 *     or -EPROTO naming the ring slot; walk it (lab5_chain_walk); only then
 *     last_avail_idx++ and return 1.
 */
int lab5_virtq_pop(struct lab5_virtq *vq, struct lab5_chain *chain)
{
    (void)chain;
    return mvm_fail(ENOSYS,
                    "lab5: lab5_virtq_pop() is not written yet: queue %u, read avail->idx and pop the head at "
                    "avail->ring[%u]",
                    vq->index, vq->ring.num ? vq->last_avail_idx % vq->ring.num : 0);
}

/*
 * Give the chain at `head` back: `len` bytes were written into its writable buffers.
 *
 * TODO(lab5):
 *  1. head >= ring.num: -EPROTO.
 *  2. Fill used->ring[used_idx % ring.num]: id = htole32(head), len = htole32(len).
 *  3. used_idx++, then publish it with release order, so the element is
 *     visible before the index that covers it:
 *       __atomic_store_n(&vq->ring.used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE)
 */
int lab5_virtq_push(struct lab5_virtq *vq, uint16_t head, uint32_t len)
{
    (void)len;
    return mvm_fail(ENOSYS,
                    "lab5: lab5_virtq_push() is not written yet: queue %u, write the used element for head %u "
                    "and move used->idx to %u",
                    vq->index, head, (uint16_t)(vq->used_idx + 1));
}

/*
 * Does the driver want a notification for the used entries from old_used to vq->used_idx?
 *
 * TODO(lab5):
 *  1. A full barrier first (__atomic_thread_fence(__ATOMIC_SEQ_CST)): your
 *     used->idx store must be visible before you read the driver's wish,
 *     or you both may decide the other one will act (a lost wake-up).
 *  2. With vq->event_idx: vring_need_event(used_event, vq->used_idx,
 *     old_used), used_event = le16toh(vring_used_event(&vq->ring)): notify
 *     only if the driver's chosen index lies in [old_used, used_idx).
 *  3. Without: notify unless avail->flags has VRING_AVAIL_F_NO_INTERRUPT.
 */
bool lab5_virtq_should_notify(struct lab5_virtq *vq, uint16_t old_used)
{
    (void)vq;
    (void)old_used;
    return false;
}
