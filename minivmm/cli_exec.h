/* `minivmm exec`: an unmodified KVM program run on the soft backend, through the preload library. */
#ifndef MINIVMM_CLI_EXEC_H
#define MINIVMM_CLI_EXEC_H

/* minivmm exec [--lib PATH] -- PROGRAM [ARGS...]: argv[0] is "exec". Returns only on failure: an exit status. */
int cli_exec(int argc, char **argv);

#endif
