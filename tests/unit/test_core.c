/* Unit tests of the core that need no backend: the gpa translator, handler tables, exit formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_internal.h"
#include "device.h"

static uint8_t ram_low[0x4000], ram_high[0x2000];

/* A VM with two slots and no backend: enough for everything that never calls an ioctl. */
static struct mvm_vm *fake_vm(void)
{
    struct mvm_vm *vm = calloc(1, sizeof(*vm));

    assert_non_null(vm);
    vm->slots[0] = (struct mvm_slot){.gpa = 0, .size = sizeof(ram_low), .hva = ram_low};
    vm->slots[1] = (struct mvm_slot){.gpa = 0x100000, .size = sizeof(ram_high), .hva = ram_high};
    vm->nslots = 2;
    return vm;
}

/* A fake VM's end: its devices go as vm_destroy would let them go. */
static void fake_vm_free(struct mvm_vm *vm)
{
    vm_bus_destroy(vm);
    free(vm);
}

static void translator_bounds(void **state)
{
    struct mvm_vm *vm = fake_vm();

    (void)state;
    assert_ptr_equal(vm_gpa_to_hva(vm, 0, 1), ram_low);
    assert_ptr_equal(vm_gpa_to_hva(vm, 0x3fff, 1), ram_low + 0x3fff);
    assert_ptr_equal(vm_gpa_to_hva(vm, 0, sizeof(ram_low)), ram_low);
    assert_null(vm_gpa_to_hva(vm, 0x3fff, 2));        /* runs off the end of the slot */
    assert_null(vm_gpa_to_hva(vm, 0x4000, 1));        /* the gap between slots */
    assert_null(vm_gpa_to_hva(vm, 0x3000, 0x101000)); /* spans both slots and the gap */
    assert_ptr_equal(vm_gpa_to_hva(vm, 0x100010, 16), ram_high + 0x10);
    assert_null(vm_gpa_to_hva(vm, 0x101ff0, 0x20));
    /* Guest-chosen values that would overflow a naive gpa + len. */
    assert_null(vm_gpa_to_hva(vm, UINT64_MAX, 2));
    assert_null(vm_gpa_to_hva(vm, 0x10, UINT64_MAX));
    assert_null(vm_gpa_to_hva(vm, 0x100000, UINT64_MAX - 0xfffff));
    free(vm);
}

static void read_write_checked(void **state)
{
    struct mvm_vm *vm = fake_vm();
    uint8_t buf[4] = {1, 2, 3, 4}, out[4];

    (void)state;
    assert_int_equal(vm_write(vm, 0x100, buf, 4), 0);
    assert_int_equal(vm_read(vm, 0x100, out, 4), 0);
    assert_memory_equal(buf, out, 4);
    assert_int_equal(vm_write(vm, 0x3ffe, buf, 4), -EFAULT);
    assert_non_null(strstr(mvm_error(), "0x3ffe"));
    assert_int_equal(vm_read(vm, 0x5000, out, 1), -EFAULT);
    free(vm);
}

static int dummy_pio(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data, uint32_t size)
{
    (void)vcpu;
    (void)is_write;
    (void)size;
    *(int *)opaque += 1;
    data[0] = (uint8_t)port;
    return 0;
}

