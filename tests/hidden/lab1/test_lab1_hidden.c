/*
 * Lab 1 hidden tests, one part at a time as the visible ones: fds closed on failure, a second slot and vCPU,
 * KVM_RUN failures, segments above 64 KiB, entry checks, IN of each width, rep insw, the exact exit dump.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lab1_spy.h"
#include "lab_parts.h"

static void vm_open_closes_on_create_failure(void **state)
{
    const struct mvm_backend *be = spy_backend();
    struct mvm_vm *vm = NULL;
    int rc;

    (void)state;
    LAB1_PART(kvm.vm_open);
    spy.fail_req = KVM_CREATE_VM;
    spy.fail_errno = EMFILE;
    rc = vm_create(be, &vm);
    vm_destroy(vm);
    if (rc != -EMFILE)
        fail_msg("KVM_CREATE_VM failed with EMFILE: lab1_vm_open() must return -EMFILE, got %d", rc);
    if (spy.opened != 1 || spy.closed != 1)
        fail_msg("KVM_CREATE_VM failed: the /dev/kvm fd must be closed before returning (%d opened, %d closed)",
                 spy.opened, spy.closed);
}

static void mem_region_second_slot(void **state)
{
    /* mov ax,0x1800; mov es,ax; mov al,[es:0]; out 0xe9,al; hlt: reads gpa 0x18000, in the second slot */
    static const uint8_t code[] = {0xb8, 0x00, 0x18, 0x8e, 0xc0, 0x26, 0xa0, 0x00, 0x00, 0xe6, 0xe9, 0xf4};
    const struct mvm_backend *be = spy_backend();
    struct mvm_run_result res;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    char *out = NULL;
    size_t outlen = 0;
    FILE *console = open_memstream(&out, &outlen);

    (void)state;
    LAB1_PART(kvm.mem_region_set);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 0x10000, 0), 0);
    if (vm_mem_add(vm, 0x10000, 0x10000, 0) != 0)
        fail_msg("a second slot (slot 1 at gpa 0x10000): %s", mvm_error());
    assert_int_equal(vm_devices_add_standard(vm, console), 0);
    assert_int_equal(vm_write(vm, 0x18000, "Q", 1), 0);
    assert_int_equal(vm_write(vm, 0x1000, code, sizeof(code)), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    assert_int_equal(vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x1000), 0);
    vcpu_run(vcpu, &(struct mvm_run_opts){.max_exits = 10, .max_ms = 2000}, &res);
    vm_destroy(vm);
    fclose(console);
    if (spy.region.slot != 1 || spy.region.guest_phys_addr != 0x10000)
        fail_msg("the second KVM_SET_USER_MEMORY_REGION had slot %u at gpa 0x%llx: expected slot 1 at 0x10000",
                 spy.region.slot, (unsigned long long)spy.region.guest_phys_addr);
    if (strcmp(out, "Q"))
        fail_msg("the guest read gpa 0x18000 (slot 1) and printed \"%s\", expected \"Q\" (%s)", out, res.detail);
    free(out);
}

static void vcpu_open_second_vcpu(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *a, *b;

    (void)state;
    LAB1_PART(kvm.vcpu_open);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    if (vcpu_create(vm, 0, &a) != 0 || vcpu_create(vm, 1, &b) != 0)
        fail_msg("vCPUs 0 and 1: %s", mvm_error());
    if (vcpu_fd(a) == vcpu_fd(b) || vcpu_run_page(a) == vcpu_run_page(b))
        fail_msg("vCPUs 0 and 1 share fd %d or kvm_run %p: KVM_CREATE_VCPU with each id", vcpu_fd(a),
                 (void *)vcpu_run_page(a));
    vm_destroy(vm);
}

static void enter_failure_stops(void **state)
{
    static const uint8_t hlt[] = {0xf4};
    const struct mvm_backend *be = spy_backend();
    struct guest_run run;

    (void)state;
    LAB1_PART(kvm.vcpu_enter);
    spy_run_code(be, 2 << 20, hlt, sizeof(hlt), 0x1000, &run);
    EXPECT_STOP(&run, MVM_STOP_HLT);
    harness_free(&run);
    spy.fail_req = KVM_RUN;
    spy.fail_errno = EFAULT;
    spy_run_code(be, 2 << 20, hlt, sizeof(hlt), 0x1000, &run);
    if (run.res.stop != MVM_STOP_ERROR || run.rc != -EFAULT)
        fail_msg("KVM_RUN failed with EFAULT: the run must stop with a VMM error, -EFAULT (return -errno), but it "
                 "returned %d and %s",
                 run.rc, harness_explain(&run));
    harness_free(&run);
}

static void entry_above_64k(void **state)
{
    /* mov al,'K'; out 0xe9,al; hlt */
    static const uint8_t code[] = {0xb0, 0x4b, 0xe6, 0xe9, 0xf4};
    struct guest_run run;

    (void)state;
    LAB1_PART(vcpu_setup[MVM_MODE_REAL]);
    harness_run_code(code, sizeof(code), 0x12345, 0x12345, &run);
    if (run.error[0] || run.sregs.cs.selector != 0x1000 || run.sregs.cs.base != 0x10000)
        fail_msg("entry 0x12345: expected CS.selector 0x1000 and CS.base 0x10000 (base = selector << 4), "
                 "got 0x%x / 0x%llx; %s",
                 run.sregs.cs.selector, (unsigned long long)run.sregs.cs.base, harness_explain(&run));
    EXPECT_STOP(&run, MVM_STOP_HLT);
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
    LAB1_PART(vcpu_setup[MVM_MODE_REAL]);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    rc = vcpu_setup_mode(vcpu, MVM_MODE_REAL, 0x100000);
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
    LAB1_PART(exit[KVM_EXIT_IO]);
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
    LAB1_PART(exit[KVM_EXIT_IO]);
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
    LAB1_PART(exit[KVM_EXIT_IO]);
    harness_run_guest("lab1/hello", &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (strncmp(run.exits, first, strlen(first)))
        fail_msg("the exit dump must start with one OUT of 'H', 'e', 'l'; got:\n%.200s", run.exits);
    assert_int_equal(harness_count_exits(&run, "IO out port=0x0500 size=4 count=1 "), 1);
    harness_free(&run);
}

#define T(f) cmocka_unit_test_teardown(f, part_reset)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(vm_open_closes_on_create_failure),
        T(mem_region_second_slot),
        T(vcpu_open_second_vcpu),
        T(enter_failure_stops),
        T(entry_above_64k),
        T(entry_above_1m_rejected),
        T(in_each_width),
        T(rep_insw),
        T(hello_exit_dump_exact),
    };

    return harness_main(argc, argv, "lab1_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
