/* Lab 1 hidden tests: segments above 64 KiB, entry checks, IN of each width, rep insw, the exact exit dump. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "lab_parts.h"

static void entry_above_64k(void **state)
{
    /* mov al,'K'; out 0xe9,al; hlt */
    static const uint8_t code[] = {0xb0, 0x4b, 0xe6, 0xe9, 0xf4};
    struct guest_run run;

    (void)state;
    harness_run_code(code, sizeof(code), 0x12345, 0x12345, &run);
    EXPECT_STOP(&run, MVM_STOP_HLT);
    if (run.sregs.cs.selector != 0x1000 || run.sregs.cs.base != 0x10000)
        fail_msg("entry 0x12345: expected CS.selector 0x1000 and CS.base 0x10000 (base = selector << 4), "
                 "got 0x%x / 0x%llx",
                 run.sregs.cs.selector, (unsigned long long)run.sregs.cs.base);
    assert_string_equal(run.console, "K");
    harness_free(&run);
}

static void entry_above_1m_rejected(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    int rc;

    (void)state;
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    rc = lab1_vcpu_setup_real(vcpu, 0x100000);
    vm_destroy(vm);
    if (rc != -EINVAL)
        fail_msg("lab1_vcpu_setup_real(0x100000) must fail with -EINVAL (above real mode's 1 MiB), got %d", rc);
}

static void in_each_width(void **state)
{
    /* in al,0x80; mov bl,al; in ax,0x80; mov cx,ax; in eax,0x80; hlt */
    static const uint8_t code[] = {0xe4, 0x80, 0x88, 0xc3, 0xe5, 0x80, 0x89, 0xc1, 0x66, 0xe5, 0x80, 0xf4};
    struct guest_run run;

    (void)state;
    harness_run_code(code, sizeof(code), 0x1000, 0x1000, &run);
    EXPECT_STOP(&run, MVM_STOP_HLT);
    if ((run.regs.rbx & 0xff) != 0xff || (run.regs.rcx & 0xffff) != 0xffff || (run.regs.rax & 0xffffffff) != 0xffffffff)
        fail_msg("IN from a port nobody claims reads all ones: expected BL=0xff CX=0xffff EAX=0xffffffff, got "
                 "BL=0x%llx CX=0x%llx EAX=0x%llx (fill the IN data in the run page before the next KVM_RUN)",
                 (unsigned long long)(run.regs.rbx & 0xff), (unsigned long long)(run.regs.rcx & 0xffff),
                 (unsigned long long)(run.regs.rax & 0xffffffff));
    assert_int_equal(harness_count_exits(&run, "IO in port=0x0080 size=1 count=1 data=ff\n"), 1);
    assert_int_equal(harness_count_exits(&run, "IO in port=0x0080 size=4 count=1 data=ffffffff"), 1);
    harness_free(&run);
}

static void rep_insw(void **state)
{
    /* mov dx,0x3ff; mov al,0x42; out dx,al; mov di,0x2000; mov cx,3; cld; rep insw; hlt */
    static const uint8_t code[] = {0xba, 0xff, 0x03, 0xb0, 0x42, 0xee, 0xbf, 0x00,
                                   0x20, 0xb9, 0x03, 0x00, 0xfc, 0xf3, 0x6d, 0xf4};
    struct guest_run run;

    (void)state;
    harness_run_code(code, sizeof(code), 0x1000, 0x1000, &run);
    EXPECT_STOP(&run, MVM_STOP_HLT);
    if (harness_count_exits(&run, "IO in port=0x03ff size=2 count=3 data=420042004200") != 1)
        fail_msg("rep insw x3 must be one exit of count 3, each element filled by the device; exits:\n%s", run.exits);
    harness_free(&run);
}

static void hello_exit_dump_exact(void **state)
{
    static const char *const first = "IO out port=0x03f8 size=1 count=1 data=48\n"
                                     "IO out port=0x03f8 size=1 count=1 data=65\n"
                                     "IO out port=0x03f8 size=1 count=1 data=6c\n";
    struct guest_run run;

    (void)state;
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (strncmp(run.exits, first, strlen(first)))
        fail_msg("the exit dump must start with one OUT of 'H', 'e', 'l'; got:\n%.200s", run.exits);
    assert_int_equal(harness_count_exits(&run, "IO out port=0x0500 size=4 count=1 "), 1);
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entry_above_64k), cmocka_unit_test(entry_above_1m_rejected), cmocka_unit_test(in_each_width),
        cmocka_unit_test(rep_insw),        cmocka_unit_test(hello_exit_dump_exact),
    };

    return harness_main(argc, argv, "lab1_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
