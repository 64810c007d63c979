/*
 * Guest-physical memory above 4 GiB: RAM in a 256 MiB slot that straddles 4 GiB and in a 48 GiB slot at 8 GiB
 * (three pages of it touched), MMIO where no slot is above 4 GiB, and accesses that straddle 4 GiB, and RAM into
 * MMIO and back. The guest maps what it reaches with its own 2 MiB pages (the VMM's tables map the first GiB).
 * Run with --mode long --mem-at 0xf8000000:256M --mem-at 0x200000000:48G.
 */
#include "runtime/runtime.h"

#define GIB          (1ull << 30)
#define LOW_SLOT_END (4 * GIB + (128ull << 20)) /* the slot straddling 4 GiB: [4 GiB - 128 MiB, here) */
#define BIG_SLOT     (8 * GIB)                  /* the 48 GiB slot: [8 GiB, 56 GiB) */
#define BIG_SLOT_END (56 * GIB)
#define PD_POOL      0x100000 /* page directories this guest adds, one a GiB, in its RAM at 0 */
#define PTE_P        0x1ull
#define PTE_RW       0x2ull
#define PTE_PS       0x80ull
#define PTE_ADDR     0x000ffffffffff000ull

static uint64_t pd_next = PD_POOL;

/* Identity-maps the GiB holding gpa with 2 MiB pages, where nothing maps it yet. */
static void map_gib(uint64_t gpa)
{
    uint64_t *pml4 = (uint64_t *)(cr3_read() & PTE_ADDR);
    uint64_t *pdpt = (uint64_t *)(pml4[0] & PTE_ADDR);
    uint64_t i = gpa / GIB;
    if (pdpt[i] & PTE_P)
        return;
    uint64_t *pd = (uint64_t *)pd_next;
    pd_next += 4096;
    for (uint64_t j = 0; j < 512; j++)
        pd[j] = (i * GIB + (j << 21)) | PTE_P | PTE_RW | PTE_PS;
    pdpt[i] = (uint64_t)pd | PTE_P | PTE_RW;
}

static inline uint8_t rd8(uint64_t gpa)
{
    return *(volatile uint8_t *)gpa;
}
static inline uint16_t rd16(uint64_t gpa)
{
    return *(volatile uint16_t *)gpa;
}
static inline uint32_t rd32(uint64_t gpa)
{
    return *(volatile uint32_t *)gpa;
}
static inline uint64_t rd64(uint64_t gpa)
{
    return *(volatile uint64_t *)gpa;
}
static inline void wr32(uint64_t gpa, uint32_t x)
{
    *(volatile uint32_t *)gpa = x;
}
static inline void wr64(uint64_t gpa, uint64_t x)
{
    *(volatile uint64_t *)gpa = x;
}

void guest_main(void)
{
    static const uint64_t reach[] = {3 * GIB,  4 * GIB,  6 * GIB,  7 * GIB, 8 * GIB,
                                     32 * GIB, 55 * GIB, 56 * GIB, 60 * GIB};
    for (unsigned i = 0; i < sizeof(reach) / sizeof(reach[0]); i++)
        map_gib(reach[i]);
    __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");

    /* RAM straddling 4 GiB: one unaligned 8-byte store across it, read back whole and byte by byte. */
    GUEST_ASSERT_EQ(rd64(4 * GIB - 4), 0, "fresh RAM around 4 GiB reads as zero");
    wr64(4 * GIB - 4, 0x1122334455667788ull);
    GUEST_ASSERT_EQ(rd64(4 * GIB - 4), 0x1122334455667788ull, "the store across 4 GiB reads back");
    GUEST_ASSERT_EQ(rd8(4 * GIB - 1), 0x55, "the byte below 4 GiB");
    GUEST_ASSERT_EQ(rd8(4 * GIB), 0x44, "the byte at 4 GiB");
    GUEST_ASSERT_EQ(rd32(4 * GIB), 0x11223344u, "the half above 4 GiB");
    guest_printf("ram across 4 GiB: %lx\n", (unsigned long)rd64(4 * GIB - 4));

    /* The large slot: its first page, one in the middle and its last bytes, the rest never touched. */
    GUEST_ASSERT_EQ(rd64(BIG_SLOT), 0, "fresh RAM at 8 GiB");
    wr64(BIG_SLOT, 0x8888);
    wr64(32 * GIB + 0x123000, 0x3232);
    wr64(BIG_SLOT_END - 8, 0x5656);
    GUEST_ASSERT_EQ(rd64(BIG_SLOT) + rd64(32 * GIB + 0x123000) + rd64(BIG_SLOT_END - 8), 0x8888 + 0x3232 + 0x5656,
                    "the large slot keeps what was written");
    guest_printf("ram at 8, 32 and 56 GiB: %lx %lx %lx\n", (unsigned long)rd64(BIG_SLOT),
                 (unsigned long)rd64(32 * GIB + 0x123000), (unsigned long)rd64(BIG_SLOT_END - 8));

    /* MMIO above 4 GiB (no slot): each width, read and written; nothing claims it, so reads are all ones. */
    uint64_t mmio = 6 * GIB + 0x1000;
    guest_printf("mmio at 6 GiB: %x %x %x %lx\n", rd8(mmio), rd16(mmio + 2), rd32(mmio + 4),
                 (unsigned long)rd64(mmio + 8));
    wr32(mmio + 0x10, 0xcafe);
    wr64(mmio + 0x18, 0x1234567890abcdefull);
    guest_printf("mmio at 60 GiB: %lx\n", (unsigned long)rd64(60 * GIB + 0x40));
    wr64(60 * GIB + 0x48, 0xfeedull);

    /* Straddles: the end of RAM into MMIO, MMIO into RAM, each above 4 GiB; and the end of the large slot. */
    wr64(LOW_SLOT_END - 4, 0xa1a2a3a4b1b2b3b4ull);
    guest_printf("ram into mmio at 4 GiB + 128 MiB: %lx, ram half %x\n", (unsigned long)rd64(LOW_SLOT_END - 4),
                 rd32(LOW_SLOT_END - 4));
    wr64(BIG_SLOT - 4, 0xc1c2c3c4d1d2d3d4ull);
    guest_printf("mmio into ram at 8 GiB: %lx, ram half %x\n", (unsigned long)rd64(BIG_SLOT - 4), rd32(BIG_SLOT));
    wr64(BIG_SLOT_END - 4, 0xe1e2e3e4f1f2f3f4ull);
    guest_printf("ram into mmio at 56 GiB: %lx\n", (unsigned long)rd64(BIG_SLOT_END - 4));
}
