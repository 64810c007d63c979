/*
 * Lab 4's measurement: bytes out of a guest through (a) the emulated 16550A,
 * polled (an IN of LSR and an OUT to THR per byte: 2 exits per byte), (b) the
 * console hypercall (one doorbell exit per message, whatever its length), (c)
 * a shared buffer registered once plus one kick OUT per message (the length
 * in EAX: no registers read, no page walk); for comparison KVM's own
 * VMCALL/VMMCALL, answered in the kernel (0 exits; the bytes go nowhere: the
 * floor of a guest -> hypervisor round trip), and the doorbell's round trip
 * alone (MVM_HC_NOP). One iteration is one message of N bytes.
 * Timing: Google Benchmark's time is the host's clock over a run of n
 * messages / n (one GUEST_DONE exit included, and (c)'s one registration);
 * exits are counted exactly.
 */
#include <string.h>

#include "bench.h"
#include "bench_env.h"
#include "bench_vm.h"
#include "lab.h"
#include "lab4/bytes.h"
#include "x86.h"

#define LAB4_KVM_ENOSYS 1000

/* Exits each message makes, by method and size. */
static uint64_t exits_per_message(int via, uint64_t size)
{
    return via == LAB4_VIA_UART ? 2 * size : via == LAB4_VIA_VMCALL ? 0 : 1;
}

/* Exits a run makes besides its messages: GUEST_DONE, and the shared buffer's registration. */
static uint64_t exits_fixed(int via)
{
    return via == LAB4_VIA_SHARED ? 2 : 1;
}

static int bytes_vm_create(const struct mvm_backend *be, int via, uint64_t size, uint64_t n, struct mvm_vm **vm_out,
                           struct mvm_vcpu **vcpu_out)
{
    struct lab4_bytes_params p = {.via = (uint32_t)via, .size = (uint32_t)size, .count = n};

    return bench_lab_vm_create(be, "lab4/bytes", LAB4_BYTES_PARAMS_GPA, &p, sizeof(p), NULL, NULL, vm_out, vcpu_out);
}

/* "IO 3, HLT 1": the exits of a run by reason, for a failure message. */
static const char *by_reason(const struct mvm_run_result *res)
{
    static char buf[200];
    size_t used = 0;

    buf[0] = '\0';
    for (int r = 0; r < MVM_EXIT_REASONS && used < sizeof(buf); r++)
        if (res->by_reason[r])
            used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s %llu", used ? ", " : "",
                                     mvm_exit_name((uint32_t)r), (unsigned long long)res->by_reason[r]);
    return buf;
}

static void bytes_measure(struct bench_state *st, const struct mvm_backend *be, int via, int64_t size)
{
    static const char *const names[] = {
        "", "UART", "console hypercall", "VMCALL/VMMCALL", "nop hypercall", "shared buffer + kick"};
    const struct mvm_run_opts opts = {.max_ms = 120000};
    uint64_t n = bench_iterations(st), want = n * exits_per_message(via, (uint64_t)size) + exits_fixed(via);
    int64_t want_last = via == LAB4_VIA_HYPERCALL ? size : via == LAB4_VIA_VMCALL ? -LAB4_KVM_ENOSYS : 0;
    struct lab4_bytes_params p;
    struct mvm_run_result res;
    struct mvm_vcpu *vcpu;
    struct mvm_vm *vm;
    int rc = bytes_vm_create(be, via, (uint64_t)size, n, &vm, &vcpu);

    if (rc < 0) {
        bench_fail(st, "%s", mvm_error());
        return;
    }
    memset(&res, 0, sizeof(res));
    while (rc == 0 && bench_keep_running_batch(st, n))
        rc = vcpu_run(vcpu, &opts, &res);
    if (rc == 0)
        rc = vm_read(vm, LAB4_BYTES_PARAMS_GPA, &p, sizeof(p));
    if (rc < 0)
        bench_fail(st, "%s", mvm_error());
    else if (res.stop != MVM_STOP_DONE || res.exits != want)
        bench_fail(st,
                   "lab4/bytes, %llu messages of %lld bytes by %s: expected %llu exits (%llu per message, plus "
                   "%llu: GUEST_DONE and any registration) ending in GUEST_DONE; got %llu (%s), '%s': %s",
                   (unsigned long long)n, (long long)size, names[via], (unsigned long long)want,
                   (unsigned long long)exits_per_message(via, (uint64_t)size), (unsigned long long)exits_fixed(via),
                   (unsigned long long)res.exits, by_reason(&res), mvm_stop_name(res.stop), res.detail);
    else if (n && p.last != want_last)
        bench_fail(st, "lab4/bytes by %s: the last call returned %lld in RAX, expected %lld", names[via],
                   (long long)p.last, (long long)want_last);
    else {
        bench_set_counter(st, "exits_per_iter", (double)(res.exits - exits_fixed(via)) / n);
        bench_set_counter(st, "exits_per_byte", (double)(res.exits - exits_fixed(via)) / n / size);
        bench_set_counter(st, "bytes_per_iter", (double)size);
        bench_set_label(st, bench_backend_label(be));
    }
    vm_destroy(vm);
}

static void bench_lab4_uart(struct bench_state *st, const struct mvm_backend *be, int64_t size)
{
    bytes_measure(st, be, LAB4_VIA_UART, size);
}

static void bench_lab4_hypercall(struct bench_state *st, const struct mvm_backend *be, int64_t size)
{
    bytes_measure(st, be, LAB4_VIA_HYPERCALL, size);
}

static void bench_lab4_shared(struct bench_state *st, const struct mvm_backend *be, int64_t size)
{
    bytes_measure(st, be, LAB4_VIA_SHARED, size);
}

static void bench_lab4_vmcall(struct bench_state *st, const struct mvm_backend *be, int64_t size)
{
    bytes_measure(st, be, LAB4_VIA_VMCALL, size);
}

static void bench_lab4_nop(struct bench_state *st, const struct mvm_backend *be, int64_t unused)
{
    (void)unused;
    bytes_measure(st, be, LAB4_VIA_NOP, 1);
}

static const char *vmcall_valid(const struct mvm_backend *be)
{
    if (bench_kvm_is_pvm(be))
        return "/dev/kvm is KVM-PVM, which does not answer VMMCALL/VMCALL: the guest spins on the instruction";
    return NULL;
}

static const int64_t message_sizes[] = {1, 16, 256, 4096, 0};

const struct bench_case bench_lab4_cases[] = {
    {.name = "lab4/uart", .fn = bench_lab4_uart, .args = message_sizes, .arg_unit = "B"},
    {.name = "lab4/hypercall", .fn = bench_lab4_hypercall, .args = message_sizes, .arg_unit = "B"},
    {.name = "lab4/shared", .fn = bench_lab4_shared, .args = message_sizes, .arg_unit = "B"},
    {.name = "lab4/vmcall", .fn = bench_lab4_vmcall, .valid = vmcall_valid, .args = message_sizes, .arg_unit = "B"},
    {.name = "lab4/nop", .fn = bench_lab4_nop},
    {0},
};
