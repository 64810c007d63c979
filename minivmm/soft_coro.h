/* A minimal x86-64 coroutine: the soft backend's engine runs on its own stack and exits to KVM_RUN from a hook. */
#ifndef MINIVMM_SOFT_CORO_H
#define MINIVMM_SOFT_CORO_H

#include <stddef.h>

struct soft_coro {
    void *sp;      /* saved stack pointer of the coroutine while it is suspended */
    void *host_sp; /* saved stack pointer of the resumer while the coroutine runs */
    void *stack;   /* mmap'd stack (with a guard page at the bottom) */
    size_t stack_size;
    void (*fn)(void *);
    void *arg;
    int finished; /* fn returned: the coroutine cannot be resumed again */
    /* AddressSanitizer fiber bookkeeping (unused otherwise). */
    void *fake_stack;
    const void *host_bottom;
    size_t host_size;
};

/* Set up c to run fn(arg) on a fresh stack of stack_size bytes at the first soft_coro_resume. 0 or -errno. */
int soft_coro_init(struct soft_coro *c, size_t stack_size, void (*fn)(void *), void *arg);
/* Run c until it calls soft_coro_yield or fn returns. Never call from inside c. */
void soft_coro_resume(struct soft_coro *c);
/* From inside c: switch back to the resumer; returns at the next soft_coro_resume. */
void soft_coro_yield(struct soft_coro *c);
/* Free c's stack. c must not be suspended in the middle of work that holds resources. */
void soft_coro_destroy(struct soft_coro *c);

#endif
