/* Lab 4's student functions: the 16550A UART's register model and the hypercall doorbell's decoder, with their
 * contracts. */
#ifndef LAB4_UART_LAB4_H
#define LAB4_UART_LAB4_H

#include <linux/serial_reg.h> /* UART_* register offsets and bits, as Linux's 8250 driver names them */
#include <stdbool.h>
#include <stdint.h>

#include "hypercall.h"
#include "mvm.h"

#define LAB4_UART_PORTS    8  /* COM1: MVM_PORT_SERIAL .. + 7 */
#define LAB4_UART_FIFO     16 /* the 16550A's receive FIFO (transmission here is instant: no transmit FIFO to model) */
#define LAB4_UART_IER_MASK 0x0f /* IER bits a 16550A has; bits 4-7 read 0 (Linux's probe checks) */
#define LAB4_UART_MCR_MASK 0x1f /* MCR bits a 16550A has: DTR RTS OUT1 OUT2 LOOP; bits 5-7 read 0 */
#define LAB4_UART_IIR_FIFO 0xc0 /* IIR bits 7:6 when FCR enabled the FIFOs: "16550A" to a probe */
/* Out of loopback, the modem lines as a connected terminal holds them: DCD, DSR, CTS asserted, no ring. */
#define LAB4_UART_LINE_MSR (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)

/*
 * One UART's state. The VMM (lab4_plugin.c) fills in `tx` and `opaque`, calls
 * lab4_uart_reset(), then hands every register access to lab4_uart_read() or
 * lab4_uart_write(), and each byte that arrives on the line to
 * lab4_uart_receive(). Everything else is the model's.
 */
struct lab4_uart {
    uint8_t ier; /* interrupt enable: bits 0-3 */
    uint8_t lcr; /* line control: word length, stop bits, parity, break, DLAB (bit 7) */
    uint8_t mcr; /* modem control: bits 0-4 */
    uint8_t scr; /* scratch */
    uint8_t dll; /* divisor latch, low and high byte: baud = 115200 / divisor */
    uint8_t dlm;
    uint8_t fcr;       /* the FIFO set-up FCR last wrote (ENABLE_FIFO, trigger bits); FCR itself is write-only */
    uint8_t lsr;       /* line status: DR and OE change; THRE and TEMT stay set (transmission is instant) */
    bool thr_ipending; /* the "THR empty" interrupt condition (IIR 0x2), see lab4_uart_read */
    uint8_t rx[LAB4_UART_FIFO]; /* receive FIFO, a ring: rx_count bytes from rx_head */
    unsigned rx_head;
    unsigned rx_count;
    /* Set by the VMM: a byte leaves on the line (to the console). 0, or -errno with a message. */
    int (*tx)(void *opaque, uint8_t byte);
    void *opaque;
};

/*
 * Lab 4. Puts the UART in its power-on state (16550A datasheet, "reset"):
 * IER 0, IIR 0x01 (no interrupt), FCR 0 (FIFOs off), LCR 0, MCR 0, LSR 0x60
 * (THRE | TEMT), MSR high nibble = the lines, low nibble 0; the receive
 * FIFO empty, no THRE interrupt pending. SCR and the divisor latch are
 * undefined on hardware; this model powers on with 0. Keeps tx and opaque.
 */
void lab4_uart_reset(struct lab4_uart *u);

/*
 * Lab 4. The guest reads register `reg` (0..7, the offset from the base
 * port): *val is what a 16550A returns, with its side effects (reading RBR
 * takes a byte from the FIFO; reading LSR clears OE; reading IIR clears the
 * THRE interrupt when that is the one it shows). Returns 0, or -EINVAL for a
 * reg outside 0..7 (with a message).
 */
int lab4_uart_read(struct lab4_uart *u, unsigned reg, uint8_t *val);

/*
 * Lab 4. The guest writes `val` to register `reg`: THR (transmits through
 * u->tx, or into the receive FIFO in loopback), DLL/DLM under LCR.DLAB, IER,
 * FCR, LCR, MCR, SCR; LSR and MSR ignore writes. Returns 0, what u->tx
 * returned when it failed, or -EINVAL for a reg outside 0..7.
 */
int lab4_uart_write(struct lab4_uart *u, unsigned reg, uint8_t val);

/*
 * Lab 4. A byte arrives on the receive line (or from THR in loopback): into
 * the FIFO (16 deep with FCR's FIFOs on, else 1), LSR.DR set. When there is
 * no room the byte is lost and LSR.OE set (without FIFOs, the holding
 * register is overwritten, as on a 16450).
 */
void lab4_uart_receive(struct lab4_uart *u, uint8_t byte);

/*
 * Lab 4. The hypercall doorbell's decoder (hypercall.h), called for each OUT
 * to MVM_PORT_HYPERCALL of `out_size` bytes with value `out_value`. Reads
 * the registers (vcpu_regs_get): number in RAX, arguments in RBX, RCX, RSI,
 * RDI. Finds the number in the VM's table (vm_hypercall_find) and checks,
 * answering in RAX (vcpu_regs_set) without calling anything when:
 *  - the OUT is not 32 bits, or its value is not EAX: -MVM_HC_EINVAL;
 *  - no entry has the number: -MVM_HC_ENOSYS;
 *  - an argument register beyond the entry's nargs is not 0: -MVM_HC_EINVAL.
 * Else calls the entry's fn and puts its *ret in RAX. Returns 0, or what fn
 * or the register ioctls returned when they failed or stopped the run.
 */
