/* The ucall test port: guests report GUEST_DONE, GUEST_ASSERT failures, sync points and prints. */
#include <errno.h>
#include <string.h>

#include "core_internal.h"
#include "lab_parts.h"

/*
 * Reads the guest's struct mvm_ucall at `addr` (abi.h): guest-physical with
 * paging off; with paging on, guest-virtual, walked page by page with lab 3's
 * lab3_gva_to_gpa() (sign-extended in long mode).
 */
static int ucall_read(struct mvm_vcpu *vcpu, uint32_t addr, struct mvm_ucall *uc)
{
    struct kvm_sregs sregs;
    uint64_t gva, gpa;
    size_t done = 0, chunk;
    int rc = vcpu_sregs_get(vcpu, &sregs);

    if (rc < 0)
        return rc;
    if (!(sregs.cr0 & X86_CR0_PG)) {
        if (vm_read(vcpu->vm, addr, uc, sizeof(*uc)) < 0)
            return mvm_fail(EFAULT, "ucall port 0x%x: struct mvm_ucall at gpa 0x%x is not in guest RAM",
                            MVM_PORT_UCALL, addr);
        return 0;
    }
    if (!(sregs.efer & X86_EFER_LMA))
        return mvm_fail(EINVAL, "ucall port 0x%x: the guest has paging on outside long mode; the VMM walks "
                                "4-level (long-mode) page tables only", MVM_PORT_UCALL);
    gva = (uint64_t)(int64_t)(int32_t)addr;
    while (done < sizeof(*uc)) {
        rc = lab3_gva_to_gpa(vcpu->vm, sregs.cr3, gva + done, &gpa);
        if (rc < 0) {
            char why[200];

            snprintf(why, sizeof(why), "%s", mvm_error());
            return mvm_fail(-rc, "ucall port 0x%x: struct mvm_ucall at gva 0x%llx: %s", MVM_PORT_UCALL,
                            (unsigned long long)gva, why);
        }
        chunk = X86_PAGE_SIZE - ((gva + done) & (X86_PAGE_SIZE - 1));
        if (chunk > sizeof(*uc) - done)
            chunk = sizeof(*uc) - done;
        if (vm_read(vcpu->vm, gpa, (char *)uc + done, chunk) < 0)
            return mvm_fail(EFAULT, "ucall port 0x%x: struct mvm_ucall at gva 0x%llx maps to gpa 0x%llx, "
                                    "which is not in guest RAM", MVM_PORT_UCALL, (unsigned long long)gva,
                            (unsigned long long)gpa);
        done += chunk;
    }
    return 0;
}

static int ucall_io(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data,
                    uint32_t size)
{
    struct mvm_ucall uc;
    uint32_t addr;
    FILE *log = opaque;
    int rc;

    (void)port;
    if (!is_write) {
        memset(data, 0, size);
        return 0;
    }
    if (size != 4)
        return mvm_fail(EINVAL, "ucall port 0x%x: OUT of %u bytes; the guest must write the 32-bit address "
                                "of a struct mvm_ucall",
                        MVM_PORT_UCALL, size);
    memcpy(&addr, data, sizeof(addr));
    /* The struct's address comes from the guest: read it only through the checked translators. */
    rc = ucall_read(vcpu, addr, &uc);
    if (rc < 0)
        return rc;
    uc.msg[sizeof(uc.msg) - 1] = '\0';
    if (vcpu->res)
        vcpu->res->ucall = uc;
    switch (uc.cmd) {
    case MVM_UCALL_DONE:
        if (vcpu->res)
            snprintf(vcpu->res->detail, sizeof(vcpu->res->detail), "the guest reported GUEST_DONE");
        return MVM_STOP_DONE;
    case MVM_UCALL_ASSERT:
        if (vcpu->res)
            snprintf(vcpu->res->detail, sizeof(vcpu->res->detail),
                     "GUEST_ASSERT failed at line %u: %s (got 0x%llx, expected 0x%llx)", uc.line, uc.msg,
                     (unsigned long long)uc.actual, (unsigned long long)uc.expected);
        return MVM_STOP_ASSERT;
    case MVM_UCALL_SYNC:
        return 0;
    case MVM_UCALL_PRINT:
        if (log)
            fprintf(log, "%s\n", uc.msg);
        return 0;
    default:
        return mvm_fail(EINVAL, "ucall port 0x%x: unknown command %u in struct mvm_ucall at 0x%x",
                        MVM_PORT_UCALL, uc.cmd, addr);
    }
}

int vm_testport_add(struct mvm_vm *vm, FILE *log)
{
    return vm_pio_register(vm, MVM_PORT_UCALL, 1, ucall_io, log);
}

int vm_devices_add_standard(struct mvm_vm *vm, FILE *console)
{
    int rc = vm_console_add(vm, console);

    return rc ? rc : vm_testport_add(vm, console);
}
