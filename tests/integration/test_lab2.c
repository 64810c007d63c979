/* Lab 2 visible tests: GDT descriptor encoding, the VMM's protected-mode set-up, and guests that run in it. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "lab_parts.h"

/* A flat 4 GiB ring-0 segment as KVM reports one after a load (type with the accessed bit). */
static struct kvm_segment flat(uint8_t type, bool code64)
{
    return (struct kvm_segment){
        .limit = 0xffffffff, .type = type, .present = 1, .s = 1, .g = 1, .db = !code64, .l = code64};
}

static void expect_encoding(const char *what, const struct kvm_segment *seg, uint64_t want)
{
    uint64_t got = 0;
    int rc = lab2_gdt_entry_encode(seg, &got);

    if (rc != 0)
        fail_msg("lab2_gdt_entry_encode(%s) failed (%d): %s", what, rc, mvm_error());
    if (got != want)
        fail_msg("%s: expected descriptor 0x%016llx, got 0x%016llx (differing bits 0x%016llx; x86.h names "
                 "the fields: limit 15:0 in bits 0-15, base 23:0 in 16-39, type 40-43, S 44, DPL 45-46, P 47, "
                 "limit 19:16 in 48-51, AVL 52, L 53, D/B 54, G 55, base 31:24 in 56-63)",
                 what, (unsigned long long)want, (unsigned long long)got, (unsigned long long)(got ^ want));
}

/* The classic flat descriptors, as every OS tutorial and the SDM's examples write them. */
static void gdt_encode_flat(void **state)
{
    struct kvm_segment code32 = flat(0xb, false), data = flat(0x3, false), code64 = flat(0xb, true);

    (void)state;
    expect_encoding("flat 32-bit code (type 0xb, D=1, G=1)", &code32, 0x00cf9b000000ffffull);
    expect_encoding("flat data (type 0x3, B=1, G=1)", &data, 0x00cf93000000ffffull);
    expect_encoding("64-bit code (L=1, D=0)", &code64, 0x00af9b000000ffffull);
}

/* A segment with every field different, so each one's place shows. */
static void gdt_encode_fields(void **state)
{
    struct kvm_segment seg = {
        .base = 0x12345678, .limit = 0xabcde, .type = 0x2, .present = 1, .dpl = 3, .s = 1, .avl = 1};
    struct kvm_segment pages = {
        .base = 0xff000000, .limit = 0x0fffffff, .type = 0x3, .present = 1, .s = 1, .db = 1, .g = 1};

    (void)state;
    /* base 31:24 = 0x12, flags 0x1 (AVL) | limit 19:16 0xa, access 0xf2 (P, DPL 3, S, type 2), base 23:0, limit 15:0.
     */
    expect_encoding("base 0x12345678, byte-granular limit 0xabcde, DPL 3, AVL", &seg, 0x121af2345678bcdeull);
    /* G=1: the field holds the limit in 4 KiB units, 0x0fffffff >> 12 = 0xffff. */
    expect_encoding("base 0xff000000, limit 256 MiB with G=1", &pages, 0xffc093000000ffffull);
}

static void setup_protected_sregs(void **state)
{
    const struct mvm_backend *be;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct kvm_sregs s;
    struct kvm_regs r;
    uint64_t gdt[MVM_BOOT_GDT_ENTRIES], want;

    (void)state;
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &vm), 0);
    assert_int_equal(vm_mem_add(vm, 0, 2 << 20, 0), 0);
    assert_int_equal(vcpu_create(vm, 0, &vcpu), 0);
    if (lab2_vcpu_setup_protected(vcpu, 0x1000) != 0)
        fail_msg("lab2_vcpu_setup_protected(vcpu, 0x1000) failed: %s", mvm_error());
    assert_int_equal(vcpu_sregs_get(vcpu, &s), 0);
    assert_int_equal(vcpu_regs_get(vcpu, &r), 0);
    if (!(s.cr0 & X86_CR0_PE))
        fail_msg("CR0 = 0x%llx: PE (bit 0) must be set for protected mode", (unsigned long long)s.cr0);
    if (s.cs.selector != MVM_SEL_CODE32 || s.cs.base != 0 || s.cs.limit != 0xffffffff || !s.cs.db || !s.cs.g ||
        !s.cs.s || !s.cs.present || (s.cs.type & 0xa) != 0xa)
        fail_msg("CS: expected selector 0x08, base 0, limit 0xffffffff, D=1, G=1, S=1, P=1, type code+read; got "
                 "selector 0x%x base 0x%llx limit 0x%x db %u g %u s %u present %u type 0x%x",
                 s.cs.selector, (unsigned long long)s.cs.base, s.cs.limit, s.cs.db, s.cs.g, s.cs.s, s.cs.present,
                 s.cs.type);
    if (s.ds.selector != MVM_SEL_DATA || s.ss.selector != MVM_SEL_DATA || s.ds.limit != 0xffffffff || !s.ss.db ||
        (s.ds.type & 0xa) != 0x2)
        fail_msg("DS/SS: expected selector 0x10, a flat writable data segment with B=1; got DS 0x%x limit 0x%x "
                 "type 0x%x, SS 0x%x db %u",
                 s.ds.selector, s.ds.limit, s.ds.type, s.ss.selector, s.ss.db);
    if (s.gdt.base != MVM_BOOT_GDT_GPA || s.gdt.limit != MVM_BOOT_GDT_ENTRIES * 8 - 1)
        fail_msg("GDTR: expected base 0x%x limit %d (4 descriptors), got base 0x%llx limit %u", MVM_BOOT_GDT_GPA,
                 MVM_BOOT_GDT_ENTRIES * 8 - 1, (unsigned long long)s.gdt.base, s.gdt.limit);
    /* The GDT in memory must hold what the caches say: a guest that reloads a selector reads it. */
    assert_int_equal(vm_read(vm, MVM_BOOT_GDT_GPA, gdt, sizeof(gdt)), 0);
    assert_int_equal(lab2_gdt_entry_encode(&s.cs, &want), 0);
    if (gdt[1] != want)
        fail_msg("GDT entry 1 (selector 0x08) in guest memory is 0x%016llx, but CS's hidden state encodes to "
                 "0x%016llx: write the boot GDT at MVM_BOOT_GDT_GPA",
                 (unsigned long long)gdt[1], (unsigned long long)want);
    if (gdt[0] != 0)
        fail_msg("GDT entry 0 must be the null descriptor, got 0x%016llx", (unsigned long long)gdt[0]);
    if (r.rip != 0x1000 || r.rflags != 0x2 || r.rsp != MVM_BOOT_STACK_TOP)
        fail_msg("expected EIP 0x1000, EFLAGS 0x2, ESP 0x%x; got 0x%llx, 0x%llx, 0x%llx", MVM_BOOT_STACK_TOP,
                 (unsigned long long)r.rip, (unsigned long long)r.rflags, (unsigned long long)r.rsp);
    vm_destroy(vm);
}