int lab4_hypercall_dispatch(struct mvm_vcpu *vcpu, uint32_t out_size, uint32_t out_value);

/*
 * Lab 4. MVM_HC_CONSOLE_WRITE (buf = args[0], len = args[1]): writes len
 * bytes of guest memory at buf (guest-virtual, read with vm_read_gva) to the
 * console (vm_console_write) in one go. *ret = len; -MVM_HC_EINVAL when len
 * > MVM_HC_CONSOLE_MAX; -MVM_HC_EFAULT when any byte of [buf, buf + len) is
 * not mapped or not RAM (then nothing is written). len 0 writes nothing.
 */
int lab4_hc_console_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);

/*
 * The file service's per-VM state (hypercalls MVM_HC_FS_*, abi.h): the shared directory and the guest's
 * descriptor table. A guest's descriptor d is files[d]: the host descriptor behind it (-1: free) and the
 * access it was opened for. Made by lab4_fs_init (the plug-in's vm_init) and found with lab4_fs_find.
 */
#define LAB4_FS_FREE (-1)
struct lab4_fs_file {
    int host_fd;     /* LAB4_FS_FREE, or a descriptor lab4_fs_host_open returned */
    uint32_t access; /* MVM_HC_O_RDONLY, _WRONLY or _RDWR */
};
struct lab4_fs {
    int root_fd; /* O_PATH descriptor of --share DIR; LAB4_FS_FREE: no share */
    struct lab4_fs_file files[MVM_HC_FS_FDS];
};

/*
 * Given (lab4_fs_host.c): the only code of the file service that makes system calls. Each takes what the
 * checks let through and returns the kernel's answer: >= 0, or -errno (a Linux errno value, for the guest).
 */
/* An empty table, no share. */
void lab4_fs_init(struct lab4_fs *fs);
/* Closes every descriptor of the table and the share (a VM's end; lab4_fs_reset keeps the share). */
void lab4_fs_release(struct lab4_fs *fs);
/* Closes every descriptor of the table (a VM's reset), keeping the share. */
void lab4_fs_reset(struct lab4_fs *fs);
/* The VM's file service (the opaque of its MVM_HC_FS_OPEN entry), or NULL. */
struct lab4_fs *lab4_fs_find(struct mvm_vm *vm);
/*
 * `--share DIR`: serves the directory DIR to the VM's guest (replacing any earlier share). 0, or -errno with a
 * message (no such directory, no file service on this VM).
 */
int lab4_fs_share(struct mvm_vm *vm, const char *dir);
/*
 * Opens `path` (NUL-terminated, already checked) beneath the share, with MVM_HC_O_* `flags` (already checked):
 * openat2(2) relative to fs->root_fd with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so
 * the kernel refuses "..", absolute paths (EXDEV) and any symlink (ELOOP); O_CREAT makes mode 0644; only a
 * regular file is kept (else -EACCES). The host descriptor, or -errno.
 */
int lab4_fs_host_open(const struct lab4_fs *fs, const char *path, uint32_t flags);
/* read(2), write(2) at the descriptor's offset: bytes, or -errno. */
int64_t lab4_fs_host_read(int host_fd, void *buf, size_t len);
int64_t lab4_fs_host_write(int host_fd, const void *buf, size_t len);
/* close(2): 0 or -errno (the descriptor is gone either way). */
int lab4_fs_host_close(int host_fd);
/* fstat(2) as the guest sees it: 0 or -errno. */
int lab4_fs_host_stat(int host_fd, struct mvm_hc_stat *st);

/*
 * Lab 4, the file service's checks (lab4_files.c): the hypercalls MVM_HC_FS_* (abi.h), registered by the
 * plug-in with the VM's struct lab4_fs as `opaque`. Everything in args is the guest's. Each answers in *ret
 * (>= 0, or -MVM_HC_E*) and returns 0; a non-zero return is only for the VMM's own failures (an ioctl that
 * failed: what vm_read_gva returned other than -EFAULT/-EINVAL). Checks come before any host call, and a
 * refused call changes nothing: no descriptor taken, no byte read from or written to a host file.
 *  - No share (root_fd LAB4_FS_FREE): -MVM_HC_ENODEV for open; other calls find no open descriptor anyway.
 *  - A descriptor argument not in 0..MVM_HC_FS_FDS-1 (all 64 bits), free, or not open for the access asked
 *    (read on a write-only one, write on a read-only one): -MVM_HC_EBADF.
 *  - A length over MVM_HC_PATH_MAX (path) or MVM_HC_FS_IO_MAX (read, write), or a path of length 0: -EINVAL.
 *  - A buffer not all guest RAM, mapped (vm_read_gva / vm_write_gva fail with -EFAULT or -EINVAL): -EFAULT.
 */
/* (path, len, flags): the path copied and NUL-checked, flags whitelisted, a free descriptor, then the host. */
int lab4_hc_fs_open(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);
/* (fd, buf, len): the buffer checked before a byte is read from the file (its offset must not move). */
int lab4_hc_fs_read(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);
/* (fd, buf, len): all of buf copied out of the guest before a byte is written to the file. */
int lab4_hc_fs_write(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);
/* (fd): the host descriptor closed, the guest's freed. */
int lab4_hc_fs_close(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);
/* (fd, buf): a struct mvm_hc_stat written at buf. */
int lab4_hc_fs_stat(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);

#endif
