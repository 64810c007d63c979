/* Unit tests of the Linux loader and its ACPI tables (boot_linux.c, boot_acpi.c) on a VM with no backend. */
#include <asm/bootparam.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot_linux.h"
#include "core_internal.h"

#define RAM_SIZE  (4u << 20)
#define SETUP_LEN 1024 /* setup_sects 1 */
#define KERN_LEN  4096

/* A VM of RAM_SIZE bytes at gpa 0 and no backend: the loader never calls an ioctl. */
static struct mvm_vm *fake_vm(void)
{
    struct mvm_vm *vm = calloc(1, sizeof(*vm));

    assert_non_null(vm);
    vm->slots[0] = (struct mvm_slot){.gpa = 0, .size = RAM_SIZE, .hva = calloc(1, RAM_SIZE)};
    assert_non_null(vm->slots[0].hva);
    vm->nslots = 1;
    return vm;
}

static void fake_vm_free(struct mvm_vm *vm)
{
    free(vm->slots[0].hva);
    free(vm);
}

/* A bzImage's bytes as far as the loader reads them: a valid setup header, a version string, a kernel. */
static uint8_t *fake_bz(size_t *size)
{
    uint8_t *b = calloc(1, SETUP_LEN + KERN_LEN);
    struct setup_header h;

    assert_non_null(b);
    memset(&h, 0, sizeof(h));
    h.setup_sects = 1;
    h.boot_flag = 0xaa55;
    h.jump = 0x66eb; /* jmp to 0x268: the header is 0x268 - 0x1f1 bytes long */
    h.header = 0x53726448;
    h.version = 0x020f;
    h.kernel_version = 0x300 - 0x200;
    h.loadflags = LOADED_HIGH;
    h.initrd_addr_max = 0x7fffffff;
    h.kernel_alignment = 0x200000;
    h.xloadflags = XLF_KERNEL_64;
    h.cmdline_size = 2047;
    h.init_size = 0x10000;
    memcpy(b + 0x1f1, &h, sizeof(h));
    strcpy((char *)b + 0x300, "6.1.0-test (nobody@example) #1");
    memset(b + SETUP_LEN, 0x90, KERN_LEN);
    *size = SETUP_LEN + KERN_LEN;
    return b;
}

static void parse_good(void **state)
{
    size_t n;
    uint8_t *b = fake_bz(&n);
    struct mvm_linux_image img;

    (void)state;
    assert_int_equal(mvm_linux_parse(b, n, &img), 0);
    assert_int_equal(img.protocol, 0x020f);
    assert_int_equal(img.setup_size, SETUP_LEN);
    assert_int_equal(img.kernel_size, KERN_LEN);
    assert_int_equal(img.init_size, 0x10000);
    assert_string_equal(img.version, "6.1.0-test (nobody@example) #1");
    free(b);
}

/* Each broken field is refused with -EINVAL and a message naming it. */
static void parse_refuses(void **state)
{
    static const struct {
        size_t off;
        uint8_t val;
        const char *msg;
    } cases[] = {
        {0x1fe, 0x00, "boot_flag at 0x1fe"},
        {0x202, 'X', "header at 0x202"},
        {0x206, 0x0b, "the 64-bit entry needs 2.12"},
        {0x236, 0x00, "XLF_KERNEL_64"},
        {0x211, 0x00, "LOADED_HIGH"},
        {0x1f1, 0xff, "past the file"},
    };
    struct mvm_linux_image img;
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *b = fake_bz(&n);

        b[cases[i].off] = cases[i].val;
        if (cases[i].off == 0x206)
            b[0x207] = 0x02;
        assert_int_equal(mvm_linux_parse(b, n, &img), -EINVAL);
        assert_non_null(strstr(mvm_error(), cases[i].msg));
        free(b);
    }
    assert_int_equal(mvm_linux_parse("short", 5, &img), -EINVAL);
    assert_non_null(strstr(mvm_error(), "too short"));
}

/* Any bytes at all: a result, never a crash (ASan watches the reads). */
static void parse_random(void **state)
{
    struct mvm_linux_image img;
    size_t n;
    uint8_t *b = fake_bz(&n);

    (void)state;
    srand(1);
    for (int i = 0; i < 20000; i++) {
        uint8_t *c = malloc(n);
        size_t len = 0x1f1 + (size_t)rand() % (n - 0x1f1);

        assert_non_null(c);
        memcpy(c, b, n);
        for (int k = 0; k < 8; k++)
            c[0x1f1 + (size_t)rand() % 0x80] = (uint8_t)rand();
        int rc = mvm_linux_parse(c, len, &img);
        assert_true(rc == 0 || rc == -EINVAL);
        if (rc == 0)
            assert_true(img.setup_size < len && img.setup_size + img.kernel_size == len);
        free(c);
    }
    free(b);
}

