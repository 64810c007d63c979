/* lab4/bytes <-> bench/bench_lab4.c, test_lab4.c: how to send what (the host writes struct lab4_bytes_params before the
 * run). */
#ifndef GUEST_LAB4_BYTES_H
#define GUEST_LAB4_BYTES_H

#include <stdint.h>

#define LAB4_BYTES_PARAMS_GPA 0x80000 /* above the boot page-table pool, inside 2 MiB of RAM */
#define LAB4_BYTES_MAX        4096

enum lab4_bytes_via {
    LAB4_VIA_UART = 1,      /* the polled UART: an IN of LSR and an OUT to THR per byte */
    LAB4_VIA_HYPERCALL = 2, /* MVM_HC_CONSOLE_WRITE: one doorbell OUT per message */
    LAB4_VIA_VMCALL = 3,    /* KVM's own VMCALL/VMMCALL per message: answered in the kernel, the bytes go nowhere */
    LAB4_VIA_NOP = 4,       /* MVM_HC_NOP per message: the doorbell's round trip alone */
    LAB4_VIA_SHARED = 5,    /* a buffer registered once (MVM_HC_CONSOLE_SHARE), then one kick OUT per message */
};

struct lab4_bytes_params {
    uint32_t via;   /* enum lab4_bytes_via */
    uint32_t size;  /* bytes per message, 1..LAB4_BYTES_MAX */
    uint64_t count; /* messages */
    int64_t last;   /* written by the guest: the last hypercall's RAX */
};

#endif
