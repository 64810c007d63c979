#!/usr/bin/env bash
# The visualizer in a real terminal: records lab1/hello, replays it in tmux (80x24), drives keys, checks the screen.
#   tests/visualizer/test_viz_tmux.sh [BUILD_DIR]
# Expected numbers come from the same run's exit dump (minivmm --exits), not from mvm-top.
# Ends with: "viz-tmux: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
vmm=$build/bin/minivmm
top=$build/bin/mvm-top
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
sess=mvmtop-test-$$
cleanup() { tmux kill-session -t "$sess" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     | /' <<<"$2"; fail=$((fail + 1)); }
check() { # check NAME CONDITION-STATUS [SCREEN]
    if [ "$2" = 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi
}
finish() { echo "viz-tmux: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit; }

if [ ! -x "$vmm" ] || [ ! -x "$top" ]; then
    bad "build: $vmm and $top exist (run make)"
    finish
fi

# The known trace, and what the exit dump says it holds.
"$vmm" run --guest lab1/hello --trace "$tmp/h.trace" --exits "$tmp/h.exits" -q >"$tmp/h.out" 2>&1
check "minivmm records lab1/hello with --trace" $? "$(cat "$tmp/h.out")"
n_all=$(wc -l <"$tmp/h.exits")
n_io=$(grep -c '^IO ' "$tmp/h.exits")
n_serial=$(grep -c '^IO out port=0x03f8 ' "$tmp/h.exits")
[ "$n_all" -gt 0 ] && [ "$n_io" -gt 0 ]
check "the exit dump has exits ($n_all, $n_io IO, $n_serial to the serial port)" $?

# --summary: no terminal needed.
"$top" replay "$tmp/h.trace" --summary >"$tmp/sum.txt" 2>&1
rc=$?
grep -q ": $n_all exits to userspace" "$tmp/sum.txt" && grep -Eq "^ +$n_io  IO$" "$tmp/sum.txt" &&
    grep -Eq "^ +$n_serial  port 0x03f8 out$" "$tmp/sum.txt" && [ "$rc" = 0 ]
check "--summary shows $n_all exits, IO $n_io, port 0x3f8 $n_serial" $? "$(cat "$tmp/sum.txt")"

# Corrupt and truncated files: one clear line, status 1, no crash.
head -c 100 "$tmp/h.trace" >"$tmp/cut.trace"
"$top" replay "$tmp/cut.trace" --summary >"$tmp/cut.txt" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "truncated" "$tmp/cut.txt" && [ "$(wc -l <"$tmp/cut.txt")" = 1 ]
check "a truncated trace: one line saying so, status 1 (got $rc)" $? "$(cat "$tmp/cut.txt")"
cp "$tmp/h.trace" "$tmp/bad.trace"
printf '\xff' | dd of="$tmp/bad.trace" bs=1 seek=200 conv=notrunc 2>/dev/null
"$top" replay "$tmp/bad.trace" >"$tmp/bad.txt" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "corrupt" "$tmp/bad.txt"
check "a corrupt trace: says corrupt, status 1 (got $rc)" $? "$(cat "$tmp/bad.txt")"

if ! command -v tmux >/dev/null 2>&1; then
    echo "skip the terminal tests: tmux is not installed (scripts/install-deps.sh installs it)"
    skip=$((skip + 6))
    finish
fi

screen() { tmux capture-pane -p -t "$sess" 2>/dev/null; }
# wait_for REGEX: up to 5 s for the screen to match
wait_for() {
    local i
    for i in $(seq 50); do
        screen | grep -Eq "$1" && return 0
        sleep 0.1
    done
    return 1
}

tmux new-session -d -s "$sess" -x 80 -y 24 \
    "TERM=xterm-256color $top replay '$tmp/h.trace' --speed max; echo MVMTOP-EXIT=\$?; sleep 30"
wait_for "$n_all/$n_all exits .*END"
check "80x24 replay reaches the end: $n_all/$n_all exits" $? "$(screen)"
s=$(screen)
grep -Eq "^IO +$n_io " <<<"$s" && grep -Eq " $n_serial +port 0x03f8 out" <<<"$s" &&
    grep -q "Last exits" <<<"$s" && grep -q "Handling time" <<<"$s" && grep -q "Exit rate" <<<"$s"
check "the screen shows IO $n_io and port 0x3f8 x$n_serial, and every panel" $? "$s"

tmux send-keys -t "$sess" h
wait_for "mvm-top keys"
check "h opens the help" $? "$(screen)"
tmux send-keys -t "$sess" x f
wait_for "Last exits: only IO"
check "any key closes the help; f filters the exit list to IO" $? "$(screen)"

tmux resize-window -t "$sess" -x 120 -y 40 2>/dev/null
sleep 0.5
s=$(screen)
[ "$(wc -l <<<"$s")" -ge 40 ] && grep -Eq "^IO +$n_io " <<<"$s" && grep -q "q quit" <<<"$s"
check "it redraws cleanly at 120x40" $? "$s"

tmux send-keys -t "$sess" q
wait_for "MVMTOP-EXIT=0"
check "q quits with status 0" $? "$(screen)"
tmux kill-session -t "$sess" 2>/dev/null

# Paused start, then single steps.
tmux new-session -d -s "$sess" -x 80 -y 24 "$top replay '$tmp/h.trace' --paused; sleep 30"
wait_for "0/$n_all exits .*PAUSED" && { tmux send-keys -t "$sess" s s s; wait_for "3/$n_all exits .*PAUSED"; }
check "--paused starts at 0/$n_all, three steps show 3/$n_all" $? "$(screen)"
tmux send-keys -t "$sess" b
wait_for "2/$n_all exits .*PAUSED"
check "b steps back: 2/$n_all" $? "$(screen)"
tmux kill-session -t "$sess" 2>/dev/null

# run mode: pausing the view pauses the VM itself (SIGUSR1/SIGUSR2 to minivmm, guest time standing still).
tmux new-session -d -s "$sess" -x 80 -y 24 "$top run -- --backend soft --guest probes/spin16 --timeout 2500; sleep 30"
wait_for "live" && { sleep 0.3; tmux send-keys -t "$sess" p; wait_for "PAUSED"; } &&
    { sleep 0.5; tmux send-keys -t "$sess" p; sleep 2.5; tmux send-keys -t "$sess" q; wait_for "minivmm: paused 1 time"; }
check "space in run mode pauses the VM: minivmm says 'paused 1 time'" $? "$(screen)"
tmux kill-session -t "$sess" 2>/dev/null

finish
