#!/usr/bin/env bash
# `make gradescope LAB=n`: the autograder zip for Gradescope (setup.sh, run_autograder, the kit's source).
set -euo pipefail
lab=${1:?usage: make-gradescope.sh LAB}
cd "$(dirname "$0")/.."
[ -f "tests/grading/lab$lab.points" ] || { echo "make-gradescope: no lab $lab (no tests/grading/lab$lab.points)" >&2; exit 2; }
out=build/gradescope/lab$lab
rm -rf "$out"
mkdir -p "$out/pkg/source"
# The kit as checked out, hidden tests and solutions included: grading lab n builds the student's lab-n files
# with the reference parts of the other labs (labs build on each other). The zip is for instructors only.
# (Files deleted in the working tree but still in git's index are left out: the package is the tree as it is.)
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    xargs -0 cp --parents -t "$out/pkg/source"

cat >"$out/pkg/setup.sh" <<'SETUP'
#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image, to build the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq build-essential pkg-config libcmocka-dev libncurses-dev python3 cmake curl >/dev/null
# Unicorn >= 2.1: from apt where the distribution has it, else built from the upstream release.
if ! apt-get install -y -qq libunicorn-dev >/dev/null 2>&1 || ! pkg-config --atleast-version=2.1 unicorn; then
    tmp=$(mktemp -d)
    curl -fsSL https://github.com/unicorn-engine/unicorn/archive/refs/tags/2.1.1.tar.gz | tar -xz -C "$tmp"
    cmake -S "$tmp/unicorn-2.1.1" -B "$tmp/build" -DUNICORN_ARCH=x86 -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$tmp/build" -j"$(nproc)" >/dev/null
    cmake --install "$tmp/build" >/dev/null
    ldconfig
fi
pkg-config --atleast-version=2.1 unicorn
# The reference parts (built once, from this source, with no student code) and the unprivileged user tests run as:
# all that grading needs (the CLI and the other tools are not built).
cd /autograder/source && MINIVMM_NO_DEPS=1 python3 tests/grading/grade.py @LAB@ --prepare
SETUP
sed -i "s/@LAB@/$lab/" "$out/pkg/setup.sh"

cat >"$out/pkg/run_autograder" <<RUN
#!/usr/bin/env bash
# Gradescope runs this per submission: /autograder/submission in, /autograder/results/results.json out.
# The same command as \`make grade LAB=$lab STUDENT=dir\` on the same reference parts: the same score for the same files.
# AUTOGRADER_ROOT moves /autograder elsewhere (the kit's own tests use it).
root=\${AUTOGRADER_ROOT:-/autograder}
cd "\$root/source"
mkdir -p "\$root/results"
exec python3 tests/grading/grade.py $lab "\$root/submission" --backend "\${MINIVMM_BACKEND:-auto}" \\
    --json "\$root/results/results.json"
RUN
chmod +x "$out/pkg/setup.sh" "$out/pkg/run_autograder"
python3 -c 'import shutil, sys; shutil.make_archive(sys.argv[1], "zip", sys.argv[2])' "$out/autograder" "$out/pkg"
echo "make-gradescope: $out/autograder.zip (upload it as the autograder of lab $lab; students submit $(awk '$1 == "@part" { print $3 } $1 == "@answers" { print $2 }' "tests/grading/lab$lab.points" | tr '\n' ' '))"
