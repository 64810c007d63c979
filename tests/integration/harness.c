/* Integration-test harness: run a built guest on the chosen backend and capture everything it did. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lab.h"
#include "x86.h"

const char *harness_backend_name(void)
{
    const char *b = getenv("MINIVMM_BACKEND");

    return b && *b ? b : "auto";
}

void harness_guest_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("MINIVMM_GUEST_DIR");
    char exe[PATH_MAX];
    ssize_t n;

    if (dir && *dir) {
        snprintf(buf, len, "%s/%s.bin", dir, name);
        return;
    }
    /* A test binary lives in O/tests/ and its guests in O/guests/, whatever O= the build used. */
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        snprintf(buf, len, "%s/../guests/%s.bin", exe, name);
        return;
    }
    snprintf(buf, len, "build/guests/%s.bin", name);
}

static int slurp(const char *path, void **data, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        close(fd);
        return -EINVAL;
    }
    *data = malloc((size_t)st.st_size);
    n = *data ? read(fd, *data, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size) {
        free(*data);
        return -EIO;
    }
    *len = (size_t)st.st_size;
    return 0;
}

/* Puts the vCPU in `mode` at entry_gpa, through the labs' set-ups (the student's lab where one is linked). */
static int harness_vcpu_setup(struct mvm_vcpu *vcpu, enum harness_mode mode, uint64_t entry_gpa)
{
    switch (mode) {
    case HARNESS_MODE_REAL:
        return vcpu_setup_mode(vcpu, MVM_MODE_REAL, entry_gpa);
    case HARNESS_MODE_PROTECTED:
        return vcpu_setup_mode(vcpu, MVM_MODE_PROTECTED, entry_gpa);
    case HARNESS_MODE_LONG:
        return vcpu_setup_mode(vcpu, MVM_MODE_LONG, entry_gpa);
    }
    return mvm_fail(EINVAL, "harness: unknown mode %d", (int)mode);
}

/* The one way a test runs code: load it, set the vCPU up in `mode`, run with the standard devices and limits. */
static int run_code_in_mode(const void *code, size_t len, uint64_t load_gpa, uint64_t entry_gpa, enum harness_mode mode,
                            harness_vm_hook hook, void *opaque, struct guest_run *run)
{
    static const char *const mode_names[] = {"real", "protected", "long"};
    const struct mvm_backend *be;
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu;
    struct mvm_run_opts opts = {.max_exits = 100000, .max_ms = 10000};
    FILE *console, *exits;
    int rc;

    memset(run, 0, sizeof(*run));
    console = open_memstream(&run->console, &run->console_len);
    exits = open_memstream(&run->exits, &run->exits_len);
    if (!console || !exits) {
        if (console)
            fclose(console);
        if (exits)
            fclose(exits);
        return -ENOMEM;
    }
    opts.exit_dump = exits;
    rc = mvm_backend_pick(harness_backend_name(), &be);
    if (rc == 0) {
        run->backend = be->name;
        rc = vm_create(be, &vm);
    }
    if (rc == 0)
        rc = vm_mem_add(vm, 0, 2 << 20, 0);
    if (rc == 0)
        rc = vm_devices_add_standard(vm, console);
    if (rc == 0 && hook)
        rc = hook(vm, opaque);
    if (rc == 0)
        rc = vm_write(vm, load_gpa, code, len);
    if (rc == 0)
        rc = vcpu_create(vm, 0, &vcpu);
    if (rc == 0)
        rc = harness_vcpu_setup(vcpu, mode, entry_gpa);
    if (rc < 0) {
        snprintf(run->error, sizeof(run->error), "VM setup for %s mode failed: %s",
                 (unsigned)mode < 3 ? mode_names[mode] : "an unknown", mvm_error());
    } else {
        run->rc = vcpu_run(vcpu, &opts, &run->res);
        vcpu_regs_get(vcpu, &run->regs);
        vcpu_sregs_get(vcpu, &run->sregs);
    }
    vm_destroy(vm);
    fclose(console);
    fclose(exits);
    return rc;
}

