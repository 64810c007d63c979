/* The freestanding guest runtime for 32- and 64-bit C guests: serial output, printf-lite, ucalls, an IDT. */
#ifndef GUEST_RUNTIME_H
#define GUEST_RUNTIME_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "x86.h"
#include "runtime/io.h"

/*
 * The mode the VMM must start this guest in, when it is not its runtime's (32-bit: protected, 64-bit: long), e.g.
 * MVM_GUEST_START_MODE("real") for a guest that switches modes itself. A section the image never loads: the build
 * copies it to NAME.mode beside NAME.bin, where `minivmm run --guest` and `minivmm list` read it.
 */
#define MVM_GUEST_START_MODE(mode)                                                                                     \
    __asm__(".pushsection .mvm_start_mode, \"\", @progbits\n.ascii \"" mode "\"\n.popsection")

/* Each guest defines its body as guest_main(); the start code calls it and reports GUEST_DONE when it returns. */
void guest_main(void);

/* Writes to the serial console (MVM_PORT_SERIAL): one OUT, one exit, per byte. */
void serial_putc(char c);
void serial_puts(const char *s);
/* printf for guests: %c %s %d %u %x %p, l/ll length, width and 0 padding; returns bytes written. */
int guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int guest_vprintf(const char *fmt, va_list ap);

/* Sends one struct mvm_ucall to the test port: a 32-bit OUT of its address (see abi.h). */
void ucall_send(const struct mvm_ucall *uc);
/* Builds and sends a ucall; the DONE and ASSERT kinds stop the VM, and the guest halts if resumed. */
void ucall(uint32_t cmd, uint32_t line, uint64_t actual, uint64_t expected, const char *msg);
/* Stops the CPU for good: HLT in a loop (a VMM that resumes only gets HLT again). */
void __attribute__((noreturn)) guest_halt(void);

#define GUEST_DONE()                                                                                                   \
    do {                                                                                                               \
        ucall(MVM_UCALL_DONE, __LINE__, 0, 0, "done");                                                                 \
        guest_halt();                                                                                                  \
    } while (0)
#define GUEST_SYNC(stage) ucall(MVM_UCALL_SYNC, __LINE__, (stage), 0, "sync")
#define GUEST_PRINT(msg)  ucall(MVM_UCALL_PRINT, __LINE__, 0, 0, (msg))
/* Reports the failed condition's text and source line, then halts. */
#define GUEST_ASSERT(cond)                                                                                             \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            ucall(MVM_UCALL_ASSERT, __LINE__, 0, 1, #cond);                                                            \
            guest_halt();                                                                                              \
        }                                                                                                              \
    } while (0)
/* Reports actual and expected (as 64-bit numbers) with a message when they differ, then halts. */
#define GUEST_ASSERT_EQ(actual, expected, msg)                                                                         \
    do {                                                                                                               \
        uint64_t a_ = (uint64_t)(actual), e_ = (uint64_t)(expected);                                                   \
        if (a_ != e_) {                                                                                                \
            ucall(MVM_UCALL_ASSERT, __LINE__, a_, e_, (msg));                                                          \
            guest_halt();                                                                                              \
        }                                                                                                              \
    } while (0)

/*
 * The IDT: interrupt gates for vectors 0-31, pointing at handlers written
 * with GCC's interrupt attribute:
 *   __attribute__((interrupt)) void h(struct interrupt_frame *f, uword_t error_code);
 */
#if defined(__x86_64__)
typedef uint64_t uword_t;
#else
typedef uint32_t uword_t;
#endif
/* What the CPU pushes on an exception, above the error code (64-bit also pushes RSP and SS). */
struct interrupt_frame {
    uword_t ip;
    uword_t cs;
    uword_t flags;
#if defined(__x86_64__)
    uword_t sp;
    uword_t ss;
#endif
};
/* Points IDT entry `vector` at `handler` (a ring-0 interrupt gate in the current CS) and loads the IDT. */
void idt_set_handler(unsigned vector, void *handler);

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
