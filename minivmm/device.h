/* The device model: a device is a name, one port or MMIO range, accessors given an offset, reset and destroy. */
#ifndef MINIVMM_DEVICE_H
#define MINIVMM_DEVICE_H

#include "mvm.h"

enum mvm_bus_space {
    MVM_BUS_PIO,  /* x86 I/O ports: base and len within 0..0xffff */
    MVM_BUS_MMIO, /* guest-physical addresses outside RAM (accesses arrive as KVM_EXIT_MMIO) */
};

struct mvm_device;

/*
 * What a device does. The accessors get the offset of the access from the
 * device's base (never an absolute port or address) and `len` bytes: 1, 2
 * or 4 for ports, 1..8 for MMIO, always inside the device's range. A read
 * fills data[0..len). They return 0, a positive MVM_STOP_* to stop the run
 * loop, or -errno with a message (mvm_fail) when the VMM itself failed.
 * Guest mistakes are not VMM failures: a device answers them as hardware
 * would, or stops the run as the guest's failure (MVM_STOP_ASSERT).
 */
struct mvm_device_ops {
    const char *name; /* for messages and `minivmm devices`: "serial", "ucall", ... */
    int (*read)(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t offset, uint8_t *data, uint32_t len);
    int (*write)(struct mvm_device *dev, struct mvm_vcpu *vcpu, uint64_t offset, const uint8_t *data, uint32_t len);
    /* Back to the power-on state (vm_devices_reset). NULL: nothing to reset. */
    void (*reset)(struct mvm_device *dev);
    /*
     * The VM pauses (resume false: the vCPU has just left KVM_RUN) or resumes
     * (true: before KVM_RUN again; paused_ns is the host time it stood), on
     * the vCPU's thread, so vCPU ioctls are allowed (vcpu_pause_request).
     * clock_runs: guest time should take in the pause (false: stand still).
     * 0 or -errno with a message. NULL: the device does not care.
     */
    int (*pause)(struct mvm_device *dev, struct mvm_vcpu *vcpu, bool resume, bool clock_runs, uint64_t paused_ns);
    /* Frees dev->priv and whatever else the device holds; the bus frees the device itself. NULL: free(priv). */
    void (*destroy)(struct mvm_device *dev);
};

struct mvm_device {
    const struct mvm_device_ops *ops;
    struct mvm_vm *vm;
    enum mvm_bus_space space;
    uint64_t base;
    uint64_t len;
    void *priv; /* the device's state, owned by the device */
};

/*
 * Adds a device at [base, base + len) of `space` to the VM's bus, which owns it
 * from then on (and `priv` with it, even when this fails: destroy is called).
 * A range that overlaps another device's is refused with -EEXIST and a message
 * naming both. Returns 0 and sets *out (may be NULL), or -errno.
 */
int vm_device_add(struct mvm_vm *vm, const struct mvm_device_ops *ops, enum mvm_bus_space space, uint64_t base,
                  uint64_t len, void *priv, struct mvm_device **out);

/* The device at `addr` of `space`, or NULL. */
struct mvm_device *vm_device_find(struct mvm_vm *vm, enum mvm_bus_space space, uint64_t addr);

/* Resets every device (their reset op), in the order they were added. */
void vm_devices_reset(struct mvm_vm *vm);

/* Calls fn for each device in the order they were added; stops at the first non-zero return and returns it. */
int vm_devices_each(struct mvm_vm *vm, int (*fn)(struct mvm_device *dev, void *arg), void *arg);

/*
 * The VM's console, for devices that talk to the user (the UART, the console
 * hypercall). Output is the stream vm_devices_add_standard was given (NULL:
 * discarded), flushed at each newline; write errors show when the owner
 * closes it. Input is the stream of vm_console_input_set (NULL: none).
 */
void vm_console_write(struct mvm_vm *vm, const void *buf, size_t len);
/*
 * One byte of console input, if one is there now: 1 and *byte, or 0 (none
 * yet, or end of input). Never blocks on a pipe or terminal (it polls the
 * descriptor); a regular file or memory stream always has its next byte.
 */
int vm_console_read(struct mvm_vm *vm, uint8_t *byte);
/* Sets the console's input stream (the caller keeps it open while the VM runs, and closes it). */
void vm_console_input_set(struct mvm_vm *vm, FILE *in);

#endif
