#!/usr/bin/env python3
"""The grader grades itself: the solution scores full marks, the starter scores zero with a reason per
test, and deliberately broken variants of the solution get the partial score and message expected.
Each variant is the solution with one edit, so the variants follow the solution as it changes.

It also attacks the grader as a hostile student would (attacks.py): each attack must score 0, leave the kit and
results.json as they were, leave no process behind and keep the grade bounded in time; checks that the Gradescope
package grades a submission exactly as local grading does; and grades a generated class with grade_all.py.

    tests/grading/test_grader.py [--backend NAME] [--parts variants,starters,attacks,runtime,handout,gradescope,class]

Ends with "grader: N passed, N failed, N skipped".
"""
import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attacks  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRADE = os.path.join(REPO, "tests", "grading", "grade.py")

# (lab, name, file, pattern, replacement, expected score, {test: message fragment} for failed tests)
VARIANTS = [
    (1, "solution", None, None, None, 32, {}),
    # Lab 1's typical mistakes: each test grades one part over the kit's other parts, so each costs its own points.
    (1, "cs-base-not-set", "lab1_realmode.c", r"    seg->base = \(uint64_t\)selector << 4;\n", "",
     27, {"setup_real_low": "expected CS.selector 0 and CS.base 0", "entry_above_64k": "expected CS.selector 0x1000",
          "whole_vmm_runs_hello": "expected the guest to end"}),
    (1, "base-equals-selector", "lab1_realmode.c", r"seg->base = \(uint64_t\)selector << 4;", "seg->base = selector;",
     30, {"setup_real_selector_not_zero": "expected CS.selector 0x2000 and CS.base 0x20000"}),
    (1, "rflags-zero", "lab1_realmode.c", r"regs.rflags = 0x2;", "regs.rflags = 0;",
     31, {"setup_real_rflags_and_cr0": "KVM_SET_REGS was given RFLAGS 0x0"}),
    (1, "cr0-pe-set", "lab1_realmode.c", r"(    if \(kvm_ioctl\(vcpu_fd\(vcpu\), KVM_SET_SREGS)",
     r"    sregs.cr0 |= 1;\n\1", 31, {"setup_real_rflags_and_cr0": "CR0.PE (bit 0) set"}),
    (1, "api-version-unchecked", "lab1_realmode.c", r"if \(version != KVM_API_VERSION\)", "if (version < 0)",
     31, {"vm_open_checks_api_version": "KVM_GET_API_VERSION answered 11"}),
    (1, "slot-flags-forgotten", "lab1_realmode.c", r"        \.flags = flags,\n", "",
     31, {"mem_region_keeps_flags": "the flags (KVM_MEM_LOG_DIRTY_PAGES = 0x1) never reached"}),
    # Mapped short, the whole VMM fails too (its IO data lies past the mapping); 28 on KVM, whose larger mapping
    # the kit then unmaps in full under a second vCPU's feet.
    (1, "kvm-run-mapped-short", "lab1_realmode.c", r"p = kvm_mmap\(NULL, \(size_t\)size,",
     "p = kvm_mmap(NULL, sizeof(struct kvm_run),", (29, 28), {"vcpu_open_maps_run": "but KVM_GET_VCPU_MMAP_SIZE said"}),
    # The system call's habit: -1 for any failure of KVM_RUN. The time limit's EINTR becomes a VMM error, and a real
    # failure loses its errno.
    (1, "kvm-run-returns-minus-one", "lab1_realmode.c",
     r"if \(errno == EINTR \|\| errno == EAGAIN\)\n            return -errno;\n        return mvm_fail\(errno, \"lab1: KVM_RUN: %s\", strerror\(errno\)\);",
     "return -1;", 30, {"enter_interrupted_is_not_an_error": "return -EINTR, it is not an error",
                         "enter_failure_stops": "-EFAULT (return -errno)"}),
    (1, "switch-drops-other-exits", "lab1_realmode.c", r"return vcpu_exit_default\(vcpu, run\);",
     "return MVM_STOP_UNHANDLED;", 31, {"switch_passes_others_on": "pass it to vcpu_exit_default()"}),
    (1, "infinite-loop", "lab1_realmode.c", r"return MVM_STOP_HLT;", "for (;;) { }",
     30, {"halt_is_one_exit": "timed out", "switch_passes_others_on": "timed out"}),
    (1, "null-dereference", "lab1_realmode.c", r"(    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;\n)",
     r"\1    if (run->io.port == 0x500) *(volatile int *)(uintptr_t)run->io.count = 0;\n",
     24, {"hello_serial": "SIGSEGV", "arith_checks_pass": "SIGSEGV"}),
    (1, "build-error", "lab1_realmode.c", r"return MVM_STOP_HLT;", "return MVM_STOP_HLT",
     0, {"setup_real_low": "build failed", "hello_serial": "build failed"}),
    (1, "fake-pass-line", "lab1_realmode.c", r"return MVM_STOP_HLT;",
     'printf("[  PASSED  ] 1 test(s).\\\\n"); fflush(stdout); _exit(0);',
     # Ending the process is not something a lab file may do: the build refuses it, naming the call.
     0, {"halt_is_one_exit": "'_exit'"}),
    (2, "solution", None, None, None, 20, {}),
    (2, "descriptor-limit-off-by-one", "lab2_protected.c", r"limit >>= 12;", "limit = (limit + 1) >> 12;",
     # 11 on KVM, which refuses the 4 KiB code segment; 12 on soft, which checks no code-fetch limits.
     (11, 12), {"gdt_encode_flat": "expected descriptor 0x00cf9b000000ffff",
                "gdt_encode_fields": "expected descriptor 0xffc093000000ffff"}),
    (3, "solution", None, None, None, 21, {}),
    (3, "2m-page-without-ps-flag", "lab3_paging.c", r"\(leaf == 2 \? X86_PTE_PS : 0\)", "0",
     10, {"page_map_4k_and_2m": "PT entry is not present", "hello64_runs": "triple fault"}),
    (4, "solution", None, None, None, 42, {}),
    # The file service: a read that reads the file before checking the guest's buffer loses bytes to a refused
    # read; a descriptor taken as 32 bits makes descriptor 1 << 32 the guest's descriptor 0.
    (4, "reads-before-checking", "lab4_files.c",
     r"    rc = vm_read_gva\(vcpu, gva, buf, len\);\n    if \(rc < 0\)\n        return guest_buffer\(rc, ret\);\n    n = ",
     "    n = ", 40, {"files_hostile_buffers": "the offset moved?"}),
    (4, "descriptor-as-32-bits", "lab4_files.c", r"    if \(fd >= MVM_HC_FS_FDS\)",
     "    fd = (uint32_t)fd;\n    if (fd >= MVM_HC_FS_FDS)", 40, {"files_descriptor_table": "all 64 bits count"}),
    (5, "solution", None, None, None, 24, {}),
    # A device that ignores used_event notifies for every used buffer; one that checks order by bytes misses a
    # readable buffer after a zero-length writable one (the bug the ring fuzzer found).
    (5, "forgets-used-event", "lab5_virtq.c", r"return vring_need_event\(event, vq->used_idx, old_used\);",
     "return true;", 20, {"notify_decision": "expected none", "notifications_counted": "expected 8 transmit"}),
    (5, "order-by-bytes", "lab5_virtq.c", r"if \(chain->nbufs && chain->bufs\[chain->nbufs - 1\]\.device_writes\)",
     "if (chain->writable)", 22, {"chain_walk_hostile": "zero-length writable"}),
]


