/* The per-VM hypercall table: a device on the doorbell port that owns the entries and hands each OUT to the decoder. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "device.h"
#include "hypercall.h"
#include "x86.h"

struct doorbell {
    struct mvm_hypercall table[MVM_MAX_HYPERCALLS];
    int n;
    mvm_hypercall_dispatch_fn dispatch;
};

static int doorbell_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data,
                          uint32_t len)
{
    struct doorbell *db = dev->priv;
    uint32_t value = 0;

    (void)off;
    memcpy(&value, data, len < sizeof(value) ? len : sizeof(value));
    if (!db->dispatch) {
        if (vcpu->res)
            snprintf(vcpu->res->detail, sizeof(vcpu->res->detail),
                     "hypercall doorbell (port 0x%x): no lab set a decoder (vm_hypercall_dispatch_set)",
                     MVM_PORT_HYPERCALL);
        return MVM_STOP_UNHANDLED;
    }
    return db->dispatch(vcpu, len, value);
}

/* Nothing to read at a doorbell: all ones, as an unclaimed port. */
static int doorbell_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)dev;
    (void)vcpu;
    (void)off;
    memset(data, 0xff, len);
    return 0;
}

static const struct mvm_device_ops doorbell_ops = {
    .name = "hypercall doorbell",
    .read = doorbell_read,
    .write = doorbell_write,
};

/* The VM's doorbell into *out (NULL when absent and !create). 0, or -errno with a message (the port is taken). */
static int doorbell_get(struct mvm_vm *vm, bool create, struct doorbell **out)
{
    struct mvm_device *dev = vm_device_find(vm, MVM_BUS_PIO, MVM_PORT_HYPERCALL);
    struct doorbell *db;
    int rc;

    *out = NULL;
    if (dev && dev->ops == &doorbell_ops) {
        *out = dev->priv;
        return 0;
    }
    if (dev)
        return mvm_fail(EEXIST, "hypercall doorbell: port 0x%x is taken by device %s", MVM_PORT_HYPERCALL,
                        dev->ops->name);
    if (!create)
        return 0;
    db = calloc(1, sizeof(*db));
    if (!db)
        return mvm_fail(ENOMEM, "hypercall doorbell: out of memory");
    rc = vm_device_add(vm, &doorbell_ops, MVM_BUS_PIO, MVM_PORT_HYPERCALL, 1, db, NULL);
    if (rc == 0)
        *out = db;
    return rc;
}

int vm_hypercall_register(struct mvm_vm *vm, uint64_t nr, const char *name, unsigned nargs, mvm_hypercall_fn fn,
                          void *opaque)
{
    struct doorbell *db;
    int rc;

    if (nr == 0 || nargs > MVM_HC_ARGS || !fn || !name)
        return mvm_fail(EINVAL, "hypercall %llu (%s): needs a number > 0, a name, a function and at most %d arguments",
                        (unsigned long long)nr, name ? name : "no name", MVM_HC_ARGS);
    rc = doorbell_get(vm, true, &db);
    if (rc < 0)
        return rc;
    for (int i = 0; i < db->n; i++)
        if (db->table[i].nr == nr)
            return mvm_fail(EEXIST, "hypercall %llu (%s): the number is taken by %s", (unsigned long long)nr, name,
                            db->table[i].name);
    if (db->n == MVM_MAX_HYPERCALLS)
        return mvm_fail(ENOSPC, "hypercall %llu (%s): the table is full (%d entries)", (unsigned long long)nr, name,
                        MVM_MAX_HYPERCALLS);
    db->table[db->n++] = (struct mvm_hypercall){.nr = nr, .name = name, .nargs = nargs, .fn = fn, .opaque = opaque};
    return 0;
}

const struct mvm_hypercall *vm_hypercall_find(struct mvm_vm *vm, uint64_t nr)
{
    struct doorbell *db;

    if (doorbell_get(vm, false, &db) < 0)
        return NULL;
    for (int i = 0; db && i < db->n; i++)
        if (db->table[i].nr == nr)
            return &db->table[i];
    return NULL;
}

int vm_hypercall_dispatch_set(struct mvm_vm *vm, mvm_hypercall_dispatch_fn dispatch)
{
    struct doorbell *db;
    int rc = doorbell_get(vm, true, &db);

    if (rc < 0)
        return rc;
    db->dispatch = dispatch;
    return 0;
}

/* One pass over [gva, gva + len) page by page: checks every piece is RAM, and copies src in when `copy`. */
static int gva_range_write(struct mvm_vcpu *vcpu, const struct kvm_sregs *sregs, uint64_t gva, const void *src,
                           size_t len, bool copy)
{
    size_t done = 0;

    while (done < len) {
        uint64_t gpa, chunk = X86_PAGE_SIZE - ((gva + done) & (X86_PAGE_SIZE - 1));
        void *hva;
        int rc;

        if (chunk > len - done)
            chunk = len - done;
        if (sregs->cr0 & X86_CR0_PG) {
            rc = vm_gva_to_gpa(vcpu->vm, sregs->cr3, gva + done, &gpa);
            if (rc < 0)
                return rc;
        } else {
            gpa = gva + done;
        }
        hva = vm_gpa_to_hva(vcpu->vm, gpa, chunk);
        if (!hva)
            return mvm_fail(EFAULT, "gva 0x%llx (gpa 0x%llx): %llu bytes there are not guest RAM",
                            (unsigned long long)(gva + done), (unsigned long long)gpa, (unsigned long long)chunk);
        if (copy)
            memcpy(hva, (const char *)src + done, chunk);
        done += chunk;
    }
    return 0;
}

int vm_write_gva(struct mvm_vcpu *vcpu, uint64_t gva, const void *src, size_t len)
{
    struct kvm_sregs sregs;
    int rc = vcpu_sregs_get(vcpu, &sregs);

    if (rc < 0)
        return rc;
    if ((sregs.cr0 & X86_CR0_PG) && !(sregs.efer & X86_EFER_LMA))
        return mvm_fail(EINVAL,
                        "gva 0x%llx: the guest has paging on outside long mode; the VMM walks 4-level "
                        "(long-mode) page tables only",
                        (unsigned long long)gva);
    if (gva + len < gva)
        return mvm_fail(EFAULT, "gva 0x%llx + %zu wraps past the end of the address space", (unsigned long long)gva,
                        len);
    /* Check it all, then write it all: the page tables cannot change in between, the vCPU is stopped. */
    rc = gva_range_write(vcpu, &sregs, gva, src, len, false);
    if (rc == 0)
        rc = gva_range_write(vcpu, &sregs, gva, src, len, true);
    return rc;
}
