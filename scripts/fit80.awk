# Wraps every line to 80 columns for the demos (scripts/demo-lib.sh): at the last space that fits, else at 80,
# each continuation under the line's own indent (its leading spaces and a "| " margin, if any) plus two spaces.
# Terminal escapes count for nothing. Flushes each line, so a demo's output appears as it happens.
function visible(s) { gsub(/\033\[[0-9;]*[a-zA-Z]|\033\(B/, "", s); return length(s) }
{
    line = $0
    if (visible(line) <= 80) { print line; fflush(); next }
    match(line, /^ *(\| *)?/)
    indent = sprintf("%" (RLENGTH + 2) "s", "")
    if (RLENGTH > 40) indent = "    "
    first = 1
    while (visible(line) > 80) {
        cut = 0
        for (i = 80; i > length(indent) + 10; i--)
            if (substr(line, i, 1) == " ") { cut = i; break }
        if (cut == 0) cut = 80
        print substr(line, 1, cut - (substr(line, cut, 1) == " " ? 1 : 0))
        rest = substr(line, cut + 1)
        sub(/^ +/, "", rest)
        line = indent rest
    }
    print line
    fflush()
}
