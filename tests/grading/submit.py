#!/usr/bin/env python3
"""`make submit LAB=n [STUDENT=dir]`: build/submit/labN.tar.gz holding exactly the files lab n asks for (the @part
and @answers lines of tests/grading/labN.points: your code and the handout's answers), taken from labs/labN-*/ or
from STUDENT. Upload it to Gradescope, or hand it to
`make grade LAB=n STUDENT=...` after unpacking: the grader reads the same files and nothing else.

    tests/grading/submit.py LAB [STUDENT_DIR] [--out PATH]
"""
import argparse
import io
import os
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grade  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="Pack a lab's files for submission.")
    ap.add_argument("lab")
    ap.add_argument("student", nargs="?", help="where your files are (default labs/labN-*/)")
    ap.add_argument("--out", help="the tarball (default build/submit/labN.tar.gz)")
    args = ap.parse_args()
    parts, _ = grade.load_table(args.lab)
    src = os.path.abspath(args.student or os.path.join(grade.REPO, "labs", grade.lab_dir_name(args.lab)))
    out = os.path.abspath(args.out or os.path.join(grade.REPO, "build", "submit", f"lab{args.lab}.tar.gz"))
    files = []
    for name in [name for _, name in parts] + grade.load_answers(args.lab):
        path = grade.find_part(src, name)
        if not path:
            print(f"submit: {name} is not in {src}" + (" (the handout's questions: start from the starter's copy in "
                  f"labs/{grade.lab_dir_name(args.lab)}/)" if name in grade.load_answers(args.lab) else ""),
                  file=sys.stderr)
            return 2
        files.append((name, path))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tarfile.open(out + ".tmp", "w:gz") as tar:
        for name, path in files:
            with open(path, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(os.path.getmtime(path))
            tar.addfile(info, io.BytesIO(data))
    os.replace(out + ".tmp", out)
    print(f"submit: {out}: {' '.join(n for n, _ in files)} (from {src})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