static void hello32_runs(void **state)
{
    struct guest_run run;

    (void)state;
    harness_run_guest_mode("lab2/hello32", HARNESS_MODE_PROTECTED, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!strstr(run.console, "Hello from 32-bit protected mode!\n") ||
        !strstr(run.console, "code32 00cf9b000000ffff data 00cf93000000ffff") ||
        !strstr(run.console, "reloaded CS and DS from the GDT"))
        fail_msg("lab2/hello32's output is not what a flat boot GDT gives:\n%s", run.console);
    harness_free(&run);
}

/*
 * The guest switches itself: lgdt, CR0.PE, a far jump. Afterwards the CPU's
 * own descriptor loads filled CS and DS; your encoder must turn that hidden
 * state back into the guest's GDT entries.
 */
static void guest_switches_itself(void **state)
{
    struct guest_run run;
    unsigned long long gdt1 = 0, gdt2 = 0;
    uint64_t enc_cs = 0, enc_ds = 0;
    const char *line;

    (void)state;
    harness_run_guest_mode("lab2/switch", HARNESS_MODE_REAL, NULL, NULL, &run);
    EXPECT_STOP(&run, MVM_STOP_DONE);
    if (!(run.sregs.cr0 & X86_CR0_PE) || run.sregs.cs.selector != 0x08 || !run.sregs.cs.db ||
        run.sregs.cs.limit != 0xffffffff)
        fail_msg("after the guest's switch: CR0 0x%llx, CS 0x%x D=%u limit 0x%x (expected PE, 0x08, 1, 0xffffffff)",
                 (unsigned long long)run.sregs.cr0, run.sregs.cs.selector, run.sregs.cs.db, run.sregs.cs.limit);
    line = strstr(run.console, "gdt[1]=");
    if (!line || sscanf(line, "gdt[1]=%16llx gdt[2]=%16llx", &gdt1, &gdt2) != 2)
        fail_msg("lab2/switch did not print its GDT entries:\n%s", run.console);
    /* The CPU sets the accessed bit when it loads a descriptor; the guest's entries have it clear. */
    run.sregs.cs.type &= ~X86_SEG_TYPE_ACCESSED;
    run.sregs.ds.type &= ~X86_SEG_TYPE_ACCESSED;
    if (lab2_gdt_entry_encode(&run.sregs.cs, &enc_cs) != 0 || lab2_gdt_entry_encode(&run.sregs.ds, &enc_ds) != 0)
        fail_msg("lab2_gdt_entry_encode() refused the CPU's own CS/DS state: %s", mvm_error());
    if (enc_cs != gdt1 || enc_ds != gdt2)
        fail_msg("the CPU loaded CS and DS from the guest's descriptors 0x%016llx and 0x%016llx; encoding that "
                 "hidden state gives 0x%016llx and 0x%016llx",
                 gdt1, gdt2, (unsigned long long)enc_cs, (unsigned long long)enc_ds);
    harness_free(&run);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gdt_encode_flat),       cmocka_unit_test(gdt_encode_fields),
        cmocka_unit_test(setup_protected_sregs), cmocka_unit_test(hello32_runs),
        cmocka_unit_test(guest_switches_itself),
    };

    return harness_main(argc, argv, "lab2", tests, sizeof(tests) / sizeof(tests[0]));
}
