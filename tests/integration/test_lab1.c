/*
 * Lab 1 visible tests, one part of the lab at a time on top of the kit's versions of the others (MVM_LAB_PART),
 * so each part scores on its own; then the whole skeleton together. On whichever backend is chosen.
 */
#include <string.h>

#include "harness.h"
#include "lab1_spy.h"
#include "lab_parts.h"

/* mov al,'K'; out 0xe9,al; hlt */
static const uint8_t code_k[] = {0xb0, 0x4b, 0xe6, 0xe9, 0xf4};

static void vm_open_creates_vm(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(kvm.vm_open);
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "Hello from real mode!\n");
    harness_free(&run);
}

static void vm_open_checks_api_version(void **state)
{
    const struct mvm_backend *be = spy_backend();
    struct mvm_vm *vm = NULL;
    int rc;

    (void)state;
    LAB1_PART(kvm.vm_open);
    if (vm_create(be, &vm) != 0)
        fail_msg("lab1_vm_open() on a KVM of API version %d: %s", KVM_API_VERSION, mvm_error());
    vm_destroy(vm);
    vm = NULL;
    spy.api_version = 11;
    rc = vm_create(be, &vm);
    vm_destroy(vm);
    if (rc == 0)
        fail_msg("KVM_GET_API_VERSION answered 11, but lab1_vm_open() went on and created a VM: compare the "
                 "answer with KVM_API_VERSION (%d) and fail with -EINVAL when it differs",
                 KVM_API_VERSION);
    if (spy.opened != spy.closed)
        fail_msg("lab1_vm_open() failed as it should, but left %d of the %d fds it opened open: close /dev/kvm "
                 "before returning the error",
                 spy.opened - spy.closed, spy.opened);
}

static void mem_region_runs_guest(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(kvm.mem_region_set);
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "Hello from real mode!\n");
    harness_free(&run);
}

static void mem_region_keeps_flags(void **state)
{
    /* mov byte [0x3000],0x11; hlt: the guest dirties page 3 */
    static const uint8_t code[] = {0xc6, 0x06, 0x00, 0x30, 0x11, 0xf4};
    const struct mvm_backend *be;
    struct kvm_dirty_log log = {.slot = 0};
    uint64_t bitmap[1] = {0};
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct mvm_run_result res;
    int rc;

    (void)state;
    LAB1_PART(kvm.mem_region_set);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    if (vm_mem_add(vm, 0, 64 << 12, KVM_MEM_LOG_DIRTY_PAGES) != 0)
        fail_msg("a slot with KVM_MEM_LOG_DIRTY_PAGES: %s", mvm_error());
    assert_int_equal(vm_write(vm, 0x1000, code, sizeof(code)), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    assert_int_equal(vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x1000), 0);
    assert_int_equal(vcpu_run(vcpu, &(struct mvm_run_opts){.max_exits = 10, .max_ms = 2000}, &res), 0);
    log.dirty_bitmap = bitmap;
    rc = vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
    vm_destroy(vm);
    if (rc == -ENOENT)
        fail_msg("KVM_GET_DIRTY_LOG on slot 0 failed with ENOENT: the slot has no dirty log, so the flags "
                 "(KVM_MEM_LOG_DIRTY_PAGES = 0x%x) never reached KVM_SET_USER_MEMORY_REGION",
                 KVM_MEM_LOG_DIRTY_PAGES);
    if (rc != 0)
        fail_msg("KVM_GET_DIRTY_LOG on slot 0: %s", mvm_error());
    if (!(bitmap[0] & (1u << 3)))
        fail_msg("the guest wrote page 3 (gpa 0x3000) of a slot with KVM_MEM_LOG_DIRTY_PAGES, but its dirty bit "
                 "is clear (bitmap 0x%llx)",
                 (unsigned long long)bitmap[0]);
}

