/* Lab 2 guest: the descriptor cache. A segment keeps the base it was loaded with until its selector is reloaded. */
#include "runtime/runtime.h"

#define SEL_WINDOW 0x18 /* GDT entry 3: a data segment whose base the guest moves */

static uint64_t gdt[4] __attribute__((aligned(8)));
/* Two 4 KiB pages with different contents; the window segment points at one or the other. */
static uint32_t pages[2][1024] __attribute__((aligned(4096)));

/* A flat-style 32-bit data descriptor with the given base and a 4 KiB, byte-granular limit. */
static uint64_t data_desc(uint32_t base)
{
    return 0xfffull | ((uint64_t)(base & 0xffffff) << 16) | (0x93ull << 40) | (0x4ull << 52) |
           ((uint64_t)(base >> 24) << 56);
}

/* Reads the first word of the window through FS, whatever base FS's hidden cache holds. */
static uint32_t window_read(void)
{
    uint32_t v;

    __asm__ volatile("movl %%fs:0, %0" : "=r"(v) : : "memory");
    return v;
}

void guest_main(void)
{
    struct desc_table_ptr gdtr = {sizeof(gdt) - 1, (uintptr_t)gdt};
    uint32_t before, stale, after;

    pages[0][0] = 0xaaaa0000;
    pages[1][0] = 0xbbbb1111;
    /* Same code and data as the VMM's boot GDT, plus the window. */
    gdt[1] = 0x00cf9b000000ffffull;
    gdt[2] = 0x00cf93000000ffffull;
    gdt[3] = data_desc((uint32_t)(uintptr_t)pages[0]);
    gdt_load(&gdtr);
    fs_write(SEL_WINDOW);
    before = window_read();
    guest_printf("FS -> page 0: reads 0x%x\n", before);
    GUEST_ASSERT_EQ(before, 0xaaaa0000, "FS loaded with base = page 0");

    /* Move the window in memory only: the CPU does not look at the GDT again... */
    gdt[3] = data_desc((uint32_t)(uintptr_t)pages[1]);
    stale = window_read();
    guest_printf("GDT entry now says page 1, FS not reloaded: reads 0x%x (the cached base)\n", stale);
    GUEST_ASSERT_EQ(stale, 0xaaaa0000, "the descriptor cache keeps the old base until FS is reloaded");

    /* ...until the selector is loaded again. */
    fs_write(SEL_WINDOW);
    after = window_read();
    guest_printf("FS reloaded: reads 0x%x\n", after);
    GUEST_ASSERT_EQ(after, 0xbbbb1111, "reloading FS reads the new descriptor");

    /* Leave the VMM a difference to see: the GDT says page 0 again, FS's cache still says page 1. */
    gdt[3] = data_desc((uint32_t)(uintptr_t)pages[0]);
    guest_printf("FS cache base 0x%x, GDT entry base 0x%x\n", (unsigned)(uintptr_t)pages[1],
                 (unsigned)(uintptr_t)pages[0]);
}
