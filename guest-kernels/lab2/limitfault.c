/* Lab 2 guest: a segment-limit violation raises #GP, which the guest's own IDT handler reports. */
#include "runtime/runtime.h"

#define SEL_SMALL 0x18 /* GDT entry 3: data, base = buffer, limit 0xfff (byte granular) */

static uint64_t gdt[4] __attribute__((aligned(8)));
static uint8_t buffer[8192] __attribute__((aligned(4096)));
extern const char limit_fault_ip[];

__attribute__((interrupt)) static void gp_handler(struct interrupt_frame *frame, uword_t error_code)
{
    guest_printf("#GP(%u) at eip=0x%x (%s)\n", (unsigned)error_code, (unsigned)frame->ip,
                 frame->ip == (uintptr_t)limit_fault_ip ? "the 4-byte read at FS:0xffd" : "somewhere else");
    GUEST_ASSERT_EQ(frame->ip, (uintptr_t)limit_fault_ip, "#GP must point at the faulting read");
    GUEST_ASSERT_EQ(error_code, 0, "a limit violation pushes error code 0");
    GUEST_DONE();
}

/* Reads 4 bytes at FS:off. noinline: the label inside must exist exactly once. */
static __attribute__((noinline)) uint32_t small_read(uint32_t off)
{
    uint32_t v;

    __asm__ volatile(".globl limit_fault_ip\n"
                     "limit_fault_ip: movl %%fs:(%1), %0"
                     : "=r"(v)
                     : "r"(off)
                     : "memory");
    return v;
}

void guest_main(void)
{
    struct desc_table_ptr gdtr = {sizeof(gdt) - 1, (uintptr_t)gdt};
    uint32_t base = (uint32_t)(uintptr_t)buffer;
    uint32_t v;

    idt_set_handler(X86_VEC_GP, (void *)gp_handler);
    gdt[1] = 0x00cf9b000000ffffull;
    gdt[2] = 0x00cf93000000ffffull;
    /* limit 0xfff, G = 0: offsets 0..0xfff are inside, 0x1000 is not, whatever lies beyond in RAM. */
    gdt[3] = 0xfffull | ((uint64_t)(base & 0xffffff) << 16) | (0x93ull << 40) | (0x4ull << 52) |
             ((uint64_t)(base >> 24) << 56);
    gdt_load(&gdtr);
    buffer[0xffc] = 0x44;
    fs_write(SEL_SMALL);
    v = small_read(0xffc);
    guest_printf("FS:0xffc (bytes 0xffc-0xfff, inside the limit): 0x%x\n", v);
    GUEST_ASSERT_EQ(v, 0x44, "read inside the limit");
    guest_printf("FS:0xffd (bytes 0xffd-0x1000, one past the limit): ");
    v = small_read(0xffd);
    GUEST_ASSERT_EQ(v, 0, "this read must fault: no #GP was raised for a read past the segment limit");
}
