#!/usr/bin/env python3
"""The grader grades itself: the solution scores full marks, the starter scores zero with a reason per
test, and deliberately broken variants of the solution get the partial score and message expected.
Each variant is the solution with one edit, so the variants follow the solution as it changes.

    tests/grading/test_grader.py [--backend NAME] [--lab N]

Ends with "grader: N passed, N failed, N skipped".
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRADE = os.path.join(REPO, "tests", "grading", "grade.py")

# (lab, name, file, pattern, replacement, expected score, {test: message fragment} for failed tests)
VARIANTS = [
    (1, "solution", None, None, None, 15, {}),
    (1, "cs-base-not-set", "lab1_realmode.c", r"    seg->base = \(uint64_t\)selector << 4;\n", "",
     1, {"setup_real_low": "expected CS.selector 0 and CS.base 0", "entry_above_64k": "expected the guest to end"}),
    (1, "infinite-loop", "lab1_realmode.c", r"return MVM_STOP_HLT;", "for (;;) { }",
     9, {"halt_is_one_exit": "timed out", "rep_insw": "timed out"}),
    (1, "null-dereference", "lab1_realmode.c", r"(    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;\n)",
     r"\1    if (run->io.port == 0x500) *(volatile int *)(uintptr_t)run->io.count = 0;\n",
     9, {"hello_serial": "SIGSEGV", "arith_checks_pass": "SIGSEGV"}),
    (1, "build-error", "lab1_realmode.c", r"return MVM_STOP_HLT;", "return MVM_STOP_HLT",
     0, {"setup_real_low": "build failed", "hello_serial": "build failed"}),
    (1, "fake-pass-line", "lab1_realmode.c", r"return MVM_STOP_HLT;",
     'printf("[  PASSED  ] 1 test(s).\\\\n"); fflush(stdout); _exit(0);',
     9, {"halt_is_one_exit": "without the grader's token"}),
    (2, "solution", None, None, None, 20, {}),
    (2, "descriptor-limit-off-by-one", "lab2_protected.c", r"limit >>= 12;", "limit = (limit + 1) >> 12;",
     # 11 on KVM, which refuses the 4 KiB code segment; 12 on soft, which checks no code-fetch limits.
     (11, 12), {"gdt_encode_flat": "expected descriptor 0x00cf9b000000ffff",
                "gdt_encode_fields": "expected descriptor 0xffc093000000ffff"}),
    (3, "solution", None, None, None, 21, {}),
    (3, "2m-page-without-ps-flag", "lab3_paging.c", r"\(leaf == 2 \? X86_PTE_PS : 0\)", "0",
     10, {"page_map_4k_and_2m": "PT entry is not present", "hello64_runs": "triple fault"}),
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
    with open(out_json) as f:
        return p.returncode, p.stdout, json.load(f)


def solution_dir(lab):
    return next(os.path.join(REPO, "solutions", d) for d in sorted(os.listdir(os.path.join(REPO, "solutions")))
                if d.startswith(f"lab{lab}-"))


def starter_dir(lab):
    return next(os.path.join(REPO, "labs", d) for d in sorted(os.listdir(os.path.join(REPO, "labs")))
                if d.startswith(f"lab{lab}-"))


def check(name, cond, why, results):
    results.append(cond)
    print(f"{'ok  ' if cond else 'FAIL'} {name}" + ("" if cond else f": {why}"))


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for lab, name, filename, pattern, repl, want_score, want_msgs in VARIANTS:
            vdir = os.path.join(tmp, f"lab{lab}-{name}")
            make_variant(solution_dir(lab), vdir, filename, pattern, repl)
            if name == "solution":
                # Files a student might ship to fool the grader: ignored, since only named parts are copied.
                with open(os.path.join(vdir, "results.json"), "w") as f:
                    f.write('{"score": 1000}')
                with open(os.path.join(vdir, "test_lab1.c"), "w") as f:
                    f.write("int main(void) { return 0; }\n")
            rc, text, res = grade(lab, vdir, args.backend, tmp)
            total = sum(t["max_score"] for t in res["tests"])
            wants = want_score if isinstance(want_score, tuple) else (want_score,)
            check(f"lab{lab} {name}: score {' or '.join(map(str, wants))}/{total}", res["score"] in wants,
                  f"got {res['score']}:\n{text}", results)
            check(f"lab{lab} {name}: exit status", rc == (0 if res["score"] == total else 1), f"got {rc}", results)
            by_name = {t["name"]: t for t in res["tests"]}
            for test, fragment in want_msgs.items():
                t = by_name.get(test, {"output": "(no such test)", "status": "missing"})
                check(f"lab{lab} {name}: {test} says '{fragment}'",
                      t["status"] == "failed" and fragment in t["output"], t["output"][:300], results)
            if name == "solution":
                check(f"lab{lab} results.json has Gradescope's fields",
                      all(set(t) >= {"name", "score", "max_score", "status", "output", "visibility"} for t in res["tests"])
                      and {"hidden", "visible"} <= {t["visibility"] for t in res["tests"]}, str(res)[:300], results)
        for lab in sorted({v[0] for v in VARIANTS}):
            rc, text, res = grade(lab, starter_dir(lab), args.backend, tmp)
            check(f"lab{lab} starter: score 0", res["score"] == 0, text, results)
            silent = [t["name"] for t in res["tests"] if not t["output"].strip()]
            check(f"lab{lab} starter: every test says why", not silent, f"no message for {silent}", results)
            check(f"lab{lab} starter: exit status 1", rc == 1, f"got {rc}", results)
        check_handout(tmp, args.backend, results)
        check_gradescope(tmp, results)
    passed = sum(results)
    print(f"grader: {passed} passed, {len(results) - passed} failed, 0 skipped")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
