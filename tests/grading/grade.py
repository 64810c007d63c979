#!/usr/bin/env python3
"""The minivmm labs autograder: builds a student's lab parts on the reference versions of everything else, runs
the lab's visible and hidden tests one per process in a sandbox with time and memory limits, prints a points
table and writes Gradescope's results.json.

    tests/grading/grade.py LAB [STUDENT_DIR] [--backend auto|kvm|soft] [--json PATH] [--only TEST]

Student code is treated as hostile (the design, and why each known attack fails, is in tests/grading/README.md):
  1. The reference is built first, from the kit, with no student code (build/grade/ref, shared and cached).
  2. The student's files are compiled alone, in a scratch copy of the kit's headers (no solutions/, no tests/), as
     an unprivileged user in namespaces that hide the kit; then checked: every #include is a kit or system header,
     no inline assembly, no constructors or ifuncs, no global names but the lab's own, and no outside symbol but
     the kit's API and an allow-list of libc (no exit, fork, exec, signals, raw I/O on descriptors).
  3. The test binaries are linked from that object and the reference objects, by the grader.
  4. Each test runs as an unprivileged user, in its own session, process group and (where the kernel allows)
     pid, mount and network namespaces with the kit hidden, with RLIMIT_NPROC/AS/CPU/FSIZE/NOFILE; every process
     it started is killed when it ends. Its verdict is the harness's line on a pipe the grader reads (fd 3), the
     exit status and cmocka's line together; stdout alone proves nothing.
  5. results.json is written by the grader once no student process is alive, atomically (temp file + rename).

Exit status: 0 full marks, 1 any points lost, 2 the grader itself could not run.
"""
import argparse
import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import resource
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF_O = os.path.join(REPO, "build", "grade", "ref")
TEST_TIMEOUT_S = 20
TOTAL_TIMEOUT_S = 240
TEST_MEMORY_BYTES = 8 << 30  # address space: the software CPU reserves a large code cache
TEST_NPROC = 64
TEST_FSIZE_BYTES = 64 << 20
BUILD_TIMEOUT_S = 300
SANDBOX_USER = "minivmm-grader"
OUTPUT_KEEP = 64 << 10

# What a lab file may call outside the kit: the C library's memory, string, formatting and allocation functions,
# errno, time, and the KVM API's file calls (open, ioctl, mmap). Nothing that ends or forks the process, runs a
# program, sends signals, or reads or writes a descriptor directly.
LIBC_ALLOWED = set("""
memset memcpy memmove memcmp memchr strlen strnlen strcmp strncmp strchr strrchr strstr strcpy strncpy strcat strncat
strdup strndup strerror strtol strtoul strtoll strtoull atoi atol abs labs llabs qsort bsearch
printf fprintf vprintf vfprintf snprintf vsnprintf sprintf vsprintf puts fputs putchar fputc putc fwrite fflush perror
__printf_chk __fprintf_chk __vfprintf_chk __snprintf_chk __vsnprintf_chk __sprintf_chk __vsprintf_chk
__memcpy_chk __memmove_chk __memset_chk __strcpy_chk __strncpy_chk __strcat_chk
stdout stderr malloc calloc realloc free aligned_alloc posix_memalign
__errno_location __assert_fail __stack_chk_fail _GLOBAL_OFFSET_TABLE_ __ctype_b_loc __ctype_tolower_loc
__ctype_toupper_loc tolower toupper
clock_gettime time nanosleep
open open64 openat close ioctl mmap mmap64 munmap
""".split())
SYSTEM_INCLUDE_DIRS = ("/usr/include/", "/usr/lib/gcc/", "/usr/local/include/", "/usr/lib/x86_64-linux-gnu/")
ALLOWED_SECTION = re.compile(r"^(\.(text|data|rodata|bss|tbss|tdata|data\.rel\.ro|ldata|lrodata|lbss)(\..*)?|"
                             r"\.comment|\.note\.GNU-stack|\.note\.gnu\.property|\.eh_frame|\.rela?\..*|\.debug_.*|"
                             r"\.symtab|\.strtab|\.shstrtab|\.group|\.symtab_shndx|)$")


class BuildError(Exception):
    """The student's files do not build, or are refused; the message is for the student."""


