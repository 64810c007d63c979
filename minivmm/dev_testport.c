/* The ucall test port: guests report GUEST_DONE, GUEST_ASSERT failures, sync points and prints. */
#include <errno.h>
#include <string.h>

#include "core_internal.h"

static int ucall_io(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data,
                    uint32_t size)
{
    struct mvm_ucall uc;
    uint32_t gpa;
    FILE *log = opaque;

    (void)port;
    if (!is_write) {
        memset(data, 0, size);
        return 0;
    }
    if (size != 4)
        return mvm_fail(EINVAL, "ucall port 0x%x: OUT of %u bytes; the guest must write the 32-bit address "
                                "of a struct mvm_ucall",
                        MVM_PORT_UCALL, size);
    memcpy(&gpa, data, sizeof(gpa));
    /* The struct's address comes from the guest: read it only through the checked translator. */
    if (vm_read(vcpu->vm, gpa, &uc, sizeof(uc)) < 0)
        return mvm_fail(EFAULT, "ucall port 0x%x: struct mvm_ucall at gpa 0x%x is not in guest RAM",
                        MVM_PORT_UCALL, gpa);
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
        return mvm_fail(EINVAL, "ucall port 0x%x: unknown command %u in struct mvm_ucall at gpa 0x%x",
                        MVM_PORT_UCALL, uc.cmd, gpa);
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
