#!/usr/bin/env bash
# `make handout`: the student tree, from the committed tree (git archive HEAD), never the working tree.
# Leaves out the solutions, the hidden tests, the grader's self-tests, the Gradescope packager and CI;
# the points tables keep the visible tests; the top README becomes the student's (real maxima, the
# commands that work there). Uncommitted changes are named and left out.
#   scripts/make-handout.sh [OUT_DIR]      (default build/handout/minivmm-labs)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/handout/minivmm-labs}

git rev-parse --verify -q HEAD >/dev/null || { echo "make-handout: no commit to build from (git commit first)" >&2; exit 2; }

# Uncommitted work is never shipped: say what is left out, so an instructor is not surprised.
dirty=$(git status --porcelain --untracked-files=all -- . | sed 's/^...//')
if [ -n "$dirty" ]; then
    echo "make-handout: these changes are not committed and are NOT in the handout (commit them to ship them):" >&2
    sed 's/^/    /' <<<"$dirty" >&2
    if grep -qE '^(labs|solutions)/' <<<"$dirty"; then
        echo "make-handout: note: some of them are under labs/ or solutions/" >&2
    fi
fi

rm -rf "$out"
mkdir -p "$out"
git archive --format=tar HEAD | tar -x -C "$out"
rm -rf "$out/solutions" "$out/tests/hidden" "$out/tests/grading/test_grader.py" "$out/tests/grading/attacks.py" \
    "$out/tests/grading/grade_all.py" "$out/scripts/make-gradescope.sh" "$out/.ci" "$out/scripts/fresh-root-check.sh"

# Points tables keep the visible tests only; the README's table shows each lab's visible maximum.
rows=""
for f in "$out"/tests/grading/lab*.points; do
    awk '$1 == "@part" || /^#/ || $4 != "hidden"' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
    lab=$(basename "$f" .points)
    lab=${lab#lab}
    max=$(awk '!/^#/ && $1 != "@part" && NF == 4 && $4 == "visible" { s += $3 } END { print s + 0 }' "$f")
    files=$(awk '$1 == "@part" { print $3 } $1 == "@answers" { print $2 }' "$f" | tr '\n' ' ')
    dir=$(cd "$out/labs" && ls -d "lab$lab-"* 2>/dev/null | head -n1)
    rows="$rows| $lab | \`labs/$dir/README.md\` | \`$(sed 's/ $//; s/ /`, `/g' <<<"$files")\` | $max |"$'\n'
done

template=$out/scripts/handout-README.md
[ -f "$template" ] || { echo "make-handout: the commit has no scripts/handout-README.md (the student README's template)" >&2; exit 2; }
sed -e '/@LAB_ROWS@/{' -e 'r /dev/stdin' -e 'd' -e '}' "$template" >"$out/README.md" <<<"${rows%$'\n'}"
rm -f "$template"
echo "make-handout: $out (from commit $(git rev-parse --short HEAD); no solutions, no hidden tests)"
