/*
 * The smallest ACPI a PC kernel needs to find virtio-mmio and to power off: RSDP, XSDT, a hardware-reduced
 * FADT (no PM1 blocks, no SCI; sleep and reset through two I/O ports), a MADT (one LAPIC, KVM's IOAPIC) and
 * a DSDT that names the virtio-mmio window as device "LNRO0005" (what Linux's virtio_mmio matches) and \_S5.
 * Layouts from the ACPI 6.4 specification (5.2); the uapi headers carry none of them.
 */
#include <errno.h>
#include <string.h>

#include "boot_linux.h"
#include "abi.h"

#define SDT_HEADER_LEN 36
#define FADT_LEN       276 /* revision 6 */
#define FADT_REVISION  6
#define FADT_MINOR     4
/* Byte offsets in the FADT (ACPI 6.4, table 5.9). */
#define FADT_DSDT             40
#define FADT_IAPC_BOOT_ARCH   109
#define FADT_FLAGS            112
#define FADT_RESET_REG        116
#define FADT_RESET_VALUE      128
#define FADT_MINOR_VERSION    131
#define FADT_X_DSDT           140
#define FADT_SLEEP_CONTROL    244
#define FADT_SLEEP_STATUS     256
#define FADT_HYPERVISOR_ID    268
#define FADT_F_RESET_REG_SUP  (1u << 10)
#define FADT_F_HW_REDUCED     (1u << 20)
#define BOOT_ARCH_VGA_ABSENT  (1u << 2)
#define BOOT_ARCH_NO_CMOS_RTC (1u << 5)
#define GAS_SYSTEM_IO         1
#define GAS_ACCESS_BYTE       1
#define MADT_LAPIC            0
#define MADT_IOAPIC           1
#define MADT_PCAT_COMPAT      1u
#define LAPIC_GPA             0xfee00000u
#define IOAPIC_GPA            0xfec00000u
/* AML opcodes (ACPI 6.4, 20.3). */
#define AML_ZERO    0x00
#define AML_NAME    0x08
#define AML_BYTE    0x0a
#define AML_DWORD   0x0c
#define AML_STRING  0x0d
#define AML_SCOPE   0x10
#define AML_BUFFER  0x11
#define AML_PACKAGE 0x12
#define AML_EXT     0x5b
#define AML_DEVICE  0x82
#define AML_ROOT    0x5c
/* Resource descriptors (6.4.3). */
#define RES_MEM32_FIXED       0x86
#define RES_EXT_IRQ           0x89
#define RES_END               0x79
#define RES_IO                0x47 /* small: I/O port range, 7 bytes */
#define RES_IRQ               0x22 /* small: IRQ mask, 2 bytes (edge, active high) */
#define RES_IRQ_CONSUMER_EDGE 0x03 /* consumer, edge-triggered, active high, exclusive */

/* Where the tables go: the BIOS area (e820 reserved), where Linux also looks for an RSDP by itself. */
#define ACPI_RSDP_GPA 0xe0000ull
#define ACPI_XSDT_GPA 0xe0040ull
#define ACPI_FADT_GPA 0xe0100ull
#define ACPI_MADT_GPA 0xe0300ull
#define ACPI_DSDT_GPA 0xe0400ull
#define ACPI_END_GPA  0xe1000ull

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;

    while (n--)
        sum = (uint8_t)(sum + *p++);
    return (uint8_t)-sum;
}

/* A system description table's header; the checksum is filled last (sdt_finish). */
static void sdt_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "MINVMM", 6);
    memcpy(t + 16, "MINIVMM ", 8);
    put32(t + 24, 1);
    memcpy(t + 28, "MVMM", 4);
    put32(t + 32, 1);
}

static void sdt_finish(uint8_t *t, uint32_t len)
{
    t[9] = 0;
    t[9] = checksum(t, len);
}

/* A generic address structure: one byte at an I/O port. */
static void gas_port(uint8_t *p, uint16_t port)
{
    p[0] = GAS_SYSTEM_IO;
    p[1] = 8;
    p[2] = 0;
    p[3] = GAS_ACCESS_BYTE;
    put64(p + 4, port);
}

/* An AML package length (20.2.4) in front of `n` bytes of body: returns the bytes it took (1 or 2). */
static size_t aml_pkglen(uint8_t *p, size_t n)
{
    if (n + 1 < 0x40) {
        p[0] = (uint8_t)(n + 1);
        return 1;
    }
    n += 2;
    p[0] = (uint8_t)(0x40 | (n & 0xf));
    p[1] = (uint8_t)(n >> 4);
    return 2;
}

