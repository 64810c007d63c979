/* Lab 3 guest: a #PF handler that maps pages on demand, the way an OS backs memory lazily. */
#include "runtime/runtime.h"

#define LAZY_GVA   0x40000000ull /* 1 GiB: beyond the VMM's identity map, so PDPT entry 1 is empty */
#define LAZY_PAGES 4

static uint64_t lazy_pd[512] __attribute__((aligned(4096)));
static uint64_t lazy_pt[512] __attribute__((aligned(4096)));
static uint8_t lazy_frames[LAZY_PAGES][4096] __attribute__((aligned(4096)));
static volatile unsigned faults;
static volatile uint64_t last_cr2, last_error;
/* Sent by an address that exists only because the handler mapped it. */
static struct mvm_ucall lazy_print = {.cmd = MVM_UCALL_PRINT, .msg = "printed from a page the guest mapped"};

/* The tables are identity-mapped, so a table's physical address is also a pointer to it. */
static uint64_t *table_at(uint64_t entry)
{
    return (uint64_t *)(uintptr_t)(entry & X86_PTE_ADDR_MASK);
}

__attribute__((interrupt)) static void pf_handler(struct interrupt_frame *frame, uword_t error_code)
{
    uint64_t cr2 = cr2_read(), page = (cr2 - LAZY_GVA) >> X86_PAGE_SHIFT;
    uint64_t *pdpt = table_at(table_at(cr3_read())[X86_PT_INDEX(cr2, 4)]);

    (void)frame;
    faults++;
    last_cr2 = cr2;
    last_error = error_code;
    GUEST_ASSERT_EQ(cr2 >= LAZY_GVA && page < LAZY_PAGES, 1, "#PF outside the lazy window");
    pdpt[X86_PT_INDEX(cr2, 3)] = (uintptr_t)lazy_pd | X86_PTE_P | X86_PTE_RW;
    lazy_pd[X86_PT_INDEX(cr2, 2)] = (uintptr_t)lazy_pt | X86_PTE_P | X86_PTE_RW;
    lazy_pt[X86_PT_INDEX(cr2, 1)] = (uintptr_t)lazy_frames[page] | X86_PTE_P | X86_PTE_RW;
    /* Returning re-executes the faulting instruction, which now finds the page. */
}

void guest_main(void)
{
    volatile uint64_t *lazy = (volatile uint64_t *)(uintptr_t)LAZY_GVA;
    uint64_t v;

    idt_set_handler(X86_VEC_PF, (void *)pf_handler);
    v = lazy[0];
    guest_printf("read at 0x%lx: #PF cr2=0x%lx error=0x%lx, mapped, read 0x%lx\n", (unsigned long)LAZY_GVA,
                 (unsigned long)last_cr2, (unsigned long)last_error, (unsigned long)v);
    GUEST_ASSERT_EQ(faults, 1, "one #PF for the first read");
    GUEST_ASSERT_EQ(last_error, 0, "error code of a read of a not-present page: 0");
    lazy[512 + 1] = 0xfeedface;
    guest_printf("write at 0x%lx: #PF cr2=0x%lx error=0x%lx\n", (unsigned long)(LAZY_GVA + 4096 + 8),
                 (unsigned long)last_cr2, (unsigned long)last_error);
    GUEST_ASSERT_EQ(faults, 2, "one more #PF for the first write to the next page");
    GUEST_ASSERT_EQ(last_cr2, LAZY_GVA + 4096 + 8, "CR2 holds the faulting address");
    GUEST_ASSERT_EQ(last_error, X86_PF_ERR_WRITE, "error code of a write to a not-present page: W");
    GUEST_ASSERT_EQ(*(volatile uint64_t *)(void *)&lazy_frames[1][8], 0xfeedface, "the write landed in frame 1");
    lazy[512 + 2] = 1;
    GUEST_ASSERT_EQ(faults, 2, "a mapped page does not fault again");
    memcpy((void *)(uintptr_t)(LAZY_GVA + 2 * 4096), &lazy_print, sizeof(lazy_print));
    GUEST_ASSERT_EQ(faults, 3, "the copy faulted its page in");
    ucall_send((const struct mvm_ucall *)(uintptr_t)(LAZY_GVA + 2 * 4096));
    guest_printf("%u page faults, all handled by the guest\n", faults);
}
