/* Lab 5 as a plug-in: a virtio-net device on virtio-mmio at MVM_VIRTIO_MMIO_BASE of every VM, serviced by the lab's
 * ring. Not a student file. */
#include "lab_plugin.h"
#include "lab5-virtio/lab5.h"

#ifndef MVM_LAB_FALLBACK
/* The ring functions of this build of the lab (the student's, or the reference's once renamed ref_*). */
static const struct lab5_ring_ops ring_ops = {
    .setup = lab5_virtq_setup,
    .pop = lab5_virtq_pop,
    .push = lab5_virtq_push,
    .should_notify = lab5_virtq_should_notify,
};

static int lab5_vm_init(struct mvm_vm *vm)
{
    return lab5_net_add(vm, MVM_VIRTIO_MMIO_BASE, &ring_ops, NULL);
}
#endif

MVM_LAB_DEFINE(5, "lab5-virtio", .vm_init = lab5_vm_init)

MVM_LAB_FORWARD(int, lab5_virtq_setup,
                (struct lab5_virtq * vq, struct mvm_vm *vm, unsigned index, uint16_t num, uint64_t desc_gpa,
                 uint64_t avail_gpa, uint64_t used_gpa, uint64_t features),
                (vq, vm, index, num, desc_gpa, avail_gpa, used_gpa, features))
MVM_LAB_FORWARD(int, lab5_chain_walk, (struct lab5_virtq * vq, uint16_t head, struct lab5_chain *chain),
                (vq, head, chain))
MVM_LAB_FORWARD(int, lab5_virtq_pop, (struct lab5_virtq * vq, struct lab5_chain *chain), (vq, chain))
MVM_LAB_FORWARD(int, lab5_virtq_push, (struct lab5_virtq * vq, uint16_t head, uint32_t len), (vq, head, len))
MVM_LAB_FORWARD(bool, lab5_virtq_should_notify, (struct lab5_virtq * vq, uint16_t old_used), (vq, old_used))
MVM_LAB_FORWARD(int, lab5_net_add,
                (struct mvm_vm * vm, uint64_t base, const struct lab5_ring_ops *ring, struct lab5_net **out),
                (vm, base, ring, out))
MVM_LAB_FORWARD(struct lab5_net *, lab5_net_find, (struct mvm_vm * vm), (vm))
MVM_LAB_FORWARD(int, lab5_net_configure, (struct lab5_net * net, const struct lab5_net_config *cfg), (net, cfg))
MVM_LAB_FORWARD(void, lab5_net_stats_get, (const struct lab5_net *net, struct lab5_net_stats *out), (net, out))