/* Wraps body[0..n) as OP PkgLength body (op is 1 or 2 bytes); returns the new length at out. */
static size_t aml_wrap(uint8_t *out, const uint8_t *op, size_t oplen, const uint8_t *body, size_t n)
{
    size_t used = oplen;

    memcpy(out, op, oplen);
    used += aml_pkglen(out + used, n);
    memcpy(out + used, body, n);
    return used + n;
}

/*
 * Device (NAME) { Name (_HID, hid) Name (_UID, uid) Name (_CRS, Buffer { res }) } into out; returns its length.
 * hid is the AML of the value: a string ("LNRO0005") or an EISA ID as a DWordConst.
 */
static size_t aml_device(uint8_t *out, const char name[4], const uint8_t *hid, size_t hid_len, uint8_t uid,
                         const uint8_t *res, size_t nres)
{
    static const uint8_t op_buffer[] = {AML_BUFFER}, op_device[] = {AML_EXT, AML_DEVICE};
    uint8_t body[160], crs[80];
    size_t b = 0, c = 0;

    memcpy(body, name, 4);
    b += 4;
    memcpy(body + b, "\x08_HID", 5);
    b += 5;
    memcpy(body + b, hid, hid_len);
    b += hid_len;
    memcpy(body + b, "\x08_UID\x0a", 6);
    b += 6;
    body[b++] = uid;
    memcpy(body + b, "\x08_CRS", 5);
    b += 5;
    crs[c++] = AML_BYTE;
    crs[c++] = (uint8_t)nres;
    memcpy(crs + c, res, nres);
    c += nres;
    b += aml_wrap(body + b, op_buffer, 1, crs, c);
    return aml_wrap(out, op_device, 2, body, b);
}

/*
 * The DSDT's AML: in \_SB, COM1 (PNP0501: its IRQ4 then reaches Linux through ACPI, since a hardware-reduced
 * machine has no legacy PIC and so no legacy ISA interrupts) and the virtio-mmio device with its window
 * and interrupt; \_S5 for power-off.
 */
static size_t dsdt_aml(uint8_t *out, uint64_t mmio_gpa, uint32_t mmio_len, uint32_t irq)
{
    static const uint8_t op_scope[] = {AML_SCOPE}, op_package[] = {AML_PACKAGE};
    static const uint8_t s5_body[] = {2, AML_BYTE, 5, AML_ZERO};          /* Package (2) { 5, 0 }: SLP_TYPa 5 */
    static const uint8_t hid_virtio[] = "\x0dLNRO0005";                   /* with its NUL */
    static const uint8_t hid_com[] = {AML_DWORD, 0x41, 0xd0, 0x05, 0x01}; /* EisaId ("PNP0501") */
    uint8_t res[32], scope[400];
    size_t n = 0, c;

    memcpy(scope, "\x5c_SB_", 5);
    c = 5;
    /* COM1: IO (Decode16, 0x3f8, 0x3f8, 1, 8), IRQNoFlags () { 4 } */
    res[n++] = RES_IO;
    res[n++] = 1;
    put16(res + n, MVM_PORT_SERIAL);
    put16(res + n + 2, MVM_PORT_SERIAL);
    n += 4;
    res[n++] = 1;
    res[n++] = 8;
    res[n++] = RES_IRQ;
    put16(res + n, (uint16_t)(1u << MVM_LINUX_COM1_IRQ));
    n += 2;
    res[n++] = RES_END;
    res[n++] = 0;
    c += aml_device(scope + c, "COM1", hid_com, sizeof(hid_com), 1, res, n);
    /* virtio-mmio: Memory32Fixed (ReadWrite, base, len), Interrupt (ResourceConsumer, Edge, ActiveHigh) { irq } */
    n = 0;
    res[n++] = RES_MEM32_FIXED;
    put16(res + n, 9);
    n += 2;
    res[n++] = 1; /* read/write */
    put32(res + n, (uint32_t)mmio_gpa);
    put32(res + n + 4, mmio_len);
    n += 8;
    res[n++] = RES_EXT_IRQ;
    put16(res + n, 6);
    n += 2;
    res[n++] = RES_IRQ_CONSUMER_EDGE;
    res[n++] = 1;
    put32(res + n, irq);
    n += 4;
    res[n++] = RES_END;
    res[n++] = 0;
    c += aml_device(scope + c, "VR00", hid_virtio, sizeof(hid_virtio), 0, res, n);
    n = aml_wrap(out, op_scope, 1, scope, c);
    /* Name (_S5, Package (2) { 5, 0 }) at the root */
    memcpy(out + n, "\x08_S5_", 5);
    n += 5;
    n += aml_wrap(out + n, op_package, 1, s5_body, sizeof(s5_body));
    return n;
}