def load_table(lab):
    path = os.path.join(REPO, "tests", "grading", f"lab{lab}.points")
    if not os.path.exists(path):
        labs = sorted(f[3:-7] for f in os.listdir(os.path.dirname(path)) if f.endswith(".points"))
        raise SystemExit(f"grade: no lab {lab} (labs with grading tables: {', '.join(labs)})")
    parts, tests = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if fields[0] == "@part" and len(fields) == 3:
                parts.append((fields[1], fields[2]))
            elif fields[0] == "@answers" and len(fields) == 2:
                pass  # load_answers reads it
            elif len(fields) == 4 and fields[2].isdigit() and fields[3] in ("visible", "hidden", "after_due_date"):
                tests.append({"binary": fields[0], "name": fields[1], "max": int(fields[2]), "visibility": fields[3]})
            else:
                raise SystemExit(f"grade: {path}:{lineno}: cannot read '{line}'")
    return parts, tests


def load_answers(lab):
    """The files of the handout's questions a lab collects ("@answers FILE" lines of labN.points)."""
    path = os.path.join(REPO, "tests", "grading", f"lab{lab}.points")
    with open(path) as f:
        return [l.split()[1] for l in (l.split("#", 1)[0] for l in f) if l.split()[:1] == ["@answers"]
                and len(l.split()) == 2]


ANSWERS_KEEP = 64 << 10
ANSWER_BLANK = "(your answer)"


def read_answers(lab, student):
    """Each answers file of the submission: (name, text or None when missing, answered, questions). A question is a
    "## " heading; it is answered when its section holds more than the blank the handout put there."""
    found = []
    for name in load_answers(lab):
        path = find_part(student, name)
        if not path:
            found.append((name, None, 0, 0))
            continue
        with open(path, "rb") as f:
            text = f.read(ANSWERS_KEEP).decode("utf-8", errors="replace")
        sections = re.split(r"^## ", text, flags=re.M)[1:]
        answered = sum(1 for sec in sections
                       if sec.split("\n", 1)[1:] and sec.split("\n", 1)[1].replace(ANSWER_BLANK, "").strip())
        found.append((name, text, answered, len(sections)))
    return found


def lab_dir_name(lab):
    for d in sorted(os.listdir(os.path.join(REPO, "labs"))):
        if d.startswith(f"lab{lab}-"):
            return d
    raise SystemExit(f"grade: no labs/lab{lab}-* directory")


def default_student_dir(lab):
    """The reference solution; in the handout (no solutions/) the starter files."""
    for top in ("solutions", "labs"):
        base = os.path.join(REPO, top)
        for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            if d.startswith(f"lab{lab}-"):
                return os.path.join(base, d)
    raise SystemExit(f"grade: no solutions/lab{lab}-* or labs/lab{lab}-* directory")


