/* libFuzzer target: the image loader's checks (vm_load_file) and the mode set-ups' checks of load and entry addresses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_backend.h"
#include "fuzz_util.h"
#include "lab_parts.h"

/*
 * Input: a header, then the image file's bytes.
 *   byte 0        low 2 bits: memory slots to add (1..3, 0 counts as 1); bit 2: run the mode set-ups too
 *   bytes 1-12    per slot: u16 first page (0xffff: the top of the 64-bit space), u16 pages (taken 1..64)
 *   bytes 13-20   u64 load gpa, as given with --load
 *   bytes 21-28   u64 entry, as given with --entry
 * What must hold: the image loads exactly when one added slot holds all of it, lands byte for byte, and
 * nothing else in guest RAM changes; the set-ups accept exactly the entries their contracts allow.
 */
#define HDR            29
#define MAX_SLOT_PAGES 64

struct slot {
    uint64_t gpa, size;
    bool added;
};

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint16_t get_u16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* True when [gpa, gpa + len) lies inside one added slot (computed in 128 bits: nothing can wrap). */
static bool covered(const struct slot *s, int n, uint64_t gpa, uint64_t len)
{
    for (int i = 0; i < n; i++)
        if (s[i].added && gpa >= s[i].gpa && (unsigned __int128)gpa + len <= (unsigned __int128)s[i].gpa + s[i].size)
            return true;
    return false;
}

/* Every byte of the slots outside [skip, skip + len) is still zero. */
static bool ram_zero_except(struct mvm_vm *vm, const struct slot *s, int n, uint64_t skip, uint64_t len)
{
    static const uint8_t zero[X86_PAGE_SIZE];

    for (int i = 0; i < n; i++) {
        const uint8_t *p = s[i].added ? vm_gpa_to_hva(vm, s[i].gpa, s[i].size) : NULL;

        for (uint64_t off = 0; p && off < s[i].size; off += X86_PAGE_SIZE) {
            uint64_t page = s[i].gpa + off;
            bool touched = len && (unsigned __int128)skip < (unsigned __int128)page + X86_PAGE_SIZE &&
                           (unsigned __int128)skip + len > page;

            if (!touched && memcmp(p + off, zero, X86_PAGE_SIZE) != 0)
                return false;
            for (uint64_t k = 0; touched && k < X86_PAGE_SIZE; k++)
                if (p[off + k] && !(page + k >= skip && page + k - skip < len))
                    return false;
        }
    }
    return true;
}

