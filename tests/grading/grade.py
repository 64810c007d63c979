#!/usr/bin/env python3
"""The minivmm labs autograder: builds a student's lab parts against the reference core, runs the
lab's visible and hidden tests one per process with time and memory limits, prints a points table
and writes Gradescope's results.json.

    tests/grading/grade.py LAB [STUDENT_DIR] [--backend auto|kvm|soft] [--json PATH]

Exit status: 0 full marks, 1 any points lost, 2 the grader itself could not run.
"""
import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_TIMEOUT_S = 20
TEST_MEMORY_BYTES = 8 << 30  # address space: the software CPU reserves a large code cache
BUILD_TIMEOUT_S = 300


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
            elif len(fields) == 4 and fields[2].isdigit() and fields[3] in ("visible", "hidden", "after_due_date"):
                tests.append({"binary": fields[0], "name": fields[1], "max": int(fields[2]), "visibility": fields[3]})
            else:
                raise SystemExit(f"grade: {path}:{lineno}: cannot read '{line}'")
    return parts, tests


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


def build(scratch, parts, student, binaries):
    """Copies only the named student files into the scratch tree and builds there. Returns (ok, log)."""
    src = os.path.join(scratch, "src")
    os.makedirs(src)
    make_vars = []
    for var, name in parts:
        path = find_part(student, name)
        if not path:
            return False, f"missing student file {name} in {student} (submit it, at the top or in any folder)"
        shutil.copyfile(path, os.path.join(src, name))
        make_vars.append(f"{var}={os.path.join(src, name)}")
    out = os.path.join(scratch, "build")
    targets = [os.path.join(out, "tests", b) for b in binaries] + ["guests"]
    cmd = ["make", "-s", "-C", REPO, f"O={out}", "LAB_EXTRA_CFLAGS=-Wno-error", *make_vars, *targets]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"the build took longer than {BUILD_TIMEOUT_S} s"
    # The build's progress lines say nothing about what went wrong: keep the compiler's words.
    log = "\n".join(l for l in p.stdout.splitlines() if not re.match(r"\s+(CC|LD|GUEST|AR)\s", l))
    return p.returncode == 0, log


def limit_child():
    resource.setrlimit(resource.RLIMIT_AS, (TEST_MEMORY_BYTES, TEST_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


def failure_text(output):
    """cmocka's own failure lines, without the run banners."""
    keep = [l for l in output.splitlines()
            if l.strip() and not l.startswith("[==========]") and not l.startswith("[ RUN      ]")
            and not l.startswith("[  PASSED  ]") and not l.startswith("[  FAILED  ]")
            and "FAILED TEST" not in l and "error: Failure!" not in l]
    return "\n".join(keep[-12:])


def run_test(bindir, guestdir, backend, test, timeout):
    """Runs one test in its own process. It passes only if cmocka says so AND the process echoes the
    token handed to it on fd 3, read before any student code ran."""
    exe = os.path.join(bindir, test["binary"])
    token = secrets.token_hex(16)
    rfd, wfd = os.pipe()
    os.write(wfd, token.encode())
    os.close(wfd)
    env = dict(os.environ, MINIVMM_BACKEND=backend, MINIVMM_GUEST_DIR=guestdir, CMOCKA_MESSAGE_OUTPUT="STDOUT",
               MINIVMM_GRADER_TOKEN_FD="3")

    def child_setup():
        os.dup2(rfd, 3)
        limit_child()

    try:
        p = subprocess.run([exe, "--only", test["name"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors="replace", timeout=timeout, env=env, preexec_fn=child_setup,
                           pass_fds=(rfd,))
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s (an infinite loop in the VMM?)"
    finally:
        os.close(rfd)
    out = p.stdout[-6000:]
    if p.returncode < 0:
        sig = signal.Signals(-p.returncode).name
        return False, f"the test process crashed with {sig}" + (" (a NULL or wild pointer?)" if sig == "SIGSEGV" else "") + \
            ("\n" + failure_text(out) if failure_text(out) else "")
    m = re.search(r"Test failed with exception: .*\((\d+)\)", out)
    if m:  # cmocka caught the signal itself
        sig = signal.Signals(int(m.group(1))).name
        return False, f"the test process crashed with {sig}" + (" (a NULL or wild pointer?)" if sig == "SIGSEGV" else "")
    if "[==========] 0 test(s) run." in out:
        return False, f"test {test['name']} does not exist in {test['binary']} (grading table out of date)"
    if p.returncode == 0 and "[  PASSED  ] 1 test(s)." in out and f"grader-token {token}" in out:
        return True, ""
    if p.returncode == 0 and "[  PASSED  ] 1 test(s)." in out:
        return False, "the test reported success without the grader's token: the output was tampered with"
    return False, failure_text(out) or f"the test exited with status {p.returncode}"


def main():
    ap = argparse.ArgumentParser(description="Grade a minivmm lab.")
    ap.add_argument("lab")
    ap.add_argument("student", nargs="?", help="directory with the student's lab files (default: the solution)")
    ap.add_argument("--backend", default=os.environ.get("MINIVMM_BACKEND", "auto"), choices=["auto", "kvm", "soft"])
    ap.add_argument("--json", help="where to write Gradescope's results.json (default: build/grade/labN/results.json)")
    ap.add_argument("--quiet", action="store_true", help="only the total")
    ap.add_argument("--timeout", type=int, default=TEST_TIMEOUT_S, help="seconds per test (default %(default)s)")
    args = ap.parse_args()

    parts, tests = load_table(args.lab)
    student = os.path.abspath(args.student) if args.student else default_student_dir(args.lab)
    if not os.path.isdir(student):
        print(f"grade: student directory {student} does not exist", file=sys.stderr)
        return 2
    json_path = args.json or os.path.join(REPO, "build", "grade", f"lab{args.lab}", "results.json")
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    os.makedirs(os.path.join(REPO, "build", "grade"), exist_ok=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="scratch-", dir=os.path.join(REPO, "build", "grade")) as scratch:
        ok, log = build(scratch, parts, student, sorted({t["binary"] for t in tests}))
        for t in tests:
            if ok:
                passed, msg = run_test(os.path.join(scratch, "build", "tests"), os.path.join(scratch, "build", "guests"),
                                       args.backend, t, args.timeout)
            else:
                passed, msg = False, "build failed:\n" + "\n".join(log.strip().splitlines()[-15:])
            results.append(dict(t, score=t["max"] if passed else 0, passed=passed, output=msg))

    score = sum(r["score"] for r in results)
    total = sum(r["max"] for r in results)
    print(f"Lab {args.lab} — {student} — backend {args.backend}")
    if not args.quiet:
        width = max(len(r["name"]) for r in results)
        for r in results:
            mark = "PASS" if r["passed"] else "FAIL"
            print(f"  {mark}  {r['name']:<{width}}  {r['score']:>2}/{r['max']:<2}  {r['visibility']}")
            if r["output"]:
                for line in r["output"].splitlines()[:6]:
                    print(f"        {line}")
    print(f"Total: {score}/{total}")

    gradescope = {
        "score": score,
        "output": f"Lab {args.lab}: {score}/{total} points on the {args.backend} backend.",
        "tests": [{"name": r["name"], "score": r["score"], "max_score": r["max"],
                   "status": "passed" if r["passed"] else "failed", "output": r["output"],
                   "visibility": r["visibility"]} for r in results],
    }
    with open(json_path, "w") as f:
        json.dump(gradescope, f, indent=2)
    print(f"results.json: {json_path}")
    return 0 if score == total else 1


if __name__ == "__main__":
    sys.exit(main())
