/* The soft backend's stack switch: a few lines of x86-64 asm, 40-60 ns an exit round trip (swapcontext: 2.5 us). */
#include "soft_coro.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#if !defined(__x86_64__)
#error "the soft backend's coroutine switch is x86-64 only"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SOFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOFT_ASAN 1
#endif
#endif

#ifdef SOFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* soft_coro_switch(save, load): push callee-saved registers, store rsp in *save, load rsp = load, pop, return. */
void soft_coro_switch(void **save, void *load);
/* First frame of a new coroutine: r12 = the coroutine, r13 = soft_coro_main. */
void soft_coro_trampoline(void);

__asm__(".text\n"
        ".globl soft_coro_switch\n"
        ".type soft_coro_switch,@function\n"
        "soft_coro_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size soft_coro_switch, .-soft_coro_switch\n"
        ".globl soft_coro_trampoline\n"
        ".type soft_coro_trampoline,@function\n"
        "soft_coro_trampoline:\n"
        "    movq %r12, %rdi\n"
        "    call *%r13\n"
        "    ud2\n"
        ".size soft_coro_trampoline, .-soft_coro_trampoline\n");

static void soft_coro_main(struct soft_coro *c)
{
#ifdef SOFT_ASAN
    __sanitizer_finish_switch_fiber(c->fake_stack, &c->host_bottom, &c->host_size);
#endif
    c->fn(c->arg);
    c->finished = 1;
#ifdef SOFT_ASAN
    /* NULL: this fiber never runs again, so ASan may free its fake stack. */
    __sanitizer_start_switch_fiber(NULL, c->host_bottom, c->host_size);
#endif
    void *dead;
    soft_coro_switch(&dead, c->host_sp);
}

int soft_coro_init(struct soft_coro *c, size_t stack_size, void (*fn)(void *), void *arg)
{
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED)
        return -errno;
    /* A guard page turns a stack overflow into a crash at a known place instead of silent corruption. */
    if (mprotect(stack, 4096, PROT_NONE) != 0) {
        int e = -errno;
        munmap(stack, stack_size);
        return e;
    }
#ifdef SOFT_ASAN
    /*
     * ASan keeps shadow memory across munmap: a stack mapped where an earlier coroutine's was inherits its stale
     * redzones (frames that Unicorn's longjmp skipped), and __asan_handle_no_return's sigaltstack call then
     * failed a CHECK on a local lying in them (tests/fuzz/findings/asan-check-longjmp-coroutine.log). Start clean.
     */
    __asan_unpoison_memory_region(stack, stack_size);
#endif
    *c = (struct soft_coro){.stack = stack, .stack_size = stack_size, .fn = fn, .arg = arg};
    uintptr_t top = ((uintptr_t)stack + stack_size) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = (void *)soft_coro_trampoline;
    *--sp = NULL;                   /* rbp */
    *--sp = NULL;                   /* rbx */
    *--sp = c;                      /* r12 */
    *--sp = (void *)soft_coro_main; /* r13 */
    *--sp = NULL;                   /* r14 */
    *--sp = NULL;                   /* r15 */
    c->sp = sp;
    return 0;
}

void soft_coro_resume(struct soft_coro *c)
{
    if (c->finished)
        return;
#ifdef SOFT_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, (const char *)c->stack + 4096, c->stack_size - 4096);
#endif
    soft_coro_switch(&c->host_sp, c->sp);
#ifdef SOFT_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

void soft_coro_yield(struct soft_coro *c)
{
#ifdef SOFT_ASAN
    __sanitizer_start_switch_fiber(&c->fake_stack, c->host_bottom, c->host_size);
#endif
    soft_coro_switch(&c->sp, c->host_sp);
#ifdef SOFT_ASAN
    __sanitizer_finish_switch_fiber(c->fake_stack, &c->host_bottom, &c->host_size);
#endif
}

void soft_coro_destroy(struct soft_coro *c)
{
    if (c->stack) {
#ifdef SOFT_ASAN
        __asan_unpoison_memory_region(c->stack, c->stack_size); /* leave no redzones for the next mapping here */
#endif
        munmap(c->stack, c->stack_size);
    }
    c->stack = NULL;
}
