#!/usr/bin/env bash
# The demos, as a lecturer runs them: each ends with status 0 and every line it prints fits 80 columns (a
# projector's terminal), escapes aside. Not a terminal here, so no section waits for a key.
#   tests/cli/test_demos.sh BUILD_DIR
set -u
build=${1:?usage: test_demos.sh BUILD_DIR}
cd "$(dirname "$0")/../.."
passed=0 failed=0
for demo in demo demo-lab2 demo-lab3 demo-lab4 demo-lab5 demo-lab6; do
    script=scripts/$demo.sh
    [ -x "$script" ] || continue
    out=$(mktemp)
    MINIVMM_DEMO_PAUSE=1 timeout 120 "$script" "$build" </dev/null >"$out" 2>&1
    rc=$?
    wide=$(sed 's/\x1b\[[0-9;]*[a-zA-Z]//g; s/\x1b(B//g' "$out" | awk 'length($0) > 80 { printf "%d: %s\n", length($0), $0 }')
    if [ "$rc" -ne 0 ]; then
        failed=$((failed + 1)); echo "FAIL $demo: status $rc; its output ends:"; tail -n 8 "$out" | sed 's/^/     | /'
    elif [ -n "$wide" ]; then
        failed=$((failed + 1)); echo "FAIL $demo: $(wc -l <<<"$wide") lines wider than 80 columns (width: line):"
        head -n 5 <<<"$wide" | sed 's/^/     | /'
    else
        passed=$((passed + 1)); echo "ok   $demo: status 0, $(wc -l <"$out") lines, none wider than 80 columns"
    fi
    rm -f "$out"
done
echo "demos: $passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