static void pio_table(void **state)
{
    struct mvm_vm *vm = fake_vm();
    struct mvm_vcpu vcpu = {.vm = vm};
    int calls = 0;
    uint8_t data[4];

    (void)state;
    assert_int_equal(vm_pio_register(vm, 0x3f8, 8, dummy_pio, &calls), 0);
    assert_int_equal(vm_pio_register(vm, 0x3ff, 1, dummy_pio, &calls), -EEXIST);
    assert_int_equal(vm_pio_register(vm, 0xfffe, 4, dummy_pio, &calls), -EINVAL);
    assert_int_equal(vm_pio_register(vm, 0x3f0, 0, dummy_pio, &calls), -EINVAL);
    assert_int_equal(vm_pio_dispatch(&vcpu, 0x3fd, false, data, 1), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(data[0], 0xfd);
    /* Unclaimed ports read as all ones, like an empty ISA bus. */
    memset(data, 0, sizeof(data));
    assert_int_equal(vm_pio_dispatch(&vcpu, 0x80, false, data, 4), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
    assert_int_equal(vm_pio_dispatch(&vcpu, 0x3f8, true, data, 3), -EINVAL);
    fake_vm_free(vm);
}

static void mmio_table(void **state)
{
    struct mvm_vm *vm = fake_vm();
    struct mvm_vcpu vcpu = {.vm = vm};
    uint8_t data[8] = {0};

    (void)state;
    assert_int_equal(vm_mmio_register(vm, 0xd0000000, 0x1000, NULL, NULL), 0);
    assert_int_equal(vm_mmio_register(vm, 0xd0000ff8, 0x10, NULL, NULL), -EEXIST);
    assert_int_equal(vm_mmio_register(vm, UINT64_MAX - 4, 0x10, NULL, NULL), -EINVAL);
    assert_int_equal(vm_mmio_dispatch(&vcpu, 0xe0000000, false, data, 8), 0);
    assert_int_equal(data[7], 0xff);
    assert_int_equal(vm_mmio_dispatch(&vcpu, 0xe0000000, false, data, 9), -EINVAL);
    fake_vm_free(vm);
}

static void exit_lines(void **state)
{
    union {
        struct kvm_run run;
        uint8_t page[8192];
    } u;
    char line[256];

    (void)state;
    memset(&u, 0, sizeof(u));
    u.run.exit_reason = KVM_EXIT_IO;
    u.run.io.direction = KVM_EXIT_IO_OUT;
    u.run.io.size = 2;
    u.run.io.port = 0x3f8;
    u.run.io.count = 2;
    u.run.io.data_offset = 4096;
    memcpy(u.page + 4096, "\x01\x02\xab\xcd", 4);
    mvm_exit_format(&u.run, line, sizeof(line));
    assert_string_equal(line, "IO out port=0x03f8 size=2 count=2 data=0102abcd");

    memset(&u, 0, sizeof(u));
    u.run.exit_reason = KVM_EXIT_MMIO;
    u.run.mmio.phys_addr = 0xd0000004;
    u.run.mmio.len = 4;
    u.run.mmio.is_write = 1;
    memcpy(u.run.mmio.data, "\x78\x56\x34\x12", 4);
    mvm_exit_format(&u.run, line, sizeof(line));
    assert_string_equal(line, "MMIO write gpa=0x00000000d0000004 len=4 data=78563412");

    u.run.exit_reason = KVM_EXIT_HLT;
    mvm_exit_format(&u.run, line, sizeof(line));
    assert_string_equal(line, "HLT");
    u.run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
    u.run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    mvm_exit_format(&u.run, line, sizeof(line));
    assert_string_equal(line, "INTERNAL_ERROR suberror=1");
    assert_string_equal(mvm_exit_name(999), "UNKNOWN");
}

static void load_file_errors(void **state)
{
    struct mvm_vm *vm = fake_vm();
    char path[] = "/tmp/minivmm-unit-XXXXXX";
    static uint8_t big[0x5000];
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(vm_load_file(vm, path, 0x1000, NULL), -EINVAL); /* empty */
    assert_int_equal(write(fd, big, sizeof(big)), (int)sizeof(big));
    close(fd);
    assert_int_equal(vm_load_file(vm, path, 0x0, NULL), -EFBIG);
    assert_non_null(strstr(mvm_error(), "do not fit"));
    assert_int_equal(vm_load_file(vm, "/nonexistent/guest.bin", 0, NULL), -ENOENT);
    assert_non_null(strstr(mvm_error(), "/nonexistent/guest.bin"));
    unlink(path);
    free(vm);
}

/* A device that records what the bus hands it. */
struct probe_dev {
    uint64_t last_off;
    uint32_t last_len;
    int reads, writes, resets;
    int *destroyed; /* bumped (with the order) by destroy */
    int order;
};

static int probe_read(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, uint8_t *data, uint32_t len)
{
    struct probe_dev *p = dev->priv;

    (void)vcpu;
    p->last_off = off, p->last_len = len, p->reads++;
    memset(data, 0x5a, len);
    return 0;
}

static int probe_write(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct probe_dev *p = dev->priv;

    (void)vcpu;
    (void)data;
    p->last_off = off, p->last_len = len, p->writes++;
    return 0;
}

static void probe_reset(struct mvm_device *dev)
{
    ((struct probe_dev *)dev->priv)->resets++;
}

static void probe_destroy(struct mvm_device *dev)
{
    struct probe_dev *p = dev->priv;

    p->order = ++*p->destroyed;
}

static const struct mvm_device_ops probe_ops = {
    .name = "probe",
    .read = probe_read,
    .write = probe_write,
    .reset = probe_reset,
    .destroy = probe_destroy,
};

/* Accessors get offsets into their range, never absolute ports or addresses; straddling MMIO is unclaimed. */
static void device_offsets(void **state)
{
    struct mvm_vm *vm = fake_vm();
    struct mvm_vcpu vcpu = {.vm = vm};
    int destroyed = 0;
    struct probe_dev pio = {.destroyed = &destroyed}, mmio = {.destroyed = &destroyed};
    uint8_t data[8] = {0};

    (void)state;
    assert_int_equal(vm_device_add(vm, &probe_ops, MVM_BUS_PIO, 0x3f8, 8, &pio, NULL), 0);
    assert_int_equal(vm_device_add(vm, &probe_ops, MVM_BUS_MMIO, 0xd0000000, 0x100, &mmio, NULL), 0);
    assert_int_equal(vm_pio_dispatch(&vcpu, 0x3fb, true, data, 1), 0);
    assert_int_equal(pio.last_off, 3);
    assert_int_equal(pio.writes, 1);
    assert_int_equal(vm_mmio_dispatch(&vcpu, 0xd0000010, false, data, 4), 0);
    assert_int_equal(mmio.last_off, 0x10);
    assert_int_equal(mmio.last_len, 4);
    assert_int_equal(data[3], 0x5a);
    /* 0xd00000fe + 4 runs past the device's end: nobody's access, reads all ones. */
    assert_int_equal(vm_mmio_dispatch(&vcpu, 0xd00000fe, false, data, 4), 0);
    assert_int_equal(mmio.reads, 1);
    assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
    assert_ptr_equal(vm_device_find(vm, MVM_BUS_PIO, 0x3ff)->priv, &pio);
    assert_null(vm_device_find(vm, MVM_BUS_PIO, 0x400));
    vm_devices_reset(vm);
    assert_int_equal(pio.resets + mmio.resets, 2);
    fake_vm_free(vm);
    /* Last added, first destroyed. */
    assert_int_equal(mmio.order, 1);
    assert_int_equal(pio.order, 2);
}

/* An overlap is refused with a message naming both devices, and the refused device's state is destroyed. */
static void device_overlap(void **state)
{
    struct mvm_vm *vm = fake_vm();
    int destroyed = 0;
    struct probe_dev a = {.destroyed = &destroyed}, b = {.destroyed = &destroyed};
    static const struct mvm_device_ops other_ops = {.name = "other", .destroy = probe_destroy};

    (void)state;
    assert_int_equal(vm_device_add(vm, &probe_ops, MVM_BUS_PIO, 0x500, 1, &a, NULL), 0);
    assert_int_equal(vm_device_add(vm, &other_ops, MVM_BUS_PIO, 0x4fe, 4, &b, NULL), -EEXIST);
    assert_non_null(strstr(mvm_error(), "other"));
    assert_non_null(strstr(mvm_error(), "probe"));
    assert_int_equal(b.order, 1);
    /* The same range in the other space is no overlap. */
    assert_int_equal(vm_device_add(vm, &other_ops, MVM_BUS_MMIO, 0x500, 1, &b, NULL), 0);
    assert_int_equal(vm_device_add(vm, &probe_ops, MVM_BUS_PIO, 0xffff, 2, &b, NULL), -EINVAL);
    fake_vm_free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(translator_bounds), cmocka_unit_test(read_write_checked), cmocka_unit_test(pio_table),
        cmocka_unit_test(mmio_table),        cmocka_unit_test(exit_lines),         cmocka_unit_test(load_file_errors),
        cmocka_unit_test(device_offsets),    cmocka_unit_test(device_overlap),
    };

    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