static void vcpu_open_maps_run(void **state)
{
    const struct mvm_backend *be = spy_backend();
    struct guest_run run;

    (void)state;
    LAB1_PART(kvm.vcpu_open);
    /* lab1/io: rep insb puts its data after struct kvm_run, in the rest of the mapping */
    {
        char path[512];
        FILE *f;
        uint8_t code[4096];
        size_t n;

        harness_guest_path("lab1/io", path, sizeof(path));
        f = fopen(path, "rb");
        if (!f)
            fail_msg("cannot read %s (make guests)", path);
        n = fread(code, 1, sizeof(code), f);
        fclose(f);
        spy_run_code(be, 2 << 20, code, n, 0x1000, &run);
    }
    if (spy.mmap_size <= 0)
        fail_msg("lab1_vcpu_open() never asked KVM_GET_VCPU_MMAP_SIZE how large the kvm_run mapping is");
    if (spy.mmap_len != (size_t)spy.mmap_size)
        fail_msg("kvm_run was mapped with %zu bytes, but KVM_GET_VCPU_MMAP_SIZE said %d: the data of port I/O "
                 "lies past struct kvm_run (%zu bytes), in the rest of the mapping",
                 spy.mmap_len, spy.mmap_size, sizeof(struct kvm_run));
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (harness_count_exits(&run, "IO in port=0x03ff size=1 count=4 data=5a5a5a5a") != 1)
        fail_msg("rep insb: expected one exit with the data 5a5a5a5a in the kvm_run mapping; exits were:\n%s",
                 run.exits);
    if (spy.opened != spy.closed)
        fail_msg("%d fds opened, %d closed: the kit closes the vCPU fd lab1_vcpu_open() returns; is one more left "
                 "open?",
                 spy.opened, spy.closed);
    harness_free(&run);
}

static void enter_runs_guest(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(kvm.vcpu_enter);
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "Hello from real mode!\n");
    if (run.res.exits != 23)
        fail_msg("hello takes 23 exits (one per OUT), got %llu: is each KVM_RUN issued once per exit?",
                 (unsigned long long)run.res.exits);
    harness_free(&run);
}

static void enter_interrupted_is_not_an_error(void **state)
{
    /* jmp $: the guest never exits; the run loop's time limit interrupts KVM_RUN with a signal */
    static const uint8_t code[] = {0xeb, 0xfe};
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct mvm_run_result res;

    (void)state;
    LAB1_PART(kvm.vcpu_enter);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    assert_int_equal(vm_write(vm, 0x1000, code, sizeof(code)), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    assert_int_equal(vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x1000), 0);
    vcpu_run(vcpu, &(struct mvm_run_opts){.max_ms = 200}, &res);
    vm_destroy(vm);
    if (res.stop != MVM_STOP_TIME_LIMIT)
        fail_msg("a guest that never exits must stop at the time limit (the signal makes KVM_RUN fail with EINTR: "
                 "return -EINTR, it is not an error); the run ended with '%s': %s",
                 mvm_stop_name(res.stop), res.detail);
}

static void switch_runs_hello(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(kvm.exit_switch);
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "Hello from real mode!\n");
    harness_free(&run);
}

static void switch_passes_others_on(void **state)
{
    /* mov ax,0x2000; mov es,ax; mov byte [es:0],0x5a; mov al,'K'; out 0xe9,al; hlt: an MMIO write past RAM */
    static const uint8_t code[] = {0xb8, 0x00, 0x20, 0x8e, 0xc0, 0x26, 0xc6, 0x06,
                                   0x00, 0x00, 0x5a, 0xb0, 0x4b, 0xe6, 0xe9, 0xf4};
    struct guest_run run;
    const struct mvm_backend *be;

    (void)state;
    LAB1_PART(kvm.exit_switch);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    spy_run_code(be, 0x10000, code, sizeof(code), 0x1000, &run);
    if (run.error[0] || run.res.stop != MVM_STOP_HLT ||
        harness_count_exits(&run, "MMIO write gpa=0x0000000000020000 len=1 data=5a") != 1)
        fail_msg("the guest writes gpa 0x20000, where there is no RAM: KVM_EXIT_MMIO; expected lab1_exit_switch() "
                 "to pass it to vcpu_exit_default(), then the guest to print K and halt, but %s; exits:\n%s",
                 harness_explain(&run), run.exits);
    assert_string_equal(run.console, "K");
    harness_free(&run);
}