static void setups_check(struct mvm_vm *vm, struct mvm_vcpu *vcpu, const struct slot *s, int n, uint64_t entry)
{
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    bool gdt_ok = covered(s, n, MVM_BOOT_GDT_GPA, MVM_BOOT_GDT_ENTRIES * 8);
    uint64_t cr3 = 0, gpa;
    int rc;

    rc = lab1_vcpu_setup_real(vcpu, entry);
    FUZZ_CHECK((rc == 0) == (entry < 0x100000), "real-mode set-up: entry 0x%llx gave %d", (unsigned long long)entry,
               rc);
    if (rc == 0) {
        const struct kvm_sregs *sr = &fuzz_backend_sregs;

        FUZZ_CHECK(sr->cs.base == (uint64_t)sr->cs.selector << 4 && sr->cs.base + fuzz_backend_regs.rip == entry &&
                       fuzz_backend_regs.rip <= 0xffff && sr->ss.base == sr->cs.base && sr->ds.base == sr->cs.base,
                   "real-mode set-up: entry 0x%llx became CS %04x:%04llx", (unsigned long long)entry, sr->cs.selector,
                   (unsigned long long)fuzz_backend_regs.rip);
    }
    rc = lab2_vcpu_setup_protected(vcpu, entry);
    FUZZ_CHECK((rc == 0) == (entry <= 0xffffffffull && gdt_ok), "protected set-up: entry 0x%llx, GDT %s RAM: %d",
               (unsigned long long)entry, gdt_ok ? "in" : "not in", rc);
    if (rc == 0)
        FUZZ_CHECK(fuzz_backend_regs.rip == entry && (fuzz_backend_sregs.cr0 & X86_CR0_PE),
                   "protected set-up: rip 0x%llx for entry 0x%llx", (unsigned long long)fuzz_backend_regs.rip,
                   (unsigned long long)entry);
    rc = lab3_page_tables_build(vm, &pool, &cr3);
    FUZZ_CHECK(rc == 0 || rc == -EFAULT || rc == -ENOSPC, "lab3_page_tables_build: %d", rc);
    if (rc < 0)
        return;
    FUZZ_CHECK(covered(s, n, MVM_BOOT_PT_POOL_GPA, X86_PAGE_SIZE), "page tables built outside RAM");
    rc = lab3_vcpu_setup_long(vcpu, entry, cr3);
    bool canonical = (uint64_t)((int64_t)(entry << 16) >> 16) == entry;

    FUZZ_CHECK((rc == 0) == (canonical && gdt_ok), "long-mode set-up: entry 0x%llx: %d", (unsigned long long)entry, rc);
    if (rc == 0 && entry >= X86_PAGE_SIZE && entry < MVM_IDENTITY_MAP_SIZE) {
        /* The standard tables map [4 KiB, 1 GiB) identity: the walker must agree. */
        rc = lab3_gva_to_gpa(vm, cr3, entry, &gpa);
        FUZZ_CHECK(rc == 0 && gpa == entry, "walk of identity-mapped 0x%llx: rc %d gpa 0x%llx",
                   (unsigned long long)entry, rc, (unsigned long long)gpa);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_memfile file;
    struct slot s[3] = {{0}};
    uint8_t hdr[HDR] = {0};
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    size_t len = size > HDR ? size - HDR : 0, loaded = 0;
    int n, rc;

    memcpy(hdr, data, size < HDR ? size : HDR);
    FUZZ_CHECK(fuzz_memfile_set(&file, data + (size - len), len) == 0, "memfd: %s", strerror(errno));
    FUZZ_CHECK(vm_create(&fuzz_backend_null, &vm) == 0, "vm_create: %s", mvm_error());
    n = (hdr[0] & 3) ? hdr[0] & 3 : 1;
    for (int i = 0; i < n; i++) {
        uint16_t page = get_u16(hdr + 1 + 4 * i), pages = get_u16(hdr + 3 + 4 * i) % MAX_SLOT_PAGES + 1;

        s[i].size = (uint64_t)pages * X86_PAGE_SIZE;
        s[i].gpa = page == 0xffff ? 0 - s[i].size : (uint64_t)page * X86_PAGE_SIZE;
        s[i].added = vm_mem_add(vm, s[i].gpa, s[i].size, 0) == 0;
    }
    uint64_t gpa = get_u64(hdr + 13), entry = get_u64(hdr + 21);
    bool fits = len > 0 && covered(s, n, gpa, len);

    rc = vm_load_file(vm, file.path, gpa, &loaded);
    FUZZ_CHECK((rc == 0) == fits, "vm_load_file of %zu bytes at 0x%llx: rc %d (%s), but it %s", len,
               (unsigned long long)gpa, rc, rc ? mvm_error() : "ok", fits ? "fits" : "does not fit");
    if (rc == 0) {
        FUZZ_CHECK(loaded == len, "loaded %zu of %zu bytes", loaded, len);
        FUZZ_CHECK(!memcmp(vm_gpa_to_hva(vm, gpa, len), data + HDR, len), "the image landed wrong");
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -EFBIG, "vm_load_file: unexpected error %d: %s", rc, mvm_error());
        FUZZ_CHECK(mvm_error()[0], "vm_load_file failed without a message");
    }
    FUZZ_CHECK(ram_zero_except(vm, s, n, gpa, rc == 0 ? len : 0), "vm_load_file wrote outside the image's range");
    if ((hdr[0] & 4) && vcpu_create(vm, 0, &vcpu) == 0)
        setups_check(vm, vcpu, s, n, entry);
    vm_destroy(vm);
    return 0;
}
