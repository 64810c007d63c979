/*
 * Bench guest for the exit-cost table: %ecx iterations of the one instruction
 * that kind %bx (BENCH_KIND_*, plus BENCH_KIND_TIMED for RDTSC around each)
 * names; then GUEST_DONE. One binary for every kind and count.
 */
#include "bench/bench_abi.h"
#include "lab1/ucall16.h"

/*
 * Two loops per kind: `label` runs the body bare; `label_timed` brackets it
 * with RDTSC and stores the delta in the sample ring. %ebp counts down
 * (CPUID clobbers %ecx), %esi holds the first stamp, %es:%di walks the ring.
 * The body may clobber %eax, %ebx, %ecx and %edx only.
 */
#define LOOPS(label, end, ...)      \
label:                              \
1:  __VA_ARGS__;                    \
    dec %ebp;                       \
    jnz 1b;                         \
    jmp end;                        \
label##_timed:                      \
1:  rdtsc;                          \
    mov %eax, %esi;                 \
    __VA_ARGS__;                    \
    rdtsc;                          \
    sub %esi, %eax;                 \
    mov %eax, %es:(%di);            \
    add $4, %di;                    \
    dec %ebp;                       \
    jnz 1b;                         \
    jmp end

/* Selectors of the GDT below, for the hypercall loops. */
#define SEL_CODE16 0x08
#define SEL_DATA 0x10
#define SEL_SAMPLES 0x18
#define SEL_RESULT 0x20

    .code16
    .section .text.start
    .globl _start
_start:
    mov %ecx, %ebp
    mov %bx, %si
    mov $(BENCH_SAMPLES_GPA >> 4), %ax
    mov %ax, %es
    mov $(BENCH_MMIO_GPA >> 4), %ax
    mov %ax, %fs
    mov $(BENCH_RESULT_GPA >> 4), %ax
    mov %ax, %gs
    xor %di, %di
    cmp $(2 * BENCH_KIND_COUNT), %bx
    jae bad_kind
    test %ebp, %ebp
    jz finish
    shl $1, %bx
    jmp *kinds(%bx)

    LOOPS(loop_none, finish, mov $BENCH_PORT, %dx)
    LOOPS(loop_out, finish, mov $BENCH_PORT, %dx; out %al, %dx)
    LOOPS(loop_in, finish, mov $BENCH_PORT, %dx; in %dx, %al)
    LOOPS(loop_mmio_read, finish, movb %fs:0, %al)
    LOOPS(loop_mmio_write, finish, movb %al, %fs:0)
    LOOPS(loop_hlt, finish, hlt)
    LOOPS(loop_cpuid, finish, xor %eax, %eax; cpuid)

/*
 * KVM's instruction emulator, which it uses to step over a hypercall, raises
 * #UD for VMCALL/VMMCALL outside protected mode: switch to 16-bit protected
 * mode first, with segments at the same bases as in real mode. Then pick the
 * instruction by CPU vendor: VMMCALL is AMD's, VMCALL Intel's (KVM would
 * patch the other one in guest memory).
 */
pick_hypercall:
    lgdtl gdt_ptr
    mov %cr0, %eax
    or $1, %eax              /* CR0.PE */
    mov %eax, %cr0
    ljmp $SEL_CODE16, $1f
1:  mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $SEL_SAMPLES, %ax
    mov %ax, %es
    mov $SEL_RESULT, %ax
    mov %ax, %gs
    xor %eax, %eax
    cpuid
    cmp $0x68747541, %ebx   /* "Auth" of AuthenticAMD */
    je 2f
    cmp $0x6f677948, %ebx   /* "Hygo" of HygonGenuine */
    je 2f
    movl $BENCH_HC_VMCALL, %gs:BENCH_RESULT_HC_INSN
    test $BENCH_KIND_TIMED, %si
    jnz loop_vmcall_timed
    jmp loop_vmcall
2:  movl $BENCH_HC_VMMCALL, %gs:BENCH_RESULT_HC_INSN
    test $BENCH_KIND_TIMED, %si
    jnz loop_vmmcall_timed
    jmp loop_vmmcall

    LOOPS(loop_vmmcall, hypercall_done, mov $BENCH_HC_NR, %eax; vmmcall; mov %eax, %ebx)
    LOOPS(loop_vmcall, hypercall_done, mov $BENCH_HC_NR, %eax; vmcall; mov %eax, %ebx)

hypercall_done:
    mov %ebx, %gs:BENCH_RESULT_HC_RET
finish:
    GUEST_DONE

/* The host passed a kind this guest does not know: halt where the host can see it (a HLT, not DONE). */
bad_kind:
    hlt
    jmp bad_kind

    .section .rodata
    .balign 2
kinds:
    .word loop_none, loop_out, loop_in, loop_mmio_read, loop_mmio_write, loop_hlt, loop_cpuid, pick_hypercall
    .word loop_none_timed, loop_out_timed, loop_in_timed, loop_mmio_read_timed, loop_mmio_write_timed
    .word loop_hlt_timed, loop_cpuid_timed, pick_hypercall
    .if (. - kinds) != 4 * BENCH_KIND_COUNT
    .error "kinds table does not match BENCH_KIND_COUNT"
    .endif

/* 16-bit protected-mode segments: byte-granular 64 KiB limits, P=1, DPL 0; code 0x9b, data 0x93. */
    .balign 8
gdt:
    .quad 0
    .quad 0x00009b000000ffff                                   /* SEL_CODE16: base 0 */
    .quad 0x000093000000ffff                                   /* SEL_DATA: base 0 */
    .quad 0x000093000000ffff | (BENCH_SAMPLES_GPA << 16)       /* SEL_SAMPLES */
    .quad 0x000093000000ffff | (BENCH_RESULT_GPA << 16)        /* SEL_RESULT */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