static void setup_real_low(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_sregs s;
    struct kvm_regs r;

    (void)state;
    LAB1_PART(vcpu_setup[MVM_MODE_REAL]);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    if (vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x1000) != 0)
        fail_msg("lab1_vcpu_setup_real(vcpu, 0x1000) failed: %s", mvm_error());
    assert_int_equal(vcpu_sregs_get(vcpu, &s), 0);
    assert_int_equal(vcpu_regs_get(vcpu, &r), 0);
    vm_destroy(vm);
    if (s.cs.base != 0 || s.cs.selector != 0)
        fail_msg("entry 0x1000: expected CS.selector 0 and CS.base 0, got selector 0x%x base 0x%llx "
                 "(a fresh vCPU starts at CS 0xf000 base 0xffff0000: both must be set)",
                 s.cs.selector, (unsigned long long)s.cs.base);
    if (s.cs.limit != 0xffff)
        fail_msg("CS.limit: expected 0xffff (64 KiB real-mode segment), got 0x%x", s.cs.limit);
    if (s.ss.base != s.cs.base || s.ds.base != s.cs.base || s.es.base != s.cs.base)
        fail_msg("SS/DS/ES must equal CS in lab 1 (bases 0x%llx 0x%llx 0x%llx vs CS 0x%llx)",
                 (unsigned long long)s.ss.base, (unsigned long long)s.ds.base, (unsigned long long)s.es.base,
                 (unsigned long long)s.cs.base);
    if (r.rip != 0x1000)
        fail_msg("RIP: expected 0x1000 (entry - CS.base), got 0x%llx", (unsigned long long)r.rip);
    if (r.rsp != 0xfffe)
        fail_msg("RSP: expected 0xfffe (top of the 64 KiB segment), got 0x%llx", (unsigned long long)r.rsp);
}

static void setup_real_selector_not_zero(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(vcpu_setup[MVM_MODE_REAL]);
    harness_run_code(code_k, sizeof(code_k), 0x23456, 0x23456, &run);
    if (run.error[0] || run.sregs.cs.selector != 0x2000 || run.sregs.cs.base != 0x20000)
        fail_msg("entry 0x23456: expected CS.selector 0x2000 and CS.base 0x20000 (base = selector << 4) and "
                 "RIP 0x3456, got selector 0x%x base 0x%llx; %s",
                 run.sregs.cs.selector, (unsigned long long)run.sregs.cs.base, harness_explain(&run));
    EXPECT_STOP(&run, MVM_STOP_HLT);
    assert_string_equal(run.console, "K");
    harness_free(&run);
}

static void setup_real_rflags_and_cr0(void **state)
{
    const struct mvm_backend *be = spy_backend();
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_sregs s;
    int rc;

    (void)state;
    LAB1_PART(vcpu_setup[MVM_MODE_REAL]);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    rc = vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x1000);
    assert_int_equal(vcpu_sregs_get(vcpu, &s), 0);
    vm_destroy(vm);
    if (rc != 0)
        fail_msg("lab1_vcpu_setup_real(vcpu, 0x1000) failed: %s", mvm_error());
    if (!spy.set_regs_seen)
        fail_msg("lab1_vcpu_setup_real() never called KVM_SET_REGS");
    /* KVM sets bit 1 itself, so reading RFLAGS back cannot tell: what was passed to KVM_SET_REGS is checked. */
    if (spy.set_regs.rflags != 0x2)
        fail_msg("KVM_SET_REGS was given RFLAGS 0x%llx: expected 0x2 (bit 1 is reserved and reads as 1; "
                 "interrupts and every other flag off)",
                 (unsigned long long)spy.set_regs.rflags);
    if (s.cr0 & 1)
        fail_msg("CR0 is 0x%llx after the set-up: CR0.PE (bit 0) set means protected mode, not real mode; leave "
                 "CR0 as the fresh vCPU has it",
                 (unsigned long long)s.cr0);
}

