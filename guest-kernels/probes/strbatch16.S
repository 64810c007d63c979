/*
 * Probe: how KVM batches rep ins into exits (emulate.c, pio_in_emulated): one exit carries
 * min(bytes left in the page from DI, 1024 / element size, CX) elements, at least one; with DF=1 the
 * bytes left are DI's offset in its page. DI is taken without the ES base. Real mode, port 0x80.
 */
    .code16
    .section .text.start
    .globl _start
_start:
    cld
    xor %ax, %ax
    mov %ax, %es
    mov $0x80, %dx
    mov $0x2000, %di
    mov $1030, %cx
    rep insb                  /* the 1 KiB cap: 1024, then 6 */
    mov $0x3f01, %di
    mov $300, %cx
    rep insw                  /* 255 bytes left in the page count as 255 words: 255, then 45 */
    mov $0x4ff8, %di
    mov $10, %cx
    rep insl                  /* 8, then 2 */
    mov $0x6000, %di
    mov $700, %cx
    rep insl                  /* 256, 256, 188 */
    std
    mov $0x5004, %di
    mov $20, %cx
    rep insb                  /* backwards: 4, then 1 (offset 0 gives none: one), then 15 */
    mov $0x7000, %di
    mov $5, %cx
    rep insw                  /* 1, then 4 */
    cld
    mov $0x7100, %di
    insb                      /* no rep: 1 */
    xor %cx, %cx
    rep insb                  /* CX=0: no exit */
    mov $0x108, %ax
    mov %ax, %es              /* ES base 0x1080: DI's page offset counts, not the linear address's */
    mov $0x0ff0, %di
    mov $40, %cx
    rep insb                  /* 16, then 24 */
    xor %ax, %ax
    mov %ax, %es
    mov $0x7200, %di
    mov $0x10003, %ecx
    rep insb                  /* 16-bit addressing: CX, not ECX, counts: 3 */
    hlt
