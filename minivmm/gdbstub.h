/* The gdb stub: the GDB remote serial protocol on a TCP port of 127.0.0.1, for one vCPU, on KVM_SET_GUEST_DEBUG. */
#ifndef MINIVMM_GDBSTUB_H
#define MINIVMM_GDBSTUB_H

#include <stdint.h>
#include <stdio.h>

struct mvm_vcpu;
struct mvm_gdb;

/*
 * Listens on 127.0.0.1:port, and only there (0: a free port the kernel picks;
 * mvm_gdb_port says which). `log` gets the lines for people (NULL: none).
 * 0 or -errno with a message.
 */
int mvm_gdb_listen(uint16_t port, FILE *log, struct mvm_gdb **out);
uint16_t mvm_gdb_port(const struct mvm_gdb *g);

/*
 * Waits for gdb to connect and serves it with the vCPU stopped before its
 * first instruction, until gdb continues, steps, detaches or kills. The vCPU
 * must be set up (registers, mode): gdb's register layout follows its mode.
 * 0, MVM_STOP_KILLED when gdb killed the guest, or -errno with a message.
 */
int mvm_gdb_attach(struct mvm_gdb *g, struct mvm_vcpu *vcpu);

/*
 * struct mvm_run_opts' debug_exit (opaque: the mvm_gdb): a KVM_EXIT_DEBUG is
 * a stop (a breakpoint or a step) gdb hears of; serves gdb until it resumes.
 * 0 to go on, MVM_STOP_KILLED, or -errno with a message.
 */
int mvm_gdb_debug_exit(struct mvm_vcpu *vcpu, void *opaque);

/*
 * The run is over: tells an attached gdb why (on its console) and that the
 * guest exited with `status` (minivmm's exit status), then stops debugging.
 */
void mvm_gdb_finish(struct mvm_gdb *g, int status, const char *why);

/* Closes the connection and the listening socket, and frees g. NULL is fine. */
void mvm_gdb_close(struct mvm_gdb *g);

#endif
