/*
 * `minivmm exec -- PROGRAM ARGS`: runs an unmodified KVM program with libminivmm-kvm.so preloaded, so its /dev/kvm
 * is the soft backend (preload/preload.c). The library is found beside the binary (../lib/), or given with --lib
 * or $MINIVMM_PRELOAD_LIB.
 */
#include "cli_exec.h"

#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRELOAD_NAME "libminivmm-kvm.so"

static const char exec_usage[] = "usage: minivmm exec [--lib PATH] -- PROGRAM [ARGS...]\n"
                                 "\n"
                                 "Runs PROGRAM, an unmodified KVM program, with " PRELOAD_NAME " preloaded:\n"
                                 "its /dev/kvm, and the VM and vCPU fds it gets from there, are the soft\n"
                                 "backend's, in its own process. Every other file and call is left alone.\n"
                                 "Works without /dev/kvm; ignores one that is there.\n"
                                 "\n"
                                 "  --lib PATH   the preload library (default: $MINIVMM_PRELOAD_LIB, else\n"
                                 "               ../lib/" PRELOAD_NAME " beside the minivmm binary)\n"
                                 "\n"
                                 "$MINIVMM_PRELOAD_LOG=FILE: the library appends a line to FILE for each KVM\n"
                                 "ioctl the soft backend refuses (once per ioctl and error) and each\n"
                                 "capability it answers 0 to, with the reason.\n"
                                 "\n"
                                 "exit status: PROGRAM's own; 2 bad usage or no library; 126 PROGRAM cannot\n"
                                 "be run; 127 PROGRAM not found.\n";

/* The library beside this binary: DIR/../lib/NAME for the binary's DIR. 0, or -errno. */
static int preload_default(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -errno;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = 0;
    if ((size_t)snprintf(buf, len, "%s/../lib/%s", exe, PRELOAD_NAME) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* dl_iterate_phdr callback: the path of a loaded AddressSanitizer runtime. */
static int find_asan(struct dl_phdr_info *info, size_t size, void *out)
{
    (void)size;
    const char *base = strrchr(info->dlpi_name, '/');
    base = base ? base + 1 : info->dlpi_name;
    if (!strncmp(base, "libasan.so", 10)) {
        *(const char **)out = info->dlpi_name;
        return 1;
    }
    return 0;
}

int cli_exec(int argc, char **argv)
{
    const char *lib = getenv("MINIVMM_PRELOAD_LIB");
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(exec_usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--lib") && i + 1 < argc) {
            lib = argv[++i];
            continue;
        }
        if (argv[i][0] != '-')
            break; /* the program, without "--" */
        fprintf(stderr, "minivmm exec: unknown option '%s' (the program comes after --)\n%s", argv[i], exec_usage);
        return 2;
    }
    if (i >= argc) {
        fprintf(stderr, "minivmm exec: no program given\n%s", exec_usage);
        return 2;
    }
    char path[PATH_MAX];
    if (!lib || !*lib) {
        int r = preload_default(path, sizeof path);
        if (r < 0) {
            fprintf(stderr, "minivmm exec: cannot find this binary's directory: %s\n", strerror(-r));
            return 2;
        }
        lib = path;
    }
    char abs[PATH_MAX];
    if (!realpath(lib, abs) || access(abs, R_OK) != 0) {
        fprintf(stderr, "minivmm exec: the preload library %s: %s (make builds it; --lib names another)\n", lib,
                strerror(errno));
        return 2;
    }
    /*
     * Under AddressSanitizer (make SAN=1) the library needs the sanitizer's runtime, which must come first in the
     * program's library list: the one this binary loaded goes first.
     */
    const char *asan = NULL;
    dl_iterate_phdr(find_asan, &asan);
    const char *old = getenv("LD_PRELOAD");
    size_t len = strlen(abs) + (asan ? strlen(asan) + 1 : 0) + (old && *old ? strlen(old) + 1 : 0) + 1;
    char *preload = malloc(len);
    if (!preload) {
        fprintf(stderr, "minivmm exec: out of memory\n");
        return 5;
    }
    snprintf(preload, len, "%s%s%s%s%s", asan ? asan : "", asan ? ":" : "", abs, old && *old ? ":" : "",
             old && *old ? old : "");
    if (setenv("LD_PRELOAD", preload, 1) != 0) {
        fprintf(stderr, "minivmm exec: setenv LD_PRELOAD: %s\n", strerror(errno));
        free(preload);
        return 5;
    }
    free(preload);
    fflush(NULL);
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "minivmm exec: %s: %s\n", argv[i], strerror(e));
    return e == ENOENT ? 127 : 126;
}
