/* The ucall test port: guests report GUEST_DONE, GUEST_ASSERT failures, sync points and prints. */
#include <errno.h>
#include <string.h>

#include "core_internal.h"
#include "x86.h"

void mvm_ucall_decode(const struct mvm_ucall *uc, struct mvm_ucall_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->uc = *uc;
    v->uc.msg[sizeof(v->uc.msg) - 1] = '\0'; /* the guest need not terminate it */
    switch (v->uc.cmd) {
    case MVM_UCALL_DONE:
        v->stop = MVM_STOP_DONE;
        snprintf(v->detail, sizeof(v->detail), "the guest reported GUEST_DONE");
        break;
    case MVM_UCALL_ASSERT:
        v->stop = MVM_STOP_ASSERT;
        snprintf(v->detail, sizeof(v->detail), "GUEST_ASSERT failed at line %u: %s (got 0x%llx, expected 0x%llx)",
                 v->uc.line, v->uc.msg, (unsigned long long)v->uc.actual, (unsigned long long)v->uc.expected);
        break;
    case MVM_UCALL_SYNC:
        break;
    case MVM_UCALL_PRINT:
        v->print = v->uc.msg;
        break;
    default:
        v->stop = MVM_STOP_ASSERT;
        v->malformed = true;
        snprintf(v->detail, sizeof(v->detail), "malformed ucall: unknown command %u (the ABI has %d..%d)", v->uc.cmd,
                 MVM_UCALL_DONE, MVM_UCALL_PRINT);
        break;
    }
}

/* Ends the run as the guest's failure: it broke the ucall ABI. The VMM itself is fine. */
static int ucall_malformed(struct mvm_vcpu *vcpu, const char *why)
{
    if (vcpu->res)
        snprintf(vcpu->res->detail, sizeof(vcpu->res->detail), "malformed ucall on port 0x%x: %s", MVM_PORT_UCALL, why);
    return MVM_STOP_ASSERT;
}

/*
 * Reads the guest's struct mvm_ucall at `addr` (abi.h) with the VMM's own
 * walker (vm_read_gva): guest-physical with paging off; with paging on,
 * guest-virtual, sign-extended in long mode. Returns 0, 1 with `why` set when
 * the guest handed an address that cannot be read (its fault), or -errno when
 * the VMM failed.
 */
static int ucall_read(struct mvm_vcpu *vcpu, uint32_t addr, struct mvm_ucall *uc, char *why, size_t why_len)
{
    struct kvm_sregs sregs;
    uint64_t gva = addr;
    int rc = vcpu_sregs_get(vcpu, &sregs);

    if (rc < 0)
        return rc;
    if (sregs.cr0 & X86_CR0_PG)
        gva = (uint64_t)(int64_t)(int32_t)addr;
    rc = vm_read_gva(vcpu, gva, uc, sizeof(*uc));
    if (rc == -EFAULT || rc == -EINVAL) {
        snprintf(why, why_len, "struct mvm_ucall at 0x%llx: %s", (unsigned long long)gva, mvm_error());
        return 1;
    }
    return rc;
}

static int ucall_io(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data, uint32_t size)
{
    struct mvm_ucall_verdict v;
    struct mvm_ucall uc;
    char why[200];
    uint32_t addr;
    FILE *log = opaque;
    int rc;

    (void)port;
    if (!is_write) {
        memset(data, 0, size);
        return 0;
    }
    if (size != 4) {
        snprintf(why, sizeof(why), "OUT of %u bytes; the guest must write the 32-bit address of a struct mvm_ucall",
                 size);
        return ucall_malformed(vcpu, why);
    }
    memcpy(&addr, data, sizeof(addr));
    /* The struct's address comes from the guest: read it only through the checked translators. */
    rc = ucall_read(vcpu, addr, &uc, why, sizeof(why));
    if (rc < 0)
        return rc;
    if (rc > 0)
        return ucall_malformed(vcpu, why);
    mvm_ucall_decode(&uc, &v);
    if (vcpu->res) {
        vcpu->res->ucall = v.uc;
        if (v.detail[0])
            memcpy(vcpu->res->detail, v.detail, sizeof(vcpu->res->detail));
    }
    if (v.print && log)
        fprintf(log, "%s\n", v.print);
    return (int)v.stop;
}

int vm_testport_add(struct mvm_vm *vm, FILE *log)
{
    return vm_pio_register(vm, MVM_PORT_UCALL, 1, ucall_io, log);
}
