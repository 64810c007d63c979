/* Lab 1 visible tests: real-mode set-up, port I/O and HLT exits, on whichever backend is chosen. */
#include <string.h>

#include "harness.h"
#include "lab_parts.h"

static void setup_real_low(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_sregs s;
    struct kvm_regs r;

    (void)state;
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    if (lab1_vcpu_setup_real(vcpu, 0x1000) != 0)
        fail_msg("lab1_vcpu_setup_real(vcpu, 0x1000) failed: %s", mvm_error());
    assert_int_equal(vcpu_sregs_get(vcpu, &s), 0);
    assert_int_equal(vcpu_regs_get(vcpu, &r), 0);
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
    if (r.rflags != 0x2)
        fail_msg("RFLAGS: expected 0x2 (only the reserved bit 1), got 0x%llx", (unsigned long long)r.rflags);
    if (r.rsp != 0xfffe)
        fail_msg("RSP: expected 0xfffe (top of the 64 KiB segment), got 0x%llx", (unsigned long long)r.rsp);
    vm_destroy(vm);
}

static void halt_is_one_exit(void **state)
{
    struct guest_run run;

    (void)state;
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
    harness_run_guest("lab1/arith", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_string_equal(run.console, "=\n");
    harness_free(&run);
}

static void io_in_and_string(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest("lab1/io", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    {
        static const char line[] = "string I/O: rep outsb exits once per byte\n";

        if (strcmp(run.console, line))
            fail_msg("rep outsb: expected \"%s\" on the serial console, got \"%s\"", line, run.console);
        if (harness_count_exits(&run, "IO out port=0x03f8 size=1 count=1 ") != (int)strlen(line))
            fail_msg("rep outsb of %zu bytes: KVM exits once per byte; exits were:\n%s", strlen(line), run.exits);
        if (harness_count_exits(&run, "IO in port=0x03ff size=1 count=4 data=5a5a5a5a") != 1)
            fail_msg("rep insb of 4 bytes must be one exit whose data the VMM fills (5a5a5a5a); exits were:\n%s",
                     run.exits);
    }
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(setup_real_low),    cmocka_unit_test(halt_is_one_exit), cmocka_unit_test(hello_serial),
        cmocka_unit_test(arith_checks_pass), cmocka_unit_test(io_in_and_string),
    };

    return harness_main(argc, argv, "lab1", tests, sizeof(tests) / sizeof(tests[0]));
}
