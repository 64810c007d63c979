/* libFuzzer target: the ucall decoder and the test port's handling of whatever a guest writes to it. */
#include <errno.h>
#include <string.h>

#include "fuzz_backend.h"
#include "fuzz_util.h"
#include "lab_parts.h"

/*
 * Input, byte 0 picks the path:
 *   even  the rest is a struct mvm_ucall as the guest left it (zero-padded): mvm_ucall_decode
 *   odd   a whole OUT to the test port: bytes 1-4 the OUT's data, byte 5 its size (1, 2 or 4) and
 *         direction, bytes 6-9 CR0, 10-11 EFER, 12-15 CR3 (what the walk starts from), then guest RAM
 *         from gpa 0 (page tables, the struct); RAM is RAM_SIZE bytes, zero past the input
 * What must hold: a guest never makes the VMM fail (the port returns 0, DONE or ASSERT), a verdict
 * always has a terminated message, and the decoder flags exactly the commands outside the ABI.
 */
#define RAM_SIZE (256u << 10)
#define PORT_HDR 16

static void decode_check(const uint8_t *data, size_t size)
{
    struct mvm_ucall uc = {0};
    struct mvm_ucall_verdict v;
    bool known;

    memcpy(&uc, data, size < sizeof(uc) ? size : sizeof(uc));
    mvm_ucall_decode(&uc, &v);
    known = uc.cmd >= MVM_UCALL_DONE && uc.cmd <= MVM_UCALL_PRINT;
    FUZZ_CHECK(v.malformed == !known, "cmd %u: malformed=%d", uc.cmd, v.malformed);
    FUZZ_CHECK(v.stop == MVM_STOP_NONE || v.stop == MVM_STOP_DONE || v.stop == MVM_STOP_ASSERT, "cmd %u: stop %d",
               uc.cmd, (int)v.stop);
    FUZZ_CHECK((v.stop == MVM_STOP_DONE) == (uc.cmd == MVM_UCALL_DONE), "cmd %u: stop %d", uc.cmd, (int)v.stop);
    FUZZ_CHECK(memchr(v.uc.msg, '\0', sizeof(v.uc.msg)) != NULL, "message not terminated");
    FUZZ_CHECK(memchr(v.detail, '\0', sizeof(v.detail)) != NULL, "detail not terminated");
    FUZZ_CHECK((v.detail[0] != '\0') == (v.stop != MVM_STOP_NONE), "cmd %u: detail '%s' with stop %d", uc.cmd, v.detail,
               (int)v.stop);
    FUZZ_CHECK((v.print != NULL) == (uc.cmd == MVM_UCALL_PRINT) && (!v.print || v.print == v.uc.msg), "cmd %u: print",
               uc.cmd);
    FUZZ_CHECK(v.uc.cmd == uc.cmd && v.uc.line == uc.line && v.uc.actual == uc.actual && v.uc.expected == uc.expected &&
                   !memcmp(v.uc.msg, uc.msg, sizeof(uc.msg) - 1),
               "the verdict's ucall differs from the guest's");
}

static void port_check(const uint8_t *data, size_t size)
{
    static struct mvm_vm *vm;
    static struct mvm_vcpu *vcpu;
    static FILE *log;
    static const uint32_t sizes[] = {1, 2, 4, 4}; /* the port I/O sizes vm_pio_dispatch hands on */
    uint8_t hdr[PORT_HDR] = {0}, io[4];
    uint32_t cr0, cr3, io_size;
    uint16_t efer;
    uint8_t *ram;
    int rc;

    if (!vm) {
        FUZZ_CHECK(vm_create(&fuzz_backend_null, &vm) == 0 && vm_mem_add(vm, 0, RAM_SIZE, 0) == 0 &&
                       vm_testport_add(vm, log = fopen("/dev/null", "w")) == 0 && vcpu_create(vm, 0, &vcpu) == 0,
                   "VM set-up: %s", mvm_error());
    }
    memcpy(hdr, data, size < PORT_HDR ? size : PORT_HDR);
    memcpy(io, hdr + 1, 4);
    io_size = sizes[hdr[5] & 3];
    memcpy(&cr0, hdr + 6, 4);
    memcpy(&efer, hdr + 10, 2);
    memcpy(&cr3, hdr + 12, 4);
    fuzz_backend_sregs.cr0 = cr0;
    fuzz_backend_sregs.efer = efer;
    fuzz_backend_sregs.cr3 = cr3;
    ram = vm_gpa_to_hva(vm, 0, RAM_SIZE);
    size = size > PORT_HDR ? size - PORT_HDR : 0;
    if (size > RAM_SIZE)
        size = RAM_SIZE;
    memcpy(ram, data + PORT_HDR, size);
    memset(ram + size, 0, RAM_SIZE - size);
    rc = vm_pio_dispatch(vcpu, MVM_PORT_UCALL, !(hdr[5] & 4), io, io_size);
    FUZZ_CHECK(rc == 0 || rc == MVM_STOP_DONE || rc == MVM_STOP_ASSERT,
               "an OUT of %u bytes to the ucall port (cr0 0x%x efer 0x%x cr3 0x%x) made the VMM fail: %d (%s)", io_size,
               cr0, efer, cr3, rc, rc < 0 ? mvm_error() : "");
    if (hdr[5] & 4)
        FUZZ_CHECK(rc == 0 && !memcmp(io, "\0\0\0\0", io_size), "IN from the ucall port: %d", rc);
    if (!(hdr[5] & 4) && io_size != 4)
        FUZZ_CHECK(rc == MVM_STOP_ASSERT, "an OUT of %u bytes is not a ucall, but gave %d", io_size, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        port_check(data, size);
    else
        decode_check(data + 1, size - 1);
    return 0;
}