int harness_run_code(const void *code, size_t len, uint64_t load_gpa, uint64_t entry_gpa, struct guest_run *run)
{
    return run_code_in_mode(code, len, load_gpa, entry_gpa, HARNESS_MODE_REAL, NULL, NULL, run);
}

int harness_run_code_mode(const void *code, size_t len, enum harness_mode mode, harness_vm_hook hook, void *opaque,
                          struct guest_run *run)
{
    return run_code_in_mode(code, len, MVM_BOOT_LOAD_GPA, MVM_BOOT_LOAD_GPA, mode, hook, opaque, run);
}

int harness_run_guest(const char *name, struct guest_run *run)
{
    return harness_run_guest_mode(name, HARNESS_MODE_REAL, NULL, NULL, run);
}

int harness_run_guest_mode(const char *name, enum harness_mode mode, harness_vm_hook hook, void *opaque,
                           struct guest_run *run)
{
    char path[512];
    void *code = NULL;
    size_t len = 0;
    int rc;

    harness_guest_path(name, path, sizeof(path));
    rc = slurp(path, &code, &len);
    if (rc < 0) {
        memset(run, 0, sizeof(*run));
        snprintf(run->error, sizeof(run->error),
                 "cannot read guest image %s: %s (build the guests with 'make guests', with the same O= as this test)",
                 path, strerror(-rc));
        return rc;
    }
    rc = run_code_in_mode(code, len, MVM_BOOT_LOAD_GPA, MVM_BOOT_LOAD_GPA, mode, hook, opaque, run);
    free(code);
    return rc;
}

void harness_free(struct guest_run *run)
{
    free(run->console);
    free(run->exits);
    run->console = run->exits = NULL;
}

int harness_count_exits(const struct guest_run *run, const char *prefix)
{
    size_t plen = strlen(prefix);
    int n = 0;

    for (const char *line = run->exits; line && *line;) {
        const char *nl = strchr(line, '\n');

        if (!strncmp(line, prefix, plen))
            n++;
        if (!nl)
            break;
        line = nl + 1;
    }
    return n;
}

const char *harness_explain(const struct guest_run *run)
{
    static char buf[1024];

    if (run->error[0])
        snprintf(buf, sizeof(buf), "%s", run->error);
    else
        snprintf(buf, sizeof(buf), "the VM stopped: %s after %llu exits on the %s backend; %s",
                 mvm_stop_name(run->res.stop), (unsigned long long)run->res.exits, run->backend,
                 run->res.detail[0] ? run->res.detail : "no detail");
    return buf;
}

/*
 * The grader's verdict channel: it opens a pipe on the fd named by
 * MINIVMM_GRADER_VERDICT_FD and reads one line, "verdict failed=N", written
 * after cmocka's run. The test process holds no secret (nothing in its memory
 * is worth stealing); the grader builds a student's file only if it has no
 * constructors, no inline assembly and calls nothing that could write to a
 * descriptor or end the process (tests/grading/grade.py), so only this code
 * reaches the line, and only once the tests have run.
 */
static int grader_verdict_fd(void)
{
    const char *fd_env = getenv("MINIVMM_GRADER_VERDICT_FD");
    int fd;

    if (!fd_env)
        return -1;
    fd = atoi(fd_env);
    unsetenv("MINIVMM_GRADER_VERDICT_FD");
    if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return fd;
}

int harness_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests, size_t n)
{
    int verdict_fd = grader_verdict_fd();
    int failed;

    if (argc == 3 && !strcmp(argv[1], "--only")) {
        cmocka_set_test_filter(argv[2]);
    } else if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--only TEST | --list]\n", argv[0]);
        return 2;
    }
    failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    fflush(stdout);
    if (verdict_fd >= 0) {
        dprintf(verdict_fd, "verdict failed=%d\n", failed);
        close(verdict_fd);
    }
    return failed;
}
