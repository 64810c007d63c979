/* Lab 2 hidden tests: bad descriptors refused, the descriptor cache, a #GP from a limit, exact exit dumps, both set-ups
 * agree. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lab_parts.h"

static void expect_einval(const char *what, struct kvm_segment seg)
{
    uint64_t desc = 0;
    int rc = lab2_gdt_entry_encode(&seg, &desc);

    if (rc != -EINVAL)
        fail_msg("lab2_gdt_entry_encode(%s) must fail with -EINVAL, got %d (descriptor 0x%016llx)", what, rc,
                 (unsigned long long)desc);
}

static void gdt_encode_rejects_bad(void **state)
{
    (void)state;
    expect_einval("limit 0x12345 with G=1: the low 12 bits must be 0xfff",
                  (struct kvm_segment){.limit = 0x12345, .g = 1, .type = 3, .s = 1, .present = 1});
    expect_einval("limit 0x100000 with G=0: 21 bits", (struct kvm_segment){.limit = 0x100000, .type = 3, .s = 1});
    expect_einval("base 0x100000000: 33 bits", (struct kvm_segment){.base = 1ull << 32, .type = 3, .s = 1});
    expect_einval("L=1 with D=1 (reserved)", (struct kvm_segment){.l = 1, .db = 1, .type = 0xb, .s = 1});
    expect_einval("DPL 4", (struct kvm_segment){.dpl = 4, .type = 3, .s = 1});
}

static void entry_beyond_4g_rejected(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    int rc;

    (void)state;
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    rc = lab2_vcpu_setup_protected(vcpu, 1ull << 32);
    vm_destroy(vm);
    if (rc != -EINVAL)
        fail_msg("lab2_vcpu_setup_protected(entry 0x100000000) must fail with -EINVAL (EIP has 32 bits), got %d", rc);
}

/* The guest moved FS's descriptor in memory without reloading FS: the VMM sees the cached base, not the GDT's. */
static void desccache_keeps_old_base(void **state)
{
    struct guest_run run;
    unsigned cached = 0, table = 0;
    const char *line;

    (void)state;
    harness_run_guest_mode("lab2/desccache", HARNESS_MODE_PROTECTED, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    line = strstr(run.console, "FS cache base ");
    if (!line || sscanf(line, "FS cache base 0x%x, GDT entry base 0x%x", &cached, &table) != 2)
        fail_msg("lab2/desccache did not report its bases:\n%s", run.console);
    if (run.sregs.fs.base != cached || cached == table)
        fail_msg("FS's hidden base after the run is 0x%llx; the guest loaded 0x%x and then changed the GDT entry to "
                 "0x%x without reloading FS",
                 (unsigned long long)run.sregs.fs.base, cached, table);
    if (run.sregs.fs.selector != 0x18 || run.sregs.fs.limit != 0xfff)
        fail_msg("FS: expected selector 0x18 and limit 0xfff, got 0x%x / 0x%x", run.sregs.fs.selector,
                 run.sregs.fs.limit);
    harness_free(&run);
}

/* QEMU's TCG does not check segment limits, so KVM running on it cannot raise lab2/limitfault's #GP. */
static void skip_without_segment_limit_checks(void)
{
    if (getenv("MINIVMM_KVM_UNDER_TCG") && !strcmp(harness_backend_name(), "kvm")) {
        printf("skipped: KVM inside QEMU's software CPU cannot check segment limits (TCG never does)\n");
        skip();
    }
}

static void limit_fault_gp(void **state)
{
    struct guest_run run;

    (void)state;
    skip_without_segment_limit_checks();
    harness_run_guest_mode("lab2/limitfault", HARNESS_MODE_PROTECTED, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "inside the limit): 0x44\n") || !strstr(run.console, "#GP(0) at eip=0x") ||
        !strstr(run.console, "(the 4-byte read at FS:0xffd)"))
        fail_msg("lab2/limitfault: expected a read inside the limit, then #GP(0) at the read past it:\n%s",
                 run.console);
    harness_free(&run);
}

/*
 * A run's exit dump, exactly: one serial OUT per console byte, in order, and
 * the single ucall OUT (GUEST_DONE) at the end. Nothing else exits.
 */
