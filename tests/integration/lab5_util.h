/* Lab 5 tests' shared helpers: hand-built rings in a small VM, and guest runs with parameters and the device's
 * counters. */
#ifndef TESTS_LAB5_UTIL_H
#define TESTS_LAB5_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lab5-virtio/lab5.h"

/* Where the hand-built rings live in a 2 MiB VM. */
#define T_DESC  0x10000
#define T_AVAIL 0x11000
#define T_USED  0x12000
#define T_BUF   0x20000
#define T_NUM   8

static inline struct mvm_vm *lab5_vm(void)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;

    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    return vm;
}

/* A queue of T_NUM entries at T_DESC/T_AVAIL/T_USED through the student's set-up, which must succeed. */
static inline void lab5_vq(struct mvm_vm *vm, struct lab5_virtq *vq, uint64_t features)
{
    int rc = lab5_virtq_setup(vq, vm, 1, T_NUM, T_DESC, T_AVAIL, T_USED, features);

    if (rc != 0)
        fail_msg("lab5_virtq_setup(QueueNum %d, desc 0x%x, avail 0x%x, used 0x%x) failed: %s", T_NUM, T_DESC, T_AVAIL,
                 T_USED, mvm_error());
}

static inline void desc_put(struct mvm_vm *vm, uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                            uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};

    assert_int_equal(vm_write(vm, table + i * sizeof(d), &d, sizeof(d)), 0);
}

/* Makes `head` available in slot `slot` and sets avail->idx = idx. */
static inline void avail_put(struct mvm_vm *vm, uint16_t slot, uint16_t head, uint16_t idx)
{
    assert_int_equal(vm_write(vm, T_AVAIL + 4 + 2 * (slot % T_NUM), &head, 2), 0);
    assert_int_equal(vm_write(vm, T_AVAIL + 2, &idx, 2), 0);
}

static inline uint16_t used_idx_get(struct mvm_vm *vm)
{
    uint16_t v = 0;

    assert_int_equal(vm_read(vm, T_USED + 2, &v, 2), 0);
    return v;
}

/* A lab 5 guest run: parameters for the guest (packets 0: its defaults), the device's counters and log after it. */
struct lab5_run {
    struct mvm_virtio_params params;
    struct lab5_net_stats stats;
    char *log;
    size_t log_len;
    FILE *log_f;
    int hook_rc;
};

static inline int lab5_hook(struct mvm_vm *vm, void *opaque)
{
    struct lab5_run *r = opaque;
    struct lab5_net *net = lab5_net_find(vm);
    struct lab5_net_config cfg = {.log = r->log_f, .stats_out = &r->stats};

    if (!net)
        return mvm_fail(ENODEV, "no virtio-net device at 0x%x: lab 5's vm_init did not add it", MVM_VIRTIO_MMIO_BASE);
    if (r->params.packets) {
        r->params.magic = MVM_VIRTIO_PARAMS_MAGIC;
        if (vm_write(vm, MVM_VIRTIO_PARAMS_GPA, &r->params, sizeof(r->params)) < 0)
            return -EFAULT;
    }
    return lab5_net_configure(net, &cfg);
}

/* Runs lab 5 guest `name` in long mode; r->params set by the caller. The caller frees with lab5_run_free. */
static inline void lab5_run_guest(const char *name, struct lab5_run *r, struct guest_run *run)
{
    r->log = NULL;
    r->log_len = 0;
    r->log_f = open_memstream(&r->log, &r->log_len);
    assert_non_null(r->log_f);
    memset(&r->stats, 0, sizeof(r->stats));
    harness_run_guest_mode(name, HARNESS_MODE_LONG, lab5_hook, r, run);
    fclose(r->log_f);
    r->log_f = NULL;
}

static inline void lab5_run_free(struct lab5_run *r, struct guest_run *run)
{
    free(r->log);
    r->log = NULL;
    harness_free(run);
}

/* Fails unless the guest reached GUEST_DONE, with the device's log in the message. */
static inline void lab5_expect_done(const struct lab5_run *r, const struct guest_run *run, const char *name)
{
    if (run->error[0] || run->res.stop != MVM_STOP_DONE)
        fail_msg("%s: expected GUEST_DONE, but %s\nconsole:\n%s\ndevice log:\n%s", name, harness_explain(run),
                 run->console ? run->console : "", r->log ? r->log : "");
}

#endif
