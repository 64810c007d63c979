#!/bin/sh
# Prints the hint for step STEP of lab LAB from labs/labLAB-*/hints.md (make hint LAB=n STEP=n).
lab=$1
step=$2
case "$lab" in '' | *[!0-9]*) echo "usage: make hint LAB=n STEP=n (LAB: a lab number)" >&2; exit 2 ;; esac
case "$step" in '' | *[!0-9]*) echo "usage: make hint LAB=$lab STEP=n (STEP: a step number of the lab's README)" >&2; exit 2 ;; esac
file=$(ls labs/lab"$lab"-*/hints.md 2>/dev/null | head -n 1)
if [ -z "$file" ]; then
    echo "lab $lab has no hints file (labs/lab$lab-*/hints.md); its README's Hints section is all there is" >&2
    exit 2
fi
awk -v want="## Step $step" '
    $0 == want { on = 1; found = 1; next }
    /^## / { on = 0 }
    on { print }
    END { exit found ? 0 : 1 }' "$file" && exit 0
echo "$file has no hint for step $step (its steps: $(grep '^## Step' "$file" | sed 's/## Step //' | tr '\n' ' '))" >&2
exit 2
