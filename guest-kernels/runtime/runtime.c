/* The freestanding guest runtime: serial output, printf-lite, ucalls through the test port, the IDT. */
#include "runtime/runtime.h"

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    while (n--)
        *d++ = *s++;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n])
        n++;
    return n;
}

void serial_putc(char c)
{
    outb(MVM_PORT_SERIAL, (uint8_t)c);
}

void serial_puts(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

/* 64-bit division by a small base with 32-bit operations only: 32-bit guests have no libgcc. */
static uint64_t divmod_small(uint64_t n, unsigned base, unsigned *rem)
{
    uint64_t q = 0;
    uint32_t r = 0;

    for (int bit = 63; bit >= 0; bit--) {
        r = (r << 1) | (uint32_t)((n >> bit) & 1);
        if (r >= base) {
            r -= base;
            q |= 1ull << bit;
        }
    }
    *rem = r;
    return q;
}

static int put_number(uint64_t v, unsigned base, bool negative, int width, char pad)
{
    char digits[24];
    int n = 0, out = 0;
    unsigned rem;

    do {
        v = divmod_small(v, base, &rem);
        digits[n++] = "0123456789abcdef"[rem];
    } while (v);
    if (negative)
        digits[n++] = '-';
    for (; width > n; width--, out++)
        serial_putc(pad);
    while (n)
        serial_putc(digits[--n]), out++;
    return out;
}

int guest_vprintf(const char *fmt, va_list ap)
{
    int out = 0;

    for (; *fmt; fmt++) {
        int width = 0, longs = 0;
        char pad = ' ';
        uint64_t u;
        int64_t s;

        if (*fmt != '%') {
            serial_putc(*fmt);
            out++;
            continue;
        }
        fmt++;
        if (*fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            longs++, fmt++;
        switch (*fmt) {
        case 'c':
            serial_putc((char)va_arg(ap, int));
            out++;
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);

            str = str ? str : "(null)";
            serial_puts(str);
            out += (int)strlen(str);
            break;
        }
        case 'd':
            s = longs >= 2 ? va_arg(ap, long long) : longs ? va_arg(ap, long) : va_arg(ap, int);
            out += put_number(s < 0 ? 0 - (uint64_t)s : (uint64_t)s, 10, s < 0, width, pad);
            break;
        case 'u':
        case 'x':
            u = longs >= 2 ? va_arg(ap, unsigned long long) : longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            out += put_number(u, *fmt == 'u' ? 10 : 16, false, width, pad);
            break;
        case 'p':
            serial_puts("0x");
            out += 2 + put_number((uintptr_t)va_arg(ap, void *), 16, false, width, pad);
            break;
        case '%':
            serial_putc('%');
            out++;
            break;
        default: /* an unknown conversion is printed as is, so the mistake shows */
            serial_putc('%');
            serial_putc(*fmt ? *fmt : '?');
            out += 2;
            if (!*fmt)
                return out;
            break;
        }
    }
    return out;
}

int guest_printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = guest_vprintf(fmt, ap);
    va_end(ap);
    return n;
}

void ucall_send(const struct mvm_ucall *uc)
{
    outl(MVM_PORT_UCALL, (uint32_t)(uintptr_t)uc);
}

void ucall(uint32_t cmd, uint32_t line, uint64_t actual, uint64_t expected, const char *msg)
{
    struct mvm_ucall uc = {.cmd = cmd, .line = line, .actual = actual, .expected = expected};
    size_t i;

    for (i = 0; msg && msg[i] && i < MVM_UCALL_MSG_LEN - 1; i++)
        uc.msg[i] = msg[i];
    /* The VMM reads the struct from memory during the OUT: the stores must be done by then. */
    __asm__ volatile("" : : "m"(uc) : "memory");
    ucall_send(&uc);
}

void guest_halt(void)
{
    for (;;)
        halt();
}

#if defined(__x86_64__)
/* A 64-bit interrupt gate (AMD APM vol. 2, 4.8.4): 16 bytes. */
struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate");
#else
/* A 32-bit interrupt gate (SDM vol. 3, 6.11): 8 bytes. */
struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t zero;
    uint8_t type_attr;
    uint16_t offset_hi;
};
_Static_assert(sizeof(struct idt_gate) == 8, "32-bit IDT gate");
#endif

#define IDT_GATE_INTERRUPT 0x8e /* present, DPL 0, 32/64-bit interrupt gate (IF cleared on entry) */

static struct idt_gate idt[32] __attribute__((aligned(16)));

void idt_set_handler(unsigned vector, void *handler)
{
    uintptr_t off = (uintptr_t)handler;
    struct desc_table_ptr p = {.limit = sizeof(idt) - 1, .base = (uintptr_t)idt};
    struct idt_gate *g;

    if (vector >= sizeof(idt) / sizeof(idt[0]))
        return;
    g = &idt[vector];
    g->offset_lo = (uint16_t)off;
    g->selector = cs_read();
    g->type_attr = IDT_GATE_INTERRUPT;
#if defined(__x86_64__)
    g->offset_mid = (uint16_t)(off >> 16);
    g->offset_hi = (uint32_t)(off >> 32);
#else
    g->offset_hi = (uint16_t)(off >> 16);
#endif
    idt_load(&p);
}

void guest_done_after_main(void);

/* The start code calls this when guest_main() returns. */
void guest_done_after_main(void)
{
    GUEST_DONE();
}