static void halt_is_one_exit(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(exit[KVM_EXIT_HLT]);
    harness_run_guest("lab1/halt", &run);
    EXPECT_STOP(&run, MVM_STOP_HLT);
    if (run.res.exits != 1 || run.res.by_reason[KVM_EXIT_HLT] != 1)
        fail_msg("a guest of one HLT must give exactly one exit (KVM_EXIT_HLT); got %llu exits:\n%s",
                 (unsigned long long)run.res.exits, run.exits);
    harness_free(&run);
}

static void hello_serial(void **state)
{
    static const char want[] = "Hello from real mode!\n";
    struct guest_run run;

    (void)state;
    LAB1_PART(exit[KVM_EXIT_IO]);
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (strcmp(run.console, want))
        fail_msg("serial output: expected \"Hello from real mode!\\n\", got \"%s\"", run.console);
    /* One OUT per character, plus the OUT of GUEST_DONE. */
    if (run.res.by_reason[KVM_EXIT_IO] != strlen(want) + 1 || run.res.exits != strlen(want) + 1)
        fail_msg("expected exactly %zu KVM_EXIT_IO exits (one per OUT), got %llu IO of %llu exits", strlen(want) + 1,
                 (unsigned long long)run.res.by_reason[KVM_EXIT_IO], (unsigned long long)run.res.exits);
    assert_int_equal(harness_count_exits(&run, "IO out port=0x03f8 size=1 count=1 data=48"), 1);
    harness_free(&run);
}

static void arith_checks_pass(void **state)
{
    struct guest_run run;

    (void)state;
    LAB1_PART(exit[KVM_EXIT_IO]);
    harness_run_guest("lab1/arith", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "=\n");
    harness_free(&run);
}

static void io_in_and_string(void **state)
{
    static const char line[] = "string I/O: rep outsb exits once per byte\n";
    struct guest_run run;

    (void)state;
    LAB1_PART(exit[KVM_EXIT_IO]);
    harness_run_guest("lab1/io", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (strcmp(run.console, line))
        fail_msg("rep outsb: expected \"%s\" on the serial console, got \"%s\"", line, run.console);
    if (harness_count_exits(&run, "IO out port=0x03f8 size=1 count=1 ") != (int)strlen(line))
        fail_msg("rep outsb of %zu bytes: KVM exits once per byte; exits were:\n%s", strlen(line), run.exits);
    if (harness_count_exits(&run, "IO in port=0x03ff size=1 count=4 data=5a5a5a5a") != 1)
        fail_msg("rep insb of 4 bytes must be one exit whose data the VMM fills (5a5a5a5a); exits were:\n%s",
                 run.exits);
    harness_free(&run);
}

static void whole_vmm_runs_hello(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "Hello from real mode!\n");
    if (run.res.exits != 23)
        fail_msg("hello takes 23 exits, got %llu:\n%s", (unsigned long long)run.res.exits, run.exits);
    harness_free(&run);
}

#define T(f) cmocka_unit_test_teardown(f, part_reset)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(vm_open_creates_vm),
        T(vm_open_checks_api_version),
        T(mem_region_runs_guest),
        T(mem_region_keeps_flags),
        T(vcpu_open_maps_run),
        T(enter_runs_guest),
        T(enter_interrupted_is_not_an_error),
        T(switch_runs_hello),
        T(switch_passes_others_on),
        T(setup_real_low),
        T(setup_real_selector_not_zero),
        T(setup_real_rflags_and_cr0),
        T(halt_is_one_exit),
        T(hello_serial),
        T(arith_checks_pass),
        T(io_in_and_string),
        T(whole_vmm_runs_hello),
    };

    return harness_main(argc, argv, "lab1", tests, sizeof(tests) / sizeof(tests[0]));
}
