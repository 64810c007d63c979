/* Guest port I/O and control-register helpers: the few instructions C cannot express. */
#ifndef GUEST_IO_H
#define GUEST_IO_H

#include <stdint.h>

/* A pointer to a fixed guest address; hidden from the compiler, which would take a low one for a bad pointer. */
static inline void *addr_ptr(uintptr_t addr)
{
    void *p = (void *)addr;

    __asm__("" : "+r"(p));
    return p;
}

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;

    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void halt(void)
{
    __asm__ volatile("hlt");
}

static inline unsigned long cr0_read(void)
{
    unsigned long v;

    __asm__ volatile("mov %%cr0, %0" : "=r"(v));
    return v;
}

static inline unsigned long cr2_read(void)
{
    unsigned long v;

    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

static inline unsigned long cr3_read(void)
{
    unsigned long v;

    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}

static inline unsigned long cr4_read(void)
{
    unsigned long v;

    __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

static inline uint64_t msr_read(uint32_t msr)
{
    uint32_t lo, hi;

    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

/* Drops the TLB entry of one page after its page-table entry changed. */
static inline void invlpg(const volatile void *p)
{
    __asm__ volatile("invlpg (%0)" : : "r"(p) : "memory");
}

static inline uint16_t cs_read(void)
{
    uint16_t v;

    __asm__ volatile("mov %%cs, %0" : "=r"(v));
    return v;
}

static inline uint16_t ds_read(void)
{
    uint16_t v;

    __asm__ volatile("mov %%ds, %0" : "=r"(v));
    return v;
}

static inline void ds_write(uint16_t sel)
{
    __asm__ volatile("mov %0, %%ds" : : "r"(sel) : "memory");
}

static inline void es_write(uint16_t sel)
{
    __asm__ volatile("mov %0, %%es" : : "r"(sel) : "memory");
}

/* FS: the lab guests' scratch segment; compiled code never uses it implicitly (ES is used by rep movs/stos). */
static inline void fs_write(uint16_t sel)
{
    __asm__ volatile("mov %0, %%fs" : : "r"(sel) : "memory");
}

/* The 6-byte (32-bit) or 10-byte (64-bit) operand of lgdt/lidt. */
struct __attribute__((packed)) desc_table_ptr {
    uint16_t limit;
    uintptr_t base;
};

static inline void gdt_load(const struct desc_table_ptr *p)
{
    __asm__ volatile("lgdt %0" : : "m"(*p) : "memory");
}

static inline void idt_load(const struct desc_table_ptr *p)
{
    __asm__ volatile("lidt %0" : : "m"(*p) : "memory");
}

#endif
