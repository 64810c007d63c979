#!/usr/bin/env bash
# `make handout`: the student tree. No solutions, no hidden tests, no grader self-tests; builds and grades as is.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/handout/minivmm-labs}
rm -rf "$out"
mkdir -p "$out"
git ls-files -z --cached --others --exclude-standard |
    grep -zv -e '^solutions/' -e '^tests/hidden/' -e '^tests/grading/test_grader.py$' -e '^scripts/make-gradescope.sh$' |
    xargs -0 cp --parents -t "$out"
# Points tables keep the visible tests only.
for f in "$out"/tests/grading/*.points; do
    awk '$1 == "@part" || /^#/ || $4 != "hidden"' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
done
echo "make-handout: $out (no solutions, no hidden tests)"