def find_part(student, name):
    """The student's copy of a lab file: at the top of the submission, else the first one in a subfolder.
    Symlinks are refused (they could point at the grader's own files)."""
    top = os.path.join(student, name)
    if os.path.isfile(top) and not os.path.islink(top):
        return top
    for root, dirs, files in sorted(os.walk(student)):
        dirs.sort()
        if name in files and not os.path.islink(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def submission_hash(lab, student):
    """sha256 over the lab's files as found in the submission (grade_all.py skips a submission graded with it)."""
    parts, _ = load_table(lab)
    h = hashlib.sha256()
    for _, name in parts:
        path = find_part(student, name)
        h.update(name.encode() + b"\0")
        if path:
            with open(path, "rb") as f:
                h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_quiet(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", **kw)


# ---- the sandbox ---------------------------------------------------------------------------------------------


class Sandbox:
    """How student code runs here: as which user, in which namespaces. Chosen once per grade."""

    def __init__(self, user=SANDBOX_USER):
        self.uid = self.gid = None
        self.groups = []
        self.ns = False
        self.userns = False
        if os.geteuid() == 0:
            self.uid, self.gid = self._ensure_user(user)
            if os.path.exists("/dev/kvm"):  # the kvm backend needs the device's group
                try:
                    self.groups = [os.stat("/dev/kvm").st_gid]
                except OSError:
                    pass
            self.ns = self._probe(["unshare", "--fork", "--pid", "--kill-child", "--mount", "--net", "--ipc",
                                   "--mount-proc", "true"])
        else:
            self.userns = self._probe(["unshare", "--user", "--map-root-user", "--fork", "--pid", "--kill-child",
                                       "--mount", "--net", "--ipc", "--mount-proc", "true"])

    def kvm_unusable(self):
        """Why the test user cannot open /dev/kvm (None when it can, or when there is none)."""
        try:
            st = os.stat("/dev/kvm")
        except OSError:
            return None
        if self.uid is None or st.st_uid == self.uid:
            return None if os.access("/dev/kvm", os.R_OK | os.W_OK) else "/dev/kvm is not readable and writable here"
        if (st.st_gid in self.groups and st.st_mode & 0o060 == 0o060) or st.st_mode & 0o006 == 0o006:
            return None
        return (f"/dev/kvm (mode {st.st_mode & 0o777:04o}, uid {st.st_uid}, gid {st.st_gid}) is not open to the "
                f"grader's unprivileged user (Debian gives it group kvm, mode 0660)")

    def cannot_compile(self):
        """Why the sandbox's user cannot run the compiler (None when it can): a grade that would fail every test
        for a reason that is not the student's is refused with the reason instead."""
        cc = shutil.which("cc") or "cc"
        try:
            p = subprocess.run(self.wrap([cc, "--version"], []), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"the sandbox cannot start the compiler ({e})"
        if p.returncode == 0:
            return None
        first = (p.stdout.strip().splitlines() or ["(no output)"])[0]
        return (f"the grader's unprivileged user cannot run the compiler ({cc} --version, status {p.returncode}: "
                f"{first}); every directory from / down to the compiler and its libraries must be readable and "
                "searchable by all users (mode 755), e.g. a chroot whose root directory is 0700")

    @staticmethod
    def _probe(cmd):
        try:
            return shutil.which("unshare") and shutil.which("setpriv") and \
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    @staticmethod
    def _ensure_user(user):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            for cmd in (["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                         "/usr/sbin/nologin", "--user-group", user], ["adduser", "-S", "-D", "-H", user]):
                if shutil.which(cmd[0]) and run_quiet(cmd).returncode == 0:
                    break
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                raise SystemExit(f"grade: cannot create the unprivileged user {user} (useradd failed); "
                                 "student code is never run as root")
        return pw.pw_uid, pw.pw_gid

    def describe(self):
        if self.uid is not None:
            who = f"user {pwd.getpwuid(self.uid).pw_name} (uid {self.uid})"
            return who + (", pid+mount+net namespaces, kit hidden" if self.ns else
                          ", no namespaces here (unshare refused): processes killed by uid, kit not hidden")
        if self.userns:
            return "your own uid in a user namespace (pid+mount+net), no capabilities, kit hidden"
        return ("your own uid, no namespaces (not root, user namespaces refused): the kit's files are not hidden "
                "from student code; grade as root for the full sandbox")

    def wrap(self, argv, hide):
        """The command line that runs argv in the sandbox with the paths `hide` covered by empty tmpfs."""
        drop = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        if self.uid is not None:
            drop[1:1] = [f"--reuid={self.uid}", f"--regid={self.gid}",
                         "--groups=" + ",".join(map(str, self.groups)) if self.groups else "--clear-groups"]
        if not (self.ns or self.userns):
            return drop + ["--"] + argv
        # sh is the pid namespace's init: it hides the kit, runs the command unprivileged and returns its status
        # (128+N for signal N); when it ends, the kernel kills everything left in the namespace.
        script = ('for d in $HIDE; do mount -t tmpfs -o ro,size=4k,mode=755 tmpfs "$d" || exit 97; done; '
                  '"$@"; exit $?')
        pre = ["unshare", "--fork", "--pid", "--kill-child", "--mount", "--net", "--ipc", "--mount-proc",
               "--propagation", "private"]
        if self.userns:
            pre[1:1] = ["--user", "--map-root-user"]
        return pre + ["--", "/usr/bin/env", "HIDE=" + " ".join(shlex.quote(h) for h in hide), "/bin/sh", "-c",
                      script, "sh"] + drop + ["--"] + argv

    def own(self, path, writable):
        """Gives the sandbox user `path` (writable) or makes it readable only (root-owned, 0755/0644)."""
        if self.uid is None:
            return
        for root, dirs, files in os.walk(path):
            for p in [root] + [os.path.join(root, f) for f in files]:
                if writable:
                    os.chown(p, self.uid, self.gid)
                else:
                    os.chown(p, 0, 0)
                    mode = os.stat(p).st_mode
                    os.chmod(p, (mode & 0o755) | 0o444 | (0o111 if mode & 0o100 else 0))

    def kill_all(self):
        """Kills every process of the sandbox user (root without namespaces: the only net that catches a process
        that left its session)."""
        if self.uid is None or self.ns:
            return
        for _ in range(50):
            found = False
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    if os.stat(f"/proc/{d}").st_uid == self.uid:
                        found = True
                        os.kill(int(d), signal.SIGKILL)
                except OSError:
                    pass
            if not found:
                return
            time.sleep(0.02)


def limits(cpu_s, memory, nproc, fsize):
    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return apply


def run_sandboxed(sandbox, argv, cwd, env, timeout, hide, verdict=False, cpu_s=None, nproc=TEST_NPROC,
                  memory=TEST_MEMORY_BYTES):
    """Runs argv in the sandbox; returns (status, output, verdict text, timed_out). status is the exit status, or
    -N for signal N. With verdict, fd 3 of the command is the write end of a pipe read here."""
    rfd = wfd = None
    pass_fds = ()
    if verdict:
        rfd, wfd = os.pipe()
        pass_fds = (3,)
    apply_limits = limits(cpu_s or timeout + 1, memory, nproc, TEST_FSIZE_BYTES)

    def child():
        if verdict:
            os.dup2(wfd, 3)
        apply_limits()

    p = subprocess.Popen(sandbox.wrap(argv, hide), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=child, pass_fds=pass_fds)
    if wfd is not None:
        os.close(wfd)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ, "out")
    if rfd is not None:
        sel.register(rfd, selectors.EVENT_READ, "verdict")
    out, vtext = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    timed_out = False
    exited_at = None
    while sel.get_map():
        now = time.monotonic()
        if p.poll() is not None and exited_at is None:
            exited_at = now
            sandbox.kill_all()
            try:
                os.killpg(p.pid, signal.SIGKILL)  # what is left of its process group
            except OSError:
                pass
        if now >= deadline or (exited_at is not None and now - exited_at > 2):
            timed_out = exited_at is None
            break
        for key, _ in sel.select(timeout=min(0.2, max(0.0, deadline - now))):
            data = os.read(key.fd, 65536)
            if not data:
                sel.unregister(key.fileobj)
            elif key.data == "out":
                out += data
                del out[:-OUTPUT_KEEP]
            elif len(vtext) < 4096:
                vtext += data
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    p.kill()
    status = p.wait()
    sandbox.kill_all()
    sel.close()
    p.stdout.close()
    if rfd is not None:
        os.close(rfd)
    if (sandbox.ns or sandbox.userns) and status > 128 and not timed_out:
        status = -(status - 128)  # the namespace's sh reports a signal as 128+N
    return status, out.decode(errors="replace"), vtext.decode(errors="replace"), timed_out


# ---- the build -----------------------------------------------------------------------------------------------


def make_cmd(*args):
    return ["make", "-s", "-C", REPO, "MINIVMM_NO_DEPS=1", *args]


def build_reference(binaries):
    """The kit's own objects, test binaries and guests in build/grade/ref, no student code anywhere (cached)."""
    os.makedirs(os.path.dirname(REF_O), exist_ok=True)
    with open(REF_O + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        targets = [os.path.join(REF_O, "tests", b) for b in binaries] + [os.path.join(REF_O, "lib", "libminivmm.a")]
        p = run_quiet(make_cmd(f"O={REF_O}", "-j2", *targets, "guests"), timeout=BUILD_TIMEOUT_S)
        if p.returncode != 0:
            print(f"grade: the kit's reference build failed (not the student's code):\n{p.stdout[-3000:]}",
                  file=sys.stderr)
            raise SystemExit(2)


def kit_api_symbols():
    """Global names a lab file may use from the kit: the core library's and every lab's (never the renamed
    reference's ref_*)."""
    names = set()
    p = run_quiet(["nm", "-g", "--defined-only", os.path.join(REF_O, "lib", "libminivmm.a")])
    names.update(l.split()[2] for l in p.stdout.splitlines() if len(l.split()) == 3)
    labs_obj = os.path.join(REF_O, "obj", "labs")
    for lab in os.listdir(labs_obj):
        syms = os.path.join(labs_obj, lab, "ref.syms")
        if os.path.exists(syms):
            names.update(l.split()[0] for l in open(syms) if l.strip())
    return {n for n in names if not n.startswith("ref_") and not n.startswith("harness_")}


def student_compile_cmd(labdir, var, name, src, obj_root):
    """The exact compile command the Makefile uses for a student's part (make -n), pointed at the scratch kit."""
    p = run_quiet(make_cmd("-n", "-B", f"O={obj_root}", f"{var}={src}", "LAB_EXTRA_CFLAGS=-Wno-error",
                           os.path.join(obj_root, "obj", "labs", labdir, "student", name[:-2] + ".o")))
    for line in p.stdout.splitlines():
        words = shlex.split(line)
        if "-c" in words and src in words:
            return [w for w in words if w not in ("-MMD", "-MP")]
    raise SystemExit(f"grade: cannot find the Makefile's compile command for {name}:\n{p.stdout[-2000:]}")


def check_object(name, src, kit, deps_file, pre_file, obj, allowed_defs, api):
    """The static checks of one compiled student part; raises BuildError with a message naming what to change."""
    problems = []
    deps = open(deps_file).read().replace("\\\n", " ").split(":", 1)[1].split()
    for d in deps:
        real = os.path.realpath(os.path.join(kit, d))
        ok = real == os.path.realpath(src) or real.startswith(SYSTEM_INCLUDE_DIRS) or (
            real.endswith(".h") and real.startswith((os.path.join(kit, "minivmm") + "/", os.path.join(kit, "labs") + "/")))
        if not ok:
            problems.append(f"it includes {d}: a lab file may include only the kit's headers (minivmm/, labs/) "
                            "and system headers")
    mine, line_no = False, 0
    for line in open(pre_file, errors="replace"):
        m = re.match(r'# (\d+) "(.*)"', line)
        if m:
            mine = os.path.realpath(os.path.join(kit, m.group(2))) == os.path.realpath(src)
            line_no = int(m.group(1))
            continue
        if mine and re.search(r"\b(asm|__asm|__asm__)\b", line):
            problems.append(f"line {line_no}: inline assembly is not allowed in a lab file")
            break
        line_no += 1
    sections = run_quiet(["readelf", "-S", "-W", obj]).stdout
    for m in re.finditer(r"^\s*\[\s*([1-9]\d*)\]\s+(\S+)\s", sections, re.M):
        if not ALLOWED_SECTION.match(m.group(2)):
            problems.append(f"section {m.group(2)}: constructors, destructors and custom sections are not allowed "
                            "(code runs only when the kit calls your functions)")
    symtab = run_quiet(["readelf", "-s", "-W", obj]).stdout
    if re.search(r"\bIFUNC\b", symtab):
        problems.append("an ifunc resolver is not allowed")
    for line in run_quiet(["nm", "-g", "--defined-only", obj]).stdout.splitlines():
        sym = line.split()[-1]
        if sym not in allowed_defs:
            problems.append(f"it defines the global name '{sym}', which the lab does not ask for: make it static")
    for line in run_quiet(["nm", "-u", obj]).stdout.splitlines():
        sym = line.split()[-1]
        if sym not in api and sym not in LIBC_ALLOWED:
            problems.append(f"it calls or uses '{sym}', which a lab file may not use"
                            + (" (the renamed reference solution)" if sym.startswith("ref_") else
                               " (the allowed outside calls are the kit's API, memory/string/printf/malloc functions, "
                               "errno, time, and open/ioctl/mmap/close)"))
    if problems:
        raise BuildError(f"{name} is refused by the grader:\n" + "\n".join(f"  - {p}" for p in problems))


def check_defines_all(name, obj, labdir, ref_defs):
    """Every function the lab asks for is in the student's object. The kit links a weak stand-in for each one
    (the plug-in's fallback, which calls the reference): a missing function would silently be the reference's."""
    fallback = os.path.join(REF_O, "obj", "labs", labdir, "fallback.o")
    stand_ins = {l.split()[-1] for l in run_quiet(["nm", fallback]).stdout.splitlines() if l.split()[-2:-1] == ["W"]}
    mine = {l.split()[-1] for l in run_quiet(["nm", "-g", "--defined-only", obj]).stdout.splitlines()}
    missing = sorted((stand_ins & ref_defs) - mine)
    if missing:
        raise BuildError(f"{name} does not define {', '.join(missing)}: the lab asks for every function of the "
                         "starter file (keep the unfinished ones as the starter has them; they score 0, not the "
                         "reference's points)")


def build(scratch, lab, parts, student, binaries, sandbox, skip_checks=False):
    """Builds the test binaries with the student's parts in scratch/build. Returns (warnings, binary hashes);
    raises BuildError."""
    labdir = lab_dir_name(lab)
    kit = os.path.join(scratch, "kit")
    for sub in ("minivmm", "labs"):
        for root, _, files in os.walk(os.path.join(REPO, sub)):
            for f in files:
                if f.endswith(".h"):
                    dst = os.path.join(kit, os.path.relpath(root, REPO), f)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(os.path.join(root, f), dst)
    os.makedirs(os.path.join(kit, "src"))
    os.makedirs(os.path.join(kit, "out"))
    out = os.path.join(scratch, "build")
    shutil.copytree(REF_O, out, symlinks=True, ignore=lambda d, names: ["tests"] if d == REF_O else [])
    api = kit_api_symbols()
    make_vars, warnings = [], []
    sources = []
    for var, name in parts:
        path = find_part(student, name)
        if not path:
            raise BuildError(f"missing student file {name} in the submission (submit it, at the top or in any folder)")
        src = os.path.join(kit, "src", name)
        shutil.copyfile(path, src)
        sources.append((var, name, src))
    sandbox.own(kit, writable=False)
    sandbox.own(os.path.join(kit, "out"), writable=True)
    for var, name, src in sources:
        base = os.path.join(kit, "out", name[:-2])
        cmd = student_compile_cmd(labdir, var, name, src, os.path.join(kit, "out"))
        cmd = cmd[:cmd.index("-o")] + ["-Wno-error", "-fdiagnostics-color=never", "-MD", "-MF", base + ".d",
                                       "-o", base + ".o"] + [w for w in cmd[cmd.index("-o") + 2:]]
        pre = [w for w in cmd if w not in ("-c", "-MD")]
        pre = pre[:pre.index("-MF")] + pre[pre.index("-MF") + 2:]
        pre[pre.index("-o") + 1] = base + ".i"
        pre.insert(1, "-E")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": kit, "TMPDIR": os.path.join(kit, "out")}
        status, text, _, timed_out = run_sandboxed(sandbox, cmd, kit, env, 120, [REPO], cpu_s=120, nproc=256,
                                                   memory=4 << 30)
        text = text.replace(src, name).replace(kit + "/", "")
        if timed_out or status != 0:
            raise BuildError(("the compiler took too long" if timed_out else "") + text.strip())
        if text.strip():
            warnings.append(text.strip())
        status, ptext, _, _ = run_sandboxed(sandbox, pre, kit, env, 120, [REPO], cpu_s=120, nproc=256, memory=4 << 30)
        if status != 0:
            raise BuildError(ptext.strip())
        obj_defs = set()
        ref_raw = os.path.join(REF_O, "obj", "labs", labdir, "ref", name[:-2] + ".raw.o")
        for line in run_quiet(["nm", "-g", "--defined-only", ref_raw]).stdout.splitlines():
            obj_defs.add(line.split()[-1])
        if not skip_checks:
            check_object(name, src, kit, base + ".d", base + ".i", base + ".o", obj_defs, api)
        check_defines_all(name, base + ".o", labdir, obj_defs)
        dst = os.path.join(out, "obj", "labs", labdir, "student", name[:-2] + ".o")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(base + ".o", dst)
        make_vars.append((f"{var}={src}", dst, sha256_file(dst)))
    # Link with the kit's Makefile; it must not compile the student's file again (that compile would see the kit).
    targets = [os.path.join(out, "tests", b) for b in binaries]
    p = run_quiet(make_cmd(f"O={out}", "LAB_EXTRA_CFLAGS=-Wno-error", *[v for v, _, _ in make_vars], *targets),
                  timeout=BUILD_TIMEOUT_S)
    log = "\n".join(l for l in p.stdout.splitlines() if not re.match(r"\s+(CC|LD|GUEST|AR)\s", l))
    if p.returncode != 0:
        raise BuildError(log.replace(kit + "/src/", "").strip() or "the link failed")
    for _, dst, digest in make_vars:
        if sha256_file(dst) != digest:
            raise BuildError("the kit's build compiled your file again (was the Makefile edited during grading?): "
                             "grade again")
    sandbox.own(out, writable=False)
    return warnings, {b: sha256_file(os.path.join(out, "tests", b)) for b in binaries}


# ---- the tests -----------------------------------------------------------------------------------------------


def failure_text(output):
    """cmocka's own failure lines, without the run banners."""
    keep = [l for l in output.splitlines()
            if l.strip() and not l.startswith("[==========]") and not l.startswith("[ RUN      ]")
            and not l.startswith("[  PASSED  ]") and not l.startswith("[  FAILED  ]")
            and "FAILED TEST" not in l and "error: Failure!" not in l]
    return "\n".join(keep[-12:])


def crash_text(sig, out):
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    extra = {"SIGSEGV": " (a NULL or wild pointer?)", "SIGXCPU": " (the CPU time limit: an endless loop?)",
             "SIGXFSZ": " (the file size limit)"}.get(name, "")
    return f"the test process crashed with {name}{extra}" + ("\n" + failure_text(out) if failure_text(out) else "")


def run_test(sandbox, scratch, bindir, guestdir, backend, test, timeout, digest):
    """Runs one test in its own sandboxed process. It passes only if the harness's verdict line on fd 3 says no
    test failed, the process exited 0 and cmocka says it passed; stdout alone proves nothing."""
    exe = os.path.join(bindir, test["binary"])
    if sha256_file(exe) != digest:
        return False, "the test binary changed after the build (tampering): not run"
    home = os.path.join(scratch, "run", test["name"])
    os.makedirs(home)
    sandbox.own(home, writable=True)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "TMPDIR": home, "MINIVMM_BACKEND": backend,
           "MINIVMM_GUEST_DIR": guestdir, "CMOCKA_MESSAGE_OUTPUT": "STDOUT", "MINIVMM_GRADER_VERDICT_FD": "3"}
    if backend == "soft" and not test["binary"].startswith("test_lab6"):
        # Guest time from the instruction count: a test cannot pass or fail by the host's timing. Not lab 6, whose
        # tests are about wall time (pauses, a host thread republishing the clock while the guest reads it).
        env["MINIVMM_SOFT_DETERMINISTIC"] = "1"
    status, out, verdict, timed_out = run_sandboxed(sandbox, [exe, "--only", test["name"]], home, env, timeout,
                                                    [REPO], verdict=True)
    out = out[-6000:]
    if timed_out:
        return False, f"timed out after {timeout} s (an infinite loop in the VMM?)"
    if status < 0:
        return False, crash_text(-status, out)
    m = re.search(r"Test failed with exception: .*\((\d+)\)", out)
    if m:  # cmocka caught the signal itself
        return False, crash_text(int(m.group(1)), "")
    if "[==========] 0 test(s) run." in out:
        return False, f"test {test['name']} does not exist in {test['binary']} (grading table out of date)"
    passed_line = "[  PASSED  ] 1 test(s)." in out
    if status == 0 and passed_line and verdict == "verdict failed=0\n":
        return True, ""
    if status == 0 and passed_line:
        return False, "the test reported success without the harness's verdict: the output was tampered with"
    return False, failure_text(out) or f"the test exited with status {status}"


def write_json_atomically(path, data):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="Grade a minivmm lab.")
    ap.add_argument("lab")
    ap.add_argument("student", nargs="?", help="directory with the student's lab files (default: the solution)")
    ap.add_argument("--backend", default=os.environ.get("MINIVMM_BACKEND", "auto"), choices=["auto", "kvm", "soft"])
    ap.add_argument("--json", help="where to write Gradescope's results.json (default: build/grade/labN/results.json)")
    ap.add_argument("--only", action="append", metavar="TEST", help="run only this test (repeatable)")
    ap.add_argument("--quiet", action="store_true", help="only the total")
    ap.add_argument("--timeout", type=int, default=TEST_TIMEOUT_S, help="seconds per test (default %(default)s)")
    ap.add_argument("--total-timeout", type=int, default=TOTAL_TIMEOUT_S,
                    help="seconds for all the tests together (default %(default)s)")
    ap.add_argument("--sandbox-user", default=SANDBOX_USER, help="the unprivileged user tests run as, when root")
    ap.add_argument("--prepare", action="store_true", help="only build the reference (Gradescope's setup.sh)")
    ap.add_argument("--unsafe-skip-source-checks", action="store_true", help=argparse.SUPPRESS)  # self-test only
    args = ap.parse_args()
    t_start = time.monotonic()

    parts, tests = load_table(args.lab)
    binaries = sorted({t["binary"] for t in tests})
    if args.only:
        unknown = [o for o in args.only if o not in {t["name"] for t in tests}]
        if unknown:
            print(f"grade: lab {args.lab} has no test {', '.join(unknown)} (its tests: "
                  f"{' '.join(t['name'] for t in tests)})", file=sys.stderr)
            return 2
        tests = [t for t in tests if t["name"] in args.only]
    student = os.path.abspath(args.student) if args.student else default_student_dir(args.lab)
    if not os.path.isdir(student):
        print(f"grade: student directory {student} does not exist", file=sys.stderr)
        return 2
    json_path = os.path.abspath(args.json or os.path.join(REPO, "build", "grade", f"lab{args.lab}", "results.json"))
    build_reference(binaries)
    sandbox = Sandbox(args.sandbox_user)
    why = sandbox.cannot_compile()
    if why:
        print(f"grade: {why}", file=sys.stderr)
        return 2
    kvm_why = sandbox.kvm_unusable()
    if kvm_why and args.backend == "kvm":
        print(f"grade: --backend kvm: {kvm_why}", file=sys.stderr)
        return 2
    if kvm_why and args.backend == "auto" and os.path.exists("/dev/kvm"):
        print(f"grade: {kvm_why}; grading on the soft backend (same semantics)")
        args.backend = "soft"
    if args.prepare:
        print(f"grade: lab {args.lab}'s reference is built in {REF_O}; sandbox: {sandbox.describe()}")
        return 0

    results, warnings, build_error = [], [], None
    scratch = tempfile.mkdtemp(prefix="minivmm-grade-")
    os.chmod(scratch, 0o755)
    try:
        try:
            warnings, digests = build(scratch, args.lab, parts, student, binaries, sandbox,
                                      args.unsafe_skip_source_checks)
        except BuildError as e:
            build_error = str(e)
        for t in tests:
            left = args.total_timeout - (time.monotonic() - t_start)
            t0 = time.monotonic()
            if build_error:
                passed, msg = False, "not run: the build failed (the error is at the top)"
            elif left < 1:
                passed, msg = False, f"not run: the grade's total time limit ({args.total_timeout} s) was reached"
            else:
                passed, msg = run_test(sandbox, scratch, os.path.join(scratch, "build", "tests"),
                                       os.path.join(scratch, "build", "guests"), args.backend, t,
                                       max(1, min(args.timeout, int(left))), digests[t["binary"]])
            results.append(dict(t, score=t["max"] if passed else 0, passed=passed, output=msg,
                                seconds=round(time.monotonic() - t0, 2)))
    finally:
        sandbox.kill_all()
        shutil.rmtree(scratch, ignore_errors=True)

    score = sum(r["score"] for r in results)
    total = sum(r["max"] for r in results)
    answers = [] if args.only else read_answers(args.lab, student)
    head = []
    if build_error:
        head.append("Build failed:\n" + "\n".join("    " + l for l in build_error.splitlines()[:40]))
    if warnings:
        head.append("Compiler warnings in your files (fix them: the kit's own build treats them as errors):\n" +
                    "\n".join("    " + l for w in warnings for l in w.splitlines()[:40]))
    for name, text, answered, questions in answers:
        head.append(f"Answers: {name} is not in the submission (the handout's questions: submit it with your code)"
                    if text is None else
                    f"Answers: {name} received, {answered} of {questions} questions answered (read by the course staff)")
    print(f"Lab {args.lab} — {student} — backend {args.backend}")
    if not args.quiet:
        print(f"  sandbox: {sandbox.describe()}")
        for h in head:
            print(h)
        width = max(len(r["name"]) for r in results)
        for r in results:
            mark = "PASS" if r["passed"] else "FAIL"
            print(f"  {mark}  {r['name']:<{width}}  {r['score']:>2}/{r['max']:<2}  {r['visibility']:<7} {r['seconds']:5.1f} s")
            if r["output"] and not build_error:
                for line in r["output"].splitlines()[:6]:
                    print(f"        {line}")
    print(f"Total: {score}/{total}" + (f" (only {', '.join(args.only)})" if args.only else "") +
          f" in {time.monotonic() - t_start:.1f} s")

    gradescope = {
        "score": score,
        "output": "\n\n".join([f"Lab {args.lab}: {score}/{total} points on the {args.backend} backend."] + head),
        "tests": [{"name": r["name"], "score": r["score"], "max_score": r["max"],
                   "status": "passed" if r["passed"] else "failed", "output": r["output"],
                   "visibility": r["visibility"]} for r in results],
    }
    if answers:
        gradescope["answers"] = {name: text for name, text, _, _ in answers if text is not None}
    write_json_atomically(json_path, gradescope)
    print(f"results.json: {json_path}")
    return 0 if score == total else 1


if __name__ == "__main__":
    sys.exit(main())
