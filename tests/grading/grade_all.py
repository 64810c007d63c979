#!/usr/bin/env python3
"""Grades a whole class: every submission folder under SUBMISSIONS, JOBS at a time, into a CSV gradebook (student,
points per test, total, seconds) plus one report per student (the grader's text and results.json). Resumable: a
submission whose lab files hash the same as when it was last graded is not graded again.

    tests/grading/grade_all.py LAB SUBMISSIONS [--jobs N] [--out DIR] [--backend NAME] [--timeout S]

Each job grades with tests/grading/grade.py, exactly as `make grade` and Gradescope do; when root, job k runs
student code as its own user (minivmm-grader-k), so one job's process limit and clean-up never touch another's.
Exit status: 0 when every submission was graded, 2 otherwise.
"""
import argparse
import concurrent.futures
import csv
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grade  # noqa: E402

GRADE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grade.py")


def write_atomically(path, text):
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_report(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def grade_one(lab, name, folder, reports, args, slots):
    slot = slots.get()
    try:
        res_path = os.path.join(reports, f"{name}.results.json")
        cmd = [sys.executable, GRADE, str(lab), folder, "--backend", args.backend, "--json", res_path,
               "--timeout", str(args.timeout), "--sandbox-user", f"{grade.SANDBOX_USER}-{slot}"]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        wall = time.monotonic() - t0
        write_atomically(os.path.join(reports, f"{name}.txt"), p.stdout)
        results = load_report(res_path)
        if p.returncode not in (0, 1) or results is None:
            return {"student": name, "error": p.stdout[-2000:] or f"grade.py exited {p.returncode}", "seconds": wall}
        report = {"student": name, "hash": grade.submission_hash(lab, folder), "seconds": round(wall, 2),
                  "score": results["score"], "results": results}
        write_atomically(os.path.join(reports, f"{name}.json"), json.dumps(report, indent=1))
        return report
    finally:
        slots.put(slot)


def progress(done, total, last, t_start, tty):
    elapsed = time.monotonic() - t_start
    eta = elapsed / done * (total - done) if done else 0
    width = 24
    bar = "#" * (width * done // max(total, 1))
    line = (f"[{bar:<{width}}] {done}/{total}  {last}  "
            f"{elapsed:.0f} s elapsed, ~{eta:.0f} s left")
    print(("\r" + line + "\033[K") if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description="Grade every submission of a class.")
    ap.add_argument("lab")
    ap.add_argument("submissions", help="a folder with one folder per student")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", help="gradebook and reports (default build/grade/class-labN)")
    ap.add_argument("--backend", default=os.environ.get("MINIVMM_BACKEND", "auto"), choices=["auto", "kvm", "soft"])
    ap.add_argument("--timeout", type=int, default=grade.TEST_TIMEOUT_S, help="seconds per test")
    args = ap.parse_args()

    _, tests = grade.load_table(args.lab)
    out = os.path.abspath(args.out or os.path.join(grade.REPO, "build", "grade", f"class-lab{args.lab}"))
    reports = os.path.join(out, "reports")
    os.makedirs(reports, exist_ok=True)
    if not os.path.isdir(args.submissions):
        print(f"grade-all: {args.submissions} is not a folder of submissions", file=sys.stderr)
        return 2
    students = sorted(d for d in os.listdir(args.submissions)
                      if os.path.isdir(os.path.join(args.submissions, d)) and not d.startswith("."))
    # Build the reference once, before the jobs share it.
    p = subprocess.run([sys.executable, GRADE, str(args.lab), "--prepare"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print(p.stdout, file=sys.stderr)
        return 2

    done, todo = {}, []
    for s in students:
        folder = os.path.abspath(os.path.join(args.submissions, s))
        old = load_report(os.path.join(reports, f"{s}.json"))
        if old and old.get("hash") == grade.submission_hash(args.lab, folder):
            done[s] = dict(old, skipped=True)
        else:
            todo.append((s, folder))
    print(f"grade-all: lab {args.lab}, {len(students)} submissions, {len(done)} already graded "
          f"(same files), {len(todo)} to grade, {args.jobs} at a time", file=sys.stderr)
    slots = queue.Queue()
    for k in range(1, max(1, args.jobs) + 1):
        if os.geteuid() == 0:
            grade.Sandbox._ensure_user(f"{grade.SANDBOX_USER}-{k}")  # one after another: useradd locks /etc/passwd
        slots.put(k)
    t_start = time.monotonic()
    tty = sys.stderr.isatty()
    errors = []
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(grade_one, args.lab, s, f, reports, args, slots): s for s, f in todo}
        n = 0
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            with lock:
                n += 1
                if "error" in r:
                    errors.append(r)
                    last = f"{r['student']}: grader error"
                else:
                    done[r["student"]] = r
                    last = f"{r['student']} {r['score']} pts {r['seconds']:.1f} s"
                progress(n, len(todo), last, t_start, tty)
    if tty and todo:
        print(file=sys.stderr)

    names = [t["name"] for t in tests]
    max_total = sum(t["max"] for t in tests)
    rows = []
    for s in students:
        r = done.get(s)
        if not r:
            continue
        by = {t["name"]: t["score"] for t in r["results"]["tests"]}
        rows.append([s] + [by.get(n, 0) for n in names] + [r["score"], max_total, r["seconds"], r["hash"][:16]])
    book = os.path.join(out, "gradebook.csv")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=out)
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student"] + names + ["total", "max", "seconds", "files_sha256"])
        w.writerows(rows)
    os.replace(tmp, book)
    wall = time.monotonic() - t_start
    graded = len(todo) - len(errors)
    print(f"grade-all: {book}: {len(rows)} students; graded {graded} in {wall:.1f} s"
          + (f" ({wall / graded:.2f} s per submission, {args.jobs} jobs)" if graded else "")
          + f"; reports in {reports}", file=sys.stderr)
    for e in errors:
        print(f"grade-all: {e['student']}: the grader failed:\n{e['error']}", file=sys.stderr)
    return 0 if not errors else 2


if __name__ == "__main__":
    sys.exit(main())
