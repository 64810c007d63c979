# What every demo script shares (sourced near its top):
# - every line fits 80 columns (a projector's terminal): the script runs again with its output through
#   scripts/fit80.awk, which wraps a longer line at a space and continues it under its own indent;
# - bold section headings and, for a lecturer, a pause for a key before each section after the first when the
#   demo runs in a terminal (never in CI, never when piped; MINIVMM_DEMO_PAUSE=0 turns it off; q quits).
if [ -z "${MINIVMM_DEMO_FITTED:-}" ]; then
    MINIVMM_DEMO_TTY=0
    if [ -t 0 ] && [ -t 1 ] && [ -z "${CI:-}" ] && [ "${MINIVMM_DEMO_PAUSE:-1}" != 0 ]; then MINIVMM_DEMO_TTY=1; fi
    export MINIVMM_DEMO_FITTED=1 MINIVMM_DEMO_TTY
    MINIVMM_DEMO_BOLD=$(tput bold 2>/dev/null || true) MINIVMM_DEMO_PLAIN=$(tput sgr0 2>/dev/null || true)
    export MINIVMM_DEMO_BOLD MINIVMM_DEMO_PLAIN
    "$0" "$@" 2>&1 | awk -f "$(dirname "$0")/fit80.awk"
    exit "${PIPESTATUS[0]}"
fi
# demo_init "$@": the build directory (the demo's first argument, else build), its minivmm, and a scratch
# directory that goes when the demo ends.
demo_init() {
    build=${1:-build}
    bin=$build/bin/minivmm
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
}

# demo_run MODE GUEST [ARGS...]: the guest's output, how it ended, its exits by kind; $tmp/exits.txt and
# $tmp/regs.txt (its final registers) stay for what the demo shows next. A guest that fails still shows what it
# did: the demo goes on.
demo_run() {
    local mode=$1 guest=$2
    shift 2
    "$bin" run --mode "$mode" --guest "$guest" --exits "$tmp/exits.txt" --final-regs "$tmp/regs.txt" "$@" \
        2>"$tmp/summary.txt" | sed 's/^/   | /' || true
    sed 's/^minivmm: /   /' "$tmp/summary.txt" | fold -s -w 78
    awk '{ k = $1 " " $2 " " $3; n[k]++ } END { for (k in n) printf "   %6d  %s\n", n[k], k }' "$tmp/exits.txt" |
        sort -rn
}

bold=$MINIVMM_DEMO_BOLD
plain=$MINIVMM_DEMO_PLAIN
demo_sections=0

demo_pause() {
    [ "$MINIVMM_DEMO_TTY" = 1 ] || return 0
    sleep 0.2 # the lines before this one reach the terminal first
    printf '   -- press a key for the next section (q quits) --' >/dev/tty
    read -r -s -n 1 key </dev/tty || true
    printf '\r%55s\r' '' >/dev/tty
    if [ "${key:-}" = q ]; then exit 0; fi
}

section() {
    [ "$demo_sections" -eq 0 ] || demo_pause
    demo_sections=$((demo_sections + 1))
    printf '\n%s== %s%s\n' "$bold" "$1" "$plain"
}