static void expect_serial_then_done(const struct guest_run *run)
{
    const char *line = run->exits, *c = run->console;
    int lines = 0;
    unsigned byte;

    for (; line && *line; lines++) {
        const char *nl = strchr(line, '\n');

        if (sscanf(line, "IO out port=0x03f8 size=1 count=1 data=%2x", &byte) == 1) {
            if (*c != (char)byte)
                fail_msg("exit %d wrote 0x%02x to the serial port, but the console has '%c' there", lines + 1, byte,
                         *c ? *c : '?');
            c++;
        } else if (strncmp(line, "IO out port=0x0500 size=4 count=1 data=", 39) || (nl && nl[1])) {
            fail_msg("exit %d is unexpected: '%.*s' (only serial OUTs, then one ucall OUT for GUEST_DONE)", lines + 1,
                     nl ? (int)(nl - line) : (int)strlen(line), line);
        }
        line = nl ? nl + 1 : NULL;
    }
    if (*c)
        fail_msg("the console has bytes no serial exit wrote: \"%s\"", c);
    if ((uint64_t)lines != run->res.exits)
        fail_msg("the dump has %d lines for %llu exits", lines, (unsigned long long)run->res.exits);
}

static void hello32_exit_dump_exact(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab2/hello32", HARNESS_MODE_PROTECTED, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    expect_serial_then_done(&run);
    harness_free(&run);
}

static void limitfault_exit_dump_exact(void **state)
{
    struct guest_run run;

    (void)state;
    skip_without_segment_limit_checks();
    harness_run_guest_mode("lab2/limitfault", HARNESS_MODE_PROTECTED, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    /* The #GP is delivered through the guest's IDT inside the CPU: no exit for it. */
    expect_serial_then_done(&run);
    harness_free(&run);
}

/* Both ways into protected mode end in the same hidden segment state (up to the accessed bit). */
static void switch_matches_vmm_setup(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_sregs vmm;
    struct guest_run run;
    const struct kvm_segment *pairs[2][2];

    (void)state;
    harness_run_guest_mode("lab2/switch", HARNESS_MODE_REAL, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    if (lab2_vcpu_setup_protected(vcpu, 0x1000) != 0)
        fail_msg("lab2_vcpu_setup_protected failed: %s", mvm_error());
    assert_int_equal(vcpu_sregs_get(vcpu, &vmm), 0);
    vm_destroy(vm);
    pairs[0][0] = &run.sregs.cs, pairs[0][1] = &vmm.cs;
    pairs[1][0] = &run.sregs.ds, pairs[1][1] = &vmm.ds;
    for (int i = 0; i < 2; i++) {
        const struct kvm_segment *cpu = pairs[i][0], *mine = pairs[i][1];

        if (cpu->selector != mine->selector || cpu->base != mine->base || cpu->limit != mine->limit ||
            (cpu->type | 1) != (mine->type | 1) || cpu->s != mine->s || cpu->dpl != mine->dpl ||
            cpu->present != mine->present || cpu->db != mine->db || cpu->g != mine->g || cpu->l != mine->l)
            fail_msg("%s after the guest's own switch: sel 0x%x base 0x%llx limit 0x%x type 0x%x s%u dpl%u p%u db%u "
                     "g%u l%u; after lab2_vcpu_setup_protected: sel 0x%x base 0x%llx limit 0x%x type 0x%x s%u dpl%u "
                     "p%u db%u g%u l%u",
                     i ? "DS" : "CS", cpu->selector, (unsigned long long)cpu->base, cpu->limit, cpu->type, cpu->s,
                     cpu->dpl, cpu->present, cpu->db, cpu->g, cpu->l, mine->selector, (unsigned long long)mine->base,
                     mine->limit, mine->type, mine->s, mine->dpl, mine->present, mine->db, mine->g, mine->l);
    }
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gdt_encode_rejects_bad),   cmocka_unit_test(entry_beyond_4g_rejected),
        cmocka_unit_test(desccache_keeps_old_base), cmocka_unit_test(limit_fault_gp),
        cmocka_unit_test(hello32_exit_dump_exact),  cmocka_unit_test(limitfault_exit_dump_exact),
        cmocka_unit_test(switch_matches_vmm_setup),
    };

    return harness_main(argc, argv, "lab2_hidden", tests, sizeof(tests) / sizeof(tests[0]));
}
