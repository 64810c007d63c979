/* Lab 3 guest: touches guest-physical memory no memory slot covers: mapped in its page tables, yet an MMIO exit. */
#include "runtime/runtime.h"

#define HOLE_GPA 0x400000ull /* 4 MiB: identity-mapped by the VMM's 2 MiB pages, beyond the 2 MiB of RAM */

void guest_main(void)
{
    volatile uint32_t *hole = (volatile uint32_t *)(uintptr_t)HOLE_GPA;
    uint32_t first = hole[0];

    if (first == 0xffffffff) {
        /* No slot, no handler: the VMM's bus answered, as a PC reads all ones from nothing. */
        guest_printf("gpa 0x%lx: no memory slot; the read became an MMIO exit and came back 0x%x\n",
                     (unsigned long)HOLE_GPA, first);
        return;
    }
    guest_printf("gpa 0x%lx: first read 0x%x; the VMM added memory there\n", (unsigned long)HOLE_GPA, first);
    GUEST_ASSERT_EQ(first, 0, "fresh guest RAM reads as zero");
    for (unsigned i = 0; i < 1024; i++)
        hole[i] = i * 7;
    for (unsigned i = 0; i < 1024; i++)
        GUEST_ASSERT_EQ(hole[i], i * 7, "the hot-added RAM keeps what was written");
    guest_printf("1024 writes and reads there, no further exits\n");
}