static void load_layout(void **state)
{
    struct mvm_vm *vm = fake_vm();
    struct mvm_linux_image img;
    struct boot_params bp;
    uint8_t initrd[5000], kbyte;
    uint64_t pml4, pd0;
    char cmd[32];
    size_t n;
    uint8_t *b = fake_bz(&n);

    (void)state;
    memset(initrd, 0xab, sizeof(initrd));
    assert_int_equal(mvm_linux_parse(b, n, &img), 0);
    assert_int_equal(vm_linux_load(vm, &img, b, n, initrd, sizeof(initrd), "console=ttyS0", RAM_SIZE), 0);
    assert_int_equal(vm_read(vm, MVM_LINUX_PARAMS_GPA, &bp, sizeof(bp)), 0);
    assert_int_equal(bp.hdr.boot_flag, 0xaa55);
    assert_int_equal(bp.hdr.type_of_loader, 0xff);
    assert_int_equal(bp.hdr.cmd_line_ptr, MVM_LINUX_CMDLINE_GPA);
    assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd));
    /* The initrd: page-aligned, ending by RAM's end, above the kernel's init_size. */
    assert_int_equal(bp.hdr.ramdisk_image % 4096, 0);
    assert_true(bp.hdr.ramdisk_image + sizeof(initrd) <= RAM_SIZE);
    assert_true(bp.hdr.ramdisk_image >= MVM_LINUX_KERNEL_GPA + 0x10000);
    assert_int_equal(bp.e820_entries, 3);
    assert_int_equal(bp.e820_table[2].addr + bp.e820_table[2].size, RAM_SIZE);
    assert_int_equal(bp.e820_table[1].type, MVM_E820_RESERVED);
    assert_int_equal(vm_read(vm, MVM_LINUX_CMDLINE_GPA, cmd, sizeof(cmd)), 0);
    assert_string_equal(cmd, "console=ttyS0");
    assert_int_equal(vm_read(vm, MVM_LINUX_KERNEL_GPA, &kbyte, 1), 0);
    assert_int_equal(kbyte, 0x90);
    assert_int_equal(img.entry_gpa, MVM_LINUX_KERNEL_GPA + 0x200);
    /* The identity map: PML4[0] -> PDPT, PD[0] maps 2 MiB page 0. */
    assert_int_equal(vm_read(vm, MVM_LINUX_PML4_GPA, &pml4, 8), 0);
    assert_int_equal(pml4 & ~0xfffull, MVM_LINUX_PDPT_GPA);
    assert_int_equal(vm_read(vm, MVM_LINUX_PD_GPA + 8, &pd0, 8), 0);
    assert_int_equal(pd0 & ~0xfffull, 0x200000);
    /* What does not fit is refused, and says why. */
    img.init_size = RAM_SIZE;
    assert_int_equal(vm_linux_load(vm, &img, b, n, NULL, 0, "", RAM_SIZE), -EINVAL);
    assert_non_null(strstr(mvm_error(), "RAM ends at"));
    img.init_size = 0x10000;
    img.cmdline_size = 4;
    assert_int_equal(vm_linux_load(vm, &img, b, n, NULL, 0, "console=ttyS0", RAM_SIZE), -EINVAL);
    assert_non_null(strstr(mvm_error(), "cmdline_size"));
    free(b);
    fake_vm_free(vm);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;

    while (n--)
        s = (uint8_t)(s + *p++);
    return s;
}

/* The ACPI tables: every checksum holds, the pointers chain, the DSDT names both devices and \_S5. */
static void acpi_tables(void **state)
{
    struct mvm_vm *vm = fake_vm();
    uint8_t *ram = vm->slots[0].hva, *rsdp, *xsdt, *fadt, *dsdt;
    uint64_t rsdp_gpa = 0, x;
    uint32_t len;

    (void)state;
    assert_int_equal(vm_linux_acpi_write(vm, 0x3fd00000, 0x1000, 5, &rsdp_gpa), 0);
    rsdp = ram + rsdp_gpa;
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    assert_int_equal(sum(rsdp, 20), 0);
    assert_int_equal(sum(rsdp, 36), 0);
    memcpy(&x, rsdp + 24, 8);
    xsdt = ram + x;
    memcpy(&len, xsdt + 4, 4);
    assert_memory_equal(xsdt, "XSDT", 4);
    assert_int_equal(sum(xsdt, len), 0);
    memcpy(&x, xsdt + 36, 8);
    fadt = ram + x;
    assert_memory_equal(fadt, "FACP", 4);
    memcpy(&len, fadt + 4, 4);
    assert_int_equal(len, 276);
    assert_int_equal(sum(fadt, len), 0);
    memcpy(&x, xsdt + 44, 8);
    assert_memory_equal(ram + x, "APIC", 4);
    memcpy(&len, ram + x + 4, 4);
    assert_int_equal(sum(ram + x, len), 0);
    memcpy(&x, fadt + 140, 8);
    dsdt = ram + x;
    assert_memory_equal(dsdt, "DSDT", 4);
    memcpy(&len, dsdt + 4, 4);
    assert_int_equal(sum(dsdt, len), 0);
    assert_non_null(memmem(dsdt, len, "LNRO0005", 8));
    assert_non_null(memmem(dsdt, len, "\x08_S5_", 5));
    assert_non_null(memmem(dsdt, len, "COM1", 4));
    assert_non_null(memmem(dsdt, len, "\x86\x09\x00\x01\x00\x00\xd0\x3f\x00\x10\x00\x00", 12));
    fake_vm_free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_good),  cmocka_unit_test(parse_refuses), cmocka_unit_test(parse_random),
        cmocka_unit_test(load_layout), cmocka_unit_test(acpi_tables),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
