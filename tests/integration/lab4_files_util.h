/*
 * Lab 4 file-service tests' bench: a scratch tree (a share with files and symlinks that point out of it, and a
 * sentinel folder beside it), a VM whose vCPU stands in real mode (gva = gpa), and the hypercalls called directly.
 */
#ifndef TESTS_LAB4_FILES_UTIL_H
#define TESTS_LAB4_FILES_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "harness.h"
#include "lab.h"
#include "lab4-uart/lab4.h"
#include "x86.h"

#define FS_HELLO    "hello from the share\n"
#define FS_SECRET   "sentinel: the guest must never see or change this\n"
#define FS_PATH_GPA 0x9000ull /* where a test puts a path in guest RAM */
#define FS_BUF_GPA  0xa000ull /* and a buffer */
#define FS_RAM      (2ull << 20)

struct fs_bench {
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    struct lab4_fs *fs;
    char root[64];     /* /tmp/lab4-fs-XXXXXX */
    char share[96];    /* root/share: what the guest gets */
    char outside[96];  /* root/outside: the sentinel */
    char before[2048]; /* the sentinel as it was (fs_sentinel) */
};

typedef int (*fs_hc_fn)(struct mvm_vcpu *vcpu, void *opaque, const uint64_t args[MVM_HC_ARGS], int64_t *ret);

