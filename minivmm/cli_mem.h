/* `minivmm run --mem-at GPA:SIZE`: RAM slots besides the one at 0, anywhere in the guest-physical address space. */
#ifndef MINIVMM_CLI_MEM_H
#define MINIVMM_CLI_MEM_H

#include <stdint.h>

#include "mvm.h"

#define CLI_MEM_AT_MAX 4

/* The extra RAM of one run, in the order given. */
struct cli_mem_at {
    int n;
    uint64_t gpa[CLI_MEM_AT_MAX], size[CLI_MEM_AT_MAX];
};

/*
 * Parses one --mem-at GPA:SIZE (numbers as --mem takes them, SIZE with a K/M/G suffix) into m. 0, or EXIT_USAGE
 * after a message naming what is wrong.
 */
int cli_mem_at_parse(struct cli_mem_at *m, const char *arg);
/* Adds m's slots to vm (after the one at 0). 0 or -errno with a message naming the slot. */
int cli_mem_at_add(struct mvm_vm *vm, const struct cli_mem_at *m);

#endif