int vm_linux_acpi_write(struct mvm_vm *vm, uint64_t mmio_gpa, uint32_t mmio_len, uint32_t irq, uint64_t *rsdp_gpa)
{
    uint8_t t[ACPI_END_GPA - ACPI_RSDP_GPA];
    uint8_t *rsdp = t, *xsdt = t + (ACPI_XSDT_GPA - ACPI_RSDP_GPA), *fadt = t + (ACPI_FADT_GPA - ACPI_RSDP_GPA),
            *madt = t + (ACPI_MADT_GPA - ACPI_RSDP_GPA), *dsdt = t + (ACPI_DSDT_GPA - ACPI_RSDP_GPA);
    uint32_t len;
    size_t aml;

    _Static_assert(ACPI_END_GPA <= 0x100000 && ACPI_RSDP_GPA >= MVM_LINUX_EBDA_GPA, "ACPI in the BIOS area");
    memset(t, 0, sizeof(t));
    /* DSDT */
    aml = dsdt_aml(dsdt + SDT_HEADER_LEN, mmio_gpa, mmio_len, irq);
    len = (uint32_t)(SDT_HEADER_LEN + aml);
    if (ACPI_DSDT_GPA + len > ACPI_END_GPA)
        return mvm_fail(ENOSPC, "ACPI: the DSDT (%u bytes) does not fit", len);
    sdt_header(dsdt, "DSDT", len, 2);
    sdt_finish(dsdt, len);
    /* FADT: hardware-reduced, the DSDT, sleep and reset registers on ports, no VGA, no CMOS clock. */
    sdt_header(fadt, "FACP", FADT_LEN, FADT_REVISION);
    put32(fadt + FADT_DSDT, (uint32_t)ACPI_DSDT_GPA);
    put64(fadt + FADT_X_DSDT, ACPI_DSDT_GPA);
    put16(fadt + FADT_IAPC_BOOT_ARCH, BOOT_ARCH_VGA_ABSENT | BOOT_ARCH_NO_CMOS_RTC);
    put32(fadt + FADT_FLAGS, FADT_F_HW_REDUCED | FADT_F_RESET_REG_SUP);
    gas_port(fadt + FADT_RESET_REG, MVM_LINUX_ACPI_RESET_PORT);
    fadt[FADT_RESET_VALUE] = MVM_LINUX_ACPI_RESET_VALUE;
    fadt[FADT_MINOR_VERSION] = FADT_MINOR;
    gas_port(fadt + FADT_SLEEP_CONTROL, MVM_LINUX_ACPI_SLEEP_PORT);
    gas_port(fadt + FADT_SLEEP_STATUS, MVM_LINUX_ACPI_SLEEP_PORT + 1);
    memcpy(fadt + FADT_HYPERVISOR_ID, "MINIVMM", 7);
    sdt_finish(fadt, FADT_LEN);
    /* MADT: the boot CPU's LAPIC and KVM's IOAPIC (GSI 0-23; no overrides: KVM routes ISA IRQ n to pin n). */
    len = SDT_HEADER_LEN + 8 + 8 + 12;
    sdt_header(madt, "APIC", len, 5);
    put32(madt + 36, LAPIC_GPA);
    put32(madt + 40, MADT_PCAT_COMPAT);
    madt[44] = MADT_LAPIC;
    madt[45] = 8;
    madt[46] = 0;        /* processor UID */
    madt[47] = 0;        /* APIC ID */
    put32(madt + 48, 1); /* enabled */
    madt[52] = MADT_IOAPIC;
    madt[53] = 12;
    madt[54] = 0; /* IOAPIC ID: what KVM's IOAPIC reports */
    put32(madt + 56, IOAPIC_GPA);
    put32(madt + 60, 0); /* GSI base */
    sdt_finish(madt, len);
    /* XSDT */
    len = SDT_HEADER_LEN + 2 * 8;
    sdt_header(xsdt, "XSDT", len, 1);
    put64(xsdt + 36, ACPI_FADT_GPA);
    put64(xsdt + 44, ACPI_MADT_GPA);
    sdt_finish(xsdt, len);
    /* RSDP, revision 2: the first 20 bytes checksummed, then all 36. */
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "MINVMM", 6);
    rsdp[15] = 2;
    put32(rsdp + 20, 36);
    put64(rsdp + 24, ACPI_XSDT_GPA);
    rsdp[8] = checksum(rsdp, 20);
    rsdp[32] = checksum(rsdp, 36);
    *rsdp_gpa = ACPI_RSDP_GPA;
    return vm_write(vm, ACPI_RSDP_GPA, t, sizeof(t));
}