static inline void fs_put(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The text of a file of the tree (at most len - 1 bytes), or "(none)". */
static inline const char *fs_get(const char *dir, const char *name, char *buf, size_t len)
{
    char path[512];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f)
        return "(none)";
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Everything in the sentinel folder and what the scratch root holds, as text: names, sizes, contents. */
static inline void fs_sentinel(const struct fs_bench *b, char *out, size_t len)
{
    const char *dirs[] = {b->outside, b->root};
    size_t used = 0;

    out[0] = '\0';
    for (int d = 0; d < 2; d++) {
        struct dirent **names;
        int n = scandir(dirs[d], &names, NULL, alphasort);

        for (int i = 0; i < n; i++) {
            char text[128];
            struct stat st;
            char path[512];

            snprintf(path, sizeof(path), "%s/%s", dirs[d], names[i]->d_name);
            if (lstat(path, &st) == 0 && used < len)
                used += (size_t)snprintf(
                    out + used, len - used, "%s/%s %lld: %s\n", d ? "" : "outside", names[i]->d_name,
                    /* A directory's size is its entry count on tmpfs: the share's own may change. */
                    S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size,
                    d || !S_ISREG(st.st_mode) ? "" : fs_get(dirs[d], names[i]->d_name, text, sizeof(text)));
            free(names[i]);
        }
        free(names);
    }
}

/*
 * The scratch tree: share/hello.txt, share/sub/, and the ways out a hostile guest will try: share/out ->
 * ../outside, share/secret -> ../outside/secret.txt, share/passwd -> /etc/passwd, share/dangling ->
 * ../outside/new.txt (does not exist yet); outside/secret.txt. Its sentinel is taken.
 */
static inline void fs_tree_create(struct fs_bench *b)
{
    char path[512];

    memset(b, 0, sizeof(*b));
    strcpy(b->root, "/tmp/lab4-fs-XXXXXX");
    assert_non_null(mkdtemp(b->root));
    snprintf(b->share, sizeof(b->share), "%s/share", b->root);
    snprintf(b->outside, sizeof(b->outside), "%s/outside", b->root);
    assert_int_equal(mkdir(b->share, 0755), 0);
    assert_int_equal(mkdir(b->outside, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub", b->share);
    assert_int_equal(mkdir(path, 0755), 0);
    fs_put(b->share, "hello.txt", FS_HELLO);
    fs_put(b->outside, "secret.txt", FS_SECRET);
    snprintf(path, sizeof(path), "%s/out", b->share);
    assert_int_equal(symlink("../outside", path), 0);
    snprintf(path, sizeof(path), "%s/secret", b->share);
    assert_int_equal(symlink("../outside/secret.txt", path), 0);
    snprintf(path, sizeof(path), "%s/passwd", b->share);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/dangling", b->share);
    assert_int_equal(symlink("../outside/new.txt", path), 0);
    fs_sentinel(b, b->before, sizeof(b->before));
}

/* The tree, and a VM with the standard devices and a real-mode vCPU; its file service shares share/ if `shared`. */
static inline void fs_bench_create(struct fs_bench *b, bool shared)
{
    const struct mvm_backend *be;

    fs_tree_create(b);
    assert_int_equal(mvm_backend_pick(harness_backend_name(), &be), 0);
    assert_int_equal(vm_create(be, &b->vm), 0);
    assert_int_equal(vm_mem_add(b->vm, 0, FS_RAM, 0), 0);
    assert_int_equal(vm_devices_add_standard(b->vm, NULL), 0);
    assert_int_equal(vcpu_create(b->vm, 0, &b->vcpu), 0);
    assert_int_equal(vcpu_setup_mode(b->vcpu, MVM_MODE_REAL, MVM_BOOT_LOAD_GPA), 0);
    b->fs = lab4_fs_find(b->vm);
    if (!b->fs)
        fail_msg("the VM has no file service: lab 4's plug-in registers MVM_HC_FS_OPEN with its state");
    if (shared && lab4_fs_share(b->vm, b->share) < 0)
        fail_msg("lab4_fs_share(%s): %s", b->share, mvm_error());
}

static inline int fs_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Checks nothing outside the share changed, then removes the tree. */
static inline void fs_tree_destroy(struct fs_bench *b)
{
    char after[sizeof(b->before)];

    fs_sentinel(b, after, sizeof(after));
    nftw(b->root, fs_rm, 16, FTW_DEPTH | FTW_PHYS);
    if (strcmp(after, b->before))
        fail_msg("something outside the shared directory changed. Before the guest's calls:\n%sAfter:\n%s", b->before,
                 after);
}

/* Frees the VM (closing what the guest left open), then fs_tree_destroy. */
static inline void fs_bench_destroy(struct fs_bench *b)
{
    vm_destroy(b->vm);
    fs_tree_destroy(b);
}

/* Puts a path (no NUL of its own) in guest RAM at FS_PATH_GPA; returns its length. */
static inline uint64_t fs_path(struct fs_bench *b, const char *path)
{
    assert_int_equal(vm_write(b->vm, FS_PATH_GPA, path, strlen(path)), 0);
    return strlen(path);
}

/* One hypercall's service called as the doorbell would: the guest's answer, or the test fails if the VMM did. */
static inline int64_t fs_call(struct fs_bench *b, fs_hc_fn fn, const char *name, uint64_t a0, uint64_t a1, uint64_t a2,
                              const char *what)
{
    const uint64_t args[MVM_HC_ARGS] = {a0, a1, a2, 0};
    int64_t ret = 0x5a5a5a5a;
    int rc = fn(b->vcpu, b->fs, args, &ret);

    if (rc != 0)
        fail_msg("%s: %s(0x%llx, 0x%llx, 0x%llx) returned %d (%s); a guest's request, good or bad, is answered in "
                 "*ret and the service returns 0",
                 what, name, (unsigned long long)a0, (unsigned long long)a1, (unsigned long long)a2, rc,
                 rc < 0 ? mvm_error() : mvm_stop_name((enum mvm_stop)rc));
    return ret;
}

#define FS_OPEN(b, path, flags, what)                                                                                  \
    fs_call((b), lab4_hc_fs_open, "lab4_hc_fs_open", FS_PATH_GPA, fs_path((b), (path)), (flags), (what))
#define FS_READ(b, fd, gva, len, what)  fs_call((b), lab4_hc_fs_read, "lab4_hc_fs_read", (fd), (gva), (len), (what))
#define FS_WRITE(b, fd, gva, len, what) fs_call((b), lab4_hc_fs_write, "lab4_hc_fs_write", (fd), (gva), (len), (what))
#define FS_CLOSE(b, fd, what)           fs_call((b), lab4_hc_fs_close, "lab4_hc_fs_close", (fd), 0, 0, (what))
#define FS_STAT(b, fd, gva, what)       fs_call((b), lab4_hc_fs_stat, "lab4_hc_fs_stat", (fd), (gva), 0, (what))

static inline const char *fs_errno_name(int64_t v)
{
    switch (v) {
    case -MVM_HC_ENOENT:
        return "-ENOENT";
    case -MVM_HC_EBADF:
        return "-EBADF";
    case -MVM_HC_EACCES:
        return "-EACCES";
    case -MVM_HC_EFAULT:
        return "-EFAULT";
    case -MVM_HC_EXDEV:
        return "-EXDEV";
    case -MVM_HC_ENODEV:
        return "-ENODEV";
    case -MVM_HC_EINVAL:
        return "-EINVAL";
    case -MVM_HC_EMFILE:
        return "-EMFILE";
    case -MVM_HC_ELOOP:
        return "-ELOOP";
    default:
        return v < 0 ? "an error" : "success";
    }
}

static inline void fs_expect(int64_t got, int64_t want, const char *what)
{
    if (got != want)
        fail_msg("%s: the guest got %lld (%s), it should get %lld (%s)", what, (long long)got, fs_errno_name(got),
                 (long long)want, fs_errno_name(want));
}

/* A path that must not open: any error will do, but never a descriptor. */
static inline void fs_expect_refused(int64_t got, const char *what)
{
    if (got >= 0)
        fail_msg("%s: the guest got descriptor %lld: this path leads out of the shared directory and must be refused "
                 "(lab4_fs_host_open does it: RESOLVE_BENEATH, no symlinks; are you calling open() yourself?)",
                 what, (long long)got);
}

#endif
