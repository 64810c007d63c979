/*
 * Probe: VMMCALL (AMD) and VMCALL (Intel) answered by KVM in the kernel; then CPUID leaves whose values do
 * not depend on the host CPU (KVM's signature leaf, the long-mode bit). Results by OUT.
 */
    .code16
    .section .text.start
    .globl _start
_start:
    mov $0x1234, %eax         /* no such hypercall: KVM answers -KVM_ENOSYS (-1000) */
    vmmcall
    out %eax, $0x80
    mov $0x1234, %eax
    vmcall
    out %eax, $0x80
    mov $0x40000000, %eax
    cpuid
    out %eax, $0x80
    mov %ebx, %eax
    out %eax, $0x80
    mov %ecx, %eax
    out %eax, $0x80
    mov %edx, %eax
    out %eax, $0x80
    mov $0x80000001, %eax
    cpuid
    mov %edx, %eax
    and $0x20000000, %eax     /* LM */
    out %eax, $0x80
    xor %ebx, %ebx            /* the other leaf-0x80000001 bits depend on the host CPU */
    xor %ecx, %ecx
    xor %edx, %edx
    hlt