def make_variant(src_dir, dst_dir, filename, pattern, repl):
    shutil.copytree(src_dir, dst_dir)
    if filename:
        path = os.path.join(dst_dir, filename)
        with open(path) as f:
            text = f.read()
        new, n = re.subn(pattern, repl, text, count=1)
        if n != 1:
            raise RuntimeError(f"variant pattern {pattern!r} no longer matches {filename}: update the variant")
        if "_exit(" in repl or "printf(" in repl:
            new = "#include <stdio.h>\n#include <unistd.h>\n" + new
        with open(path, "w") as f:
            f.write(new)


def grade(lab, student, backend, tmp):
    out_json = os.path.join(tmp, "results.json")
    p = subprocess.run([sys.executable, GRADE, str(lab), student, "--backend", backend, "--json", out_json,
                        "--timeout", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with open(out_json) as f:
            res = json.load(f)
        os.remove(out_json)  # the next grade must write its own
        return p.returncode, p.stdout, res
    except (OSError, ValueError):
        return p.returncode, p.stdout, {"score": None, "output": "", "tests": []}


def solution_dir(lab):
    return next(os.path.join(REPO, "solutions", d) for d in sorted(os.listdir(os.path.join(REPO, "solutions")))
                if d.startswith(f"lab{lab}-"))


def starter_dir(lab):
    return next(os.path.join(REPO, "labs", d) for d in sorted(os.listdir(os.path.join(REPO, "labs")))
                if d.startswith(f"lab{lab}-"))


def check_variants(tmp, backend, results):
    """Each variant of VARIANTS: its score, exit status and the messages of its failed tests."""
    for lab, name, filename, pattern, repl, want_score, want_msgs in VARIANTS:
        vdir = os.path.join(tmp, f"lab{lab}-{name}")
        make_variant(solution_dir(lab), vdir, filename, pattern, repl)
        if name == "solution":
            # Files a student might ship to fool the grader: ignored, since only named parts are copied.
            with open(os.path.join(vdir, "results.json"), "w") as f:
                f.write('{"score": 1000}')
            with open(os.path.join(vdir, "test_lab1.c"), "w") as f:
                f.write("int main(void) { return 0; }\n")
        rc, text, res = grade(lab, vdir, backend, tmp)
        total = sum(t["max_score"] for t in res["tests"])
        wants = want_score if isinstance(want_score, tuple) else (want_score,)
        check(f"lab{lab} {name}: score {' or '.join(map(str, wants))}/{total}", res["score"] in wants,
              f"got {res['score']}:\n{text}", results)
        check(f"lab{lab} {name}: exit status", rc == (0 if res["score"] == total else 1), f"got {rc}", results)
        by_name = {t["name"]: t for t in res["tests"]}
        for test, fragment in want_msgs.items():
            t = by_name.get(test, {"output": "(no such test)", "status": "missing"})
            where = t["output"] + "\n" + res.get("output", "")  # a build failure is told once, at the top
            check(f"lab{lab} {name}: {test} says '{fragment}'",
                  t["status"] == "failed" and fragment in where, where[:300], results)
        if name == "solution":
            check(f"lab{lab} results.json has Gradescope's fields",
                  all(set(t) >= {"name", "score", "max_score", "status", "output", "visibility"} for t in res["tests"])
                  and {"hidden", "visible"} <= {t["visibility"] for t in res["tests"]}, str(res)[:300], results)


def check_messages_once(tmp, backend, results):
    """A warning in the student's file is shown once, at the top, and costs nothing; a build error is shown once;
    --only runs one test."""
    sub = os.path.join(tmp, "lab1-warning")
    make_variant(solution_dir(1), sub, "lab1_realmode.c", r"(    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;\n)",
                 r"\1    int unused_here;\n")
    rc, text, res = grade(1, sub, backend, tmp)
    check("lab1 with a warning: 32/32, the warning shown once at the top",
          res["score"] == 32 and text.count("warning: unused variable") == 1
          and text.index("unused_here") < text.index("PASS")
          and "unused_here" in res["output"], text[-1200:], results)
    sub = os.path.join(tmp, "lab1-error")
    make_variant(solution_dir(1), sub, "lab1_realmode.c", r"return MVM_STOP_HLT;", "return MVM_STOP_HLT")
    rc, text, res = grade(1, sub, backend, tmp)
    check("lab1 with a build error: the error shown once", text.count("error: expected") == 1, text[-1200:], results)
    out_json = os.path.join(tmp, "only.json")
    p = subprocess.run([sys.executable, GRADE, "1", solution_dir(1), "--backend", backend, "--json", out_json,
                        "--only", "hello_serial"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    res = json.load(open(out_json))
    check("grade.py --only hello_serial runs that test alone", p.returncode == 0 and
          [t["name"] for t in res["tests"]] == ["hello_serial"] and res["score"] == 2, p.stdout[-600:], results)


def check_submit_and_answers(tmp, backend, results):
    """make submit packs exactly the lab's files and its answers; every lab has an answers file with the handout's
    questions; the grader counts the answered ones and hands the text to results.json."""
    out = os.path.join(tmp, "lab1.tar.gz")
    p = subprocess.run([sys.executable, os.path.join(REPO, "tests", "grading", "submit.py"), "1", starter_dir(1),
                        "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    names = sorted(tarfile.open(out).getnames()) if p.returncode == 0 else []
    check("make submit LAB=1: exactly lab1_realmode.c and answers.md", names == ["answers.md", "lab1_realmode.c"],
          p.stdout + str(names), results)
    for lab in range(1, 7):
        readme = open(os.path.join(starter_dir(lab), "README.md")).read()
        asked = len(re.findall(r"^\d+\. ", readme.split("## Questions", 1)[-1], re.M))
        path = os.path.join(starter_dir(lab), "answers.md")
        got = len(re.findall(r"^## ", open(path).read(), re.M)) if os.path.exists(path) else 0
        check(f"lab{lab} answers.md holds the handout's {asked} questions", asked > 0 and got == asked,
              f"{got} in {path}", results)
    hint = subprocess.run(["make", "-s", "-C", REPO, "hint", "LAB=1", "STEP=6"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    nohint = subprocess.run(["make", "-s", "-C", REPO, "hint", "LAB=1", "STEP=99"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    check("make hint LAB=1 STEP=6 gives step 6's formulas; STEP=99 says which steps have hints",
          hint.returncode == 0 and "selector << 4" in hint.stdout and nohint.returncode != 0
          and "has no hint for step 99" in nohint.stdout, hint.stdout[-300:] + nohint.stdout[-300:], results)
    sub = os.path.join(tmp, "lab1-answers")
    make_variant(solution_dir(1), sub, None, None, None)
    text = open(os.path.join(starter_dir(1), "answers.md")).read()
    with open(os.path.join(sub, "answers.md"), "w") as f:
        f.write(text.replace("\n(your answer)\n", "\nThe OUT of GUEST_DONE on the test port.\n", 1))
    rc, out_text, res = grade(1, sub, backend, tmp)
    check("the grader reports 1 answered question of lab 1 and keeps the text in results.json",
          "answers.md received, 1 of" in out_text and "GUEST_DONE on the test port" in res.get("answers", {}).get(
              "answers.md", ""), out_text[-600:], results)


def check_starters(tmp, backend, results):
    for lab in sorted({v[0] for v in VARIANTS}):
        rc, text, res = grade(lab, starter_dir(lab), backend, tmp)
        check(f"lab{lab} starter: score 0", res["score"] == 0, text, results)
        silent = [t["name"] for t in res["tests"] if not t["output"].strip()]
        check(f"lab{lab} starter: every test says why", not silent, f"no message for {silent}", results)
        check(f"lab{lab} starter: exit status 1", rc == 1, f"got {rc}", results)


def check(name, cond, why, results):
    results.append(cond)
    print(f"{'ok  ' if cond else 'FAIL'} {name}" + ("" if cond else f": {why}"))


def skip(name, why, results):
    """A check this machine cannot make: printed with its reason and counted as skipped, never as passed."""
    results.append(None)
    print(f"skip {name}: {why}")


def check_handout(tmp, backend, results):
    """make handout: no solutions or hidden tests, and the starter builds and grades there (zero, explained)."""
    tree = os.path.join(tmp, "handout")
    subprocess.run([os.path.join(REPO, "scripts", "make-handout.sh"), tree], check=True, stdout=subprocess.DEVNULL)
    check("handout has no solutions/ and no tests/hidden/",
          not os.path.exists(os.path.join(tree, "solutions")) and not os.path.exists(os.path.join(tree, "tests", "hidden")),
          os.listdir(tree), results)
    leaked = [l for f in os.listdir(os.path.join(tree, "tests", "grading")) if f.endswith(".points")
              for l in open(os.path.join(tree, "tests", "grading", f)) if l.split()[3:4] == ["hidden"]]
    check("handout's points tables list no hidden test", not leaked, leaked, results)
    p = subprocess.run([sys.executable, os.path.join(tree, "tests", "grading", "grade.py"), "1", "--backend", backend,
                        "--timeout", "4", "--json", os.path.join(tmp, "handout.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(tmp, "handout.json")) as f:
        res = json.load(f)
    check("handout builds and grades its starter: 0 points, visible tests only",
          p.returncode == 1 and res["score"] == 0 and res["tests"] and
          all(t["visibility"] == "visible" for t in res["tests"]), p.stdout[-600:], results)


def check_gradescope(tmp, results, lab=3, part="lab3_paging.c"):
    """make gradescope: the zip's run_autograder grades a submission into results/results.json. Lab 3, since it
    stands on labs 1 and 2: their reference parts must be in the package."""
    subprocess.run([os.path.join(REPO, "scripts", "make-gradescope.sh"), str(lab)], check=True,
                   stdout=subprocess.DEVNULL, cwd=REPO)
    root = os.path.join(tmp, "autograder")
    shutil.unpack_archive(os.path.join(REPO, "build", "gradescope", f"lab{lab}", "autograder.zip"), root)
    os.makedirs(os.path.join(root, "submission", "src"))
    shutil.copy(os.path.join(solution_dir(lab), part), os.path.join(root, "submission", "src"))
    names = set(os.listdir(root))
    check("gradescope zip has setup.sh, run_autograder and the source",
          {"setup.sh", "run_autograder", "source"} <= names, sorted(names), results)
    os.chmod(os.path.join(root, "run_autograder"), 0o755)
    p = subprocess.run([os.path.join(root, "run_autograder")], env=dict(os.environ, AUTOGRADER_ROOT=root),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    path = os.path.join(root, "results", "results.json")
    res = json.load(open(path)) if os.path.exists(path) else {}
    check("gradescope run_autograder grades a submission (file in a subfolder) to full marks",
          p.returncode == 0 and res.get("score") == sum(t["max_score"] for t in res.get("tests", [{"max_score": -1}])),
          p.stdout[-600:], results)


def check_gradescope_same_as_local(tmp, backend, results, lab=1, variant="cs-base-not-set"):
    """Local grading is Gradescope grading: the lab 1 package's run_autograder, in a temporary AUTOGRADER_ROOT,
    gives a submission (a partly wrong one, so points differ per test) exactly the scores `grade.py` gives it."""
    v = next(v for v in VARIANTS if v[0] == lab and v[1] == variant)
    sub = os.path.join(tmp, f"gs-lab{lab}-{variant}")
    make_variant(solution_dir(lab), sub, v[2], v[3], v[4])
    _, text, local = grade(lab, sub, backend, tmp)
    subprocess.run([os.path.join(REPO, "scripts", "make-gradescope.sh"), str(lab)], check=True,
                   stdout=subprocess.DEVNULL, cwd=REPO)
    root = os.path.join(tmp, f"autograder-lab{lab}")
    shutil.unpack_archive(os.path.join(REPO, "build", "gradescope", f"lab{lab}", "autograder.zip"), root)
    shutil.copytree(sub, os.path.join(root, "submission"))
    os.chmod(os.path.join(root, "run_autograder"), 0o755)
    p = subprocess.run([os.path.join(root, "run_autograder")],
                       env=dict(os.environ, AUTOGRADER_ROOT=root, MINIVMM_BACKEND=backend),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    path = os.path.join(root, "results", "results.json")
    gs = json.load(open(path)) if os.path.exists(path) else {"score": None, "tests": []}
    same = [(t["name"], t["score"], t["status"]) for t in local["tests"]] == \
        [(t["name"], t["score"], t["status"]) for t in gs["tests"]]
    check(f"lab{lab} {variant}: Gradescope's run_autograder scores {gs['score']}, local grading {local['score']}, "
          "the same per test", gs["score"] == local["score"] and same and v[5] == local["score"],
          f"local:\n{text[-800:]}\ngradescope:\n{p.stdout[-800:]}", results)


def class_submissions(base, n=50):
    """n lab 1 submissions: the reference, the starter and broken variants (VARIANTS), some in subfolders, some
    with extra files. Returns {student: expected score}."""
    kinds = [v for v in VARIANTS if v[0] == 1 and v[1] != "infinite-loop"] + [("starter",)]
    want = {}
    for i in range(n):
        kind = kinds[i % len(kinds)] if i != n - 1 else next(v for v in VARIANTS if v[1] == "infinite-loop")
        name = f"student{i:02d}-{kind[0] if kind[0] == 'starter' else kind[1]}"
        dst = os.path.join(base, name)
        if kind[0] == "starter":
            shutil.copytree(starter_dir(1), dst)
            want[name] = (0,)
        else:
            make_variant(solution_dir(1), dst, kind[2], kind[3], kind[4])
            want[name] = kind[5] if isinstance(kind[5], tuple) else (kind[5],)
        if i % 3 == 1:  # the file one folder down, as a zip from a student's tree often has it
            os.makedirs(os.path.join(dst, "labs", "lab1-realmode"))
            os.rename(os.path.join(dst, "lab1_realmode.c"), os.path.join(dst, "labs", "lab1-realmode", "lab1_realmode.c"))
    return want


def check_class(tmp, backend, results, n=50, jobs=2):
    """make grade-all: n generated submissions graded JOBS at a time into a CSV gradebook with the expected scores,
    one report per student; a second run grades nothing (resumable); a changed submission alone is graded again."""
    base = os.path.join(tmp, "class")
    out = os.path.join(tmp, "class-out")
    want = class_submissions(base, n)
    cmd = [sys.executable, os.path.join(REPO, "tests", "grading", "grade_all.py"), "1", base, "--jobs", str(jobs),
           "--out", out, "--backend", backend, "--timeout", "4"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    rows = {}
    book = os.path.join(out, "gradebook.csv")
    if os.path.exists(book):
        with open(book) as f:
            rows = {r["student"]: r for r in csv.DictReader(f)}
    _, tests = load_points(1)
    wrong = [s for s, w in want.items() if s not in rows or int(rows[s]["total"]) not in w or
             sum(int(rows[s][t]) for t in tests) != int(rows[s]["total"])]
    check(f"grade-all: {n} submissions, gradebook.csv has each student's expected total and per-test points "
          f"({wall:.0f} s, {wall / n:.1f} s per submission with {jobs} jobs)",
          p.returncode == 0 and len(rows) == n and not wrong, f"wrong rows {wrong[:5]}\n{p.stdout[-1500:]}", results)
    reports = os.path.join(out, "reports")
    missing = [s for s in want if not (os.path.exists(os.path.join(reports, f"{s}.txt")) and
                                       os.path.exists(os.path.join(reports, f"{s}.json")))]
    check("grade-all: one report per student (text and results.json)", not missing, missing[:5], results)
    check("grade-all: a progress line per graded submission", p.stdout.count(f"/{n} ") >= n, p.stdout[-600:], results)
    t0 = time.monotonic()
    p2 = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    again = time.monotonic() - t0
    check(f"grade-all again: nothing regraded ({again:.0f} s)", p2.returncode == 0 and f"{n} already graded" in p2.stdout,
          p2.stdout[-600:], results)
    first = sorted(want)[0]
    path = find_file(os.path.join(base, first), "lab1_realmode.c")
    with open(path, "a") as f:
        f.write("\n/* edited after the first grading */\n")
    p3 = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check("grade-all after one submission changed: that one alone is graded again",
          p3.returncode == 0 and f"{n - 1} already graded" in p3.stdout and "1 to grade" in p3.stdout,
          p3.stdout[-600:], results)
    return [("grade-all", n, f"{jobs} jobs, {wall:.1f} s", wall / n)]


def find_file(folder, name):
    for root, _, files in os.walk(folder):
        if name in files:
            return os.path.join(root, name)
    raise FileNotFoundError(name)


def load_points(lab):
    parts, tests = [], []
    for line in open(os.path.join(REPO, "tests", "grading", f"lab{lab}.points")):
        f = line.split("#", 1)[0].split()
        if f and f[0] == "@part":
            parts.append(f[2])
        elif len(f) == 4:
            tests.append(f[1])
    return parts, tests


def live_attack_pids():
    """Processes an attack started and marked by name (mvmattack-*)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().startswith("mvmattack-"):
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def check_attacks(tmp, backend, results, skip_checks=False):
    """Each attack of attacks.py against the grader: 0 points, the grader's files untouched, results.json as the
    grader wrote it, no process left behind, the whole grade bounded in time. Returns rows for the table."""
    help_text = subprocess.run([sys.executable, GRADE, "--help"], stdout=subprocess.PIPE, text=True).stdout
    total_limit = 24
    starter = open(os.path.join(starter_dir(1), "lab1_realmode.c")).read()
    guarded = [os.path.join(REPO, "tests", "grading", "grade.py"),
               os.path.join(REPO, "tests", "hidden", "lab1", "test_lab1_hidden.c")]
    names = [a for a in attacks.ATTACKS if not skip_checks or a in attacks.RUNTIME_ATTACKS]
    rows = []
    for name in names:
        sub = os.path.join(tmp, f"attack-{name}{'-runtime' if skip_checks else ''}")
        os.makedirs(sub)
        json_path = os.path.join(tmp, f"{os.path.basename(sub)}.json")
        with open(os.path.join(sub, "lab1_realmode.c"), "w") as f:
            f.write(attacks.attack_source(name, starter, REPO, json_path))
        before = {p: file_bytes(p) for p in guarded}
        cmd = [sys.executable, GRADE, "1", sub, "--backend", backend, "--json", json_path, "--timeout", "4"]
        if "--total-timeout" in help_text:
            cmd += ["--total-timeout", str(total_limit)]
        if skip_checks:
            cmd += ["--unsafe-skip-source-checks"]
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
            out = p.stdout
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") + "\n(grader killed after 600 s)"
        wall = time.monotonic() - t0
        time.sleep(2.0)  # a background process has had time to rewrite results.json
        survivors = live_attack_pids()
        for pid in survivors:  # the attack's own processes, found by the name it gave them
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        tampered = [os.path.relpath(pth, REPO) for pth, data in before.items() if file_bytes(pth) != data]
        for pth in guarded:
            if file_bytes(pth) != before[pth] and before[pth] is not None:
                with open(pth, "wb") as f:  # put the kit back as it was
                    f.write(before[pth])
        try:
            with open(json_path) as f:
                res = json.load(f)
            score = res.get("score")
            intact = isinstance(res.get("tests"), list) and len(res["tests"]) > 0 and \
                score == sum(t["score"] for t in res["tests"])
        except (OSError, ValueError):
            res, score, intact = {}, None, False
        m = re.search(r"Total: (\d+)/(\d+)", out)
        printed = int(m.group(1)) if m else None
        problems = []
        if printed != 0 or score not in (0, None) or (score is None and printed is None):
            problems.append(f"scored {printed if printed is not None else score}")
        if not intact:
            problems.append("results.json rewritten" if res else "no results.json")
        if tampered:
            problems.append("changed " + ", ".join(tampered))
        if survivors:
            problems.append(f"{len(survivors)} processes outlived the grader")
        if wall > total_limit + 20:
            problems.append(f"took {wall:.0f} s")
        label = f"attack {name}{' (runtime defences alone)' if skip_checks else ''}"
        if skip_checks and name in attacks.NEEDS_HIDDEN_KIT and "kit not hidden" in out and problems:
            skip(label, "the sandbox here cannot hide the kit's files (no mount namespace, e.g. in a chroot); "
                 "the source checks stop this attack, checked above", results)
            rows.append((name, printed if printed is not None else score, "skipped: kit not hidden", wall))
            continue
        check(f"{label}: 0 points, nothing changed, nothing left, {wall:.0f} s", not problems,
              "; ".join(problems) + "\n" + out[-1500:], results)
        rows.append((name, printed if printed is not None else score, "; ".join(problems) or "-", wall))
    return rows


def main():
    parts_all = ["variants", "starters", "attacks", "runtime", "handout", "gradescope", "class"]
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--parts", default=",".join(parts_all), help="comma-separated, of: " + " ".join(parts_all))
    ap.add_argument("--table", help="write the attack table (JSON rows) here")
    args = ap.parse_args()
    parts = args.parts.split(",")
    results, table = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # the grader's unprivileged user reads submissions from here
        if "variants" in parts:
            check_variants(tmp, args.backend, results)
        if "starters" in parts:
            check_starters(tmp, args.backend, results)
            check_messages_once(tmp, args.backend, results)
            check_submit_and_answers(tmp, args.backend, results)
        if "attacks" in parts:
            table["attacks"] = check_attacks(tmp, args.backend, results)
        if "runtime" in parts:
            table["runtime"] = check_attacks(tmp, args.backend, results, skip_checks=True)
        if "handout" in parts:
            check_handout(tmp, args.backend, results)
        if "gradescope" in parts:
            check_gradescope(tmp, results)
            check_gradescope_same_as_local(tmp, args.backend, results)
        if "class" in parts:
            table["class"] = check_class(tmp, args.backend, results)
    for key in ("attacks", "runtime"):
        if table.get(key):
            print(f"\n{key}: attack, score, problems, wall s")
            for name, score, problems, wall in table[key]:
                print(f"  {name:<30} {score!s:>4}  {problems:<40} {wall:5.1f}")
    if args.table:
        with open(args.table, "w") as f:
            json.dump(table, f, indent=1)
    passed = sum(1 for r in results if r is True)
    skipped = sum(1 for r in results if r is None)
    failed = len(results) - passed - skipped
    print(f"grader: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
