/* Small helpers for the libFuzzer targets: a failed property aborts with a message; inputs as files. */
#ifndef TESTS_FUZZ_UTIL_H
#define TESTS_FUZZ_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* A property of the code under test failed: say which, and abort so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz check failed at %s:%d: ", __FILE__, __LINE__);                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* An in-memory file with a path (/proc/self/fd/N), so code that opens files by name reads fuzz input. */
struct fuzz_memfile {
    int fd;
    char path[64];
};

/* Makes the file hold exactly data[0..len), creating it on first use. 0, or -1 with errno. */
static inline int fuzz_memfile_set(struct fuzz_memfile *f, const void *data, size_t len)
{
    if (!f->path[0]) {
        f->fd = memfd_create("fuzz-input", MFD_CLOEXEC);
        if (f->fd < 0)
            return -1;
        snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0 || (len && pwrite(f->fd, data, len, 0) != (ssize_t)len))
        return -1;
    return 0;
}

#endif
