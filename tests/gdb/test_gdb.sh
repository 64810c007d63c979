#!/usr/bin/env bash
# A real gdb (batch mode) drives lab guests through minivmm's gdb stub (minivmm run --gdb): breakpoints (INT3 and
# debug registers), single steps across an I/O exit and across the switch to protected mode, registers including
# the hidden segment state, memory by guest-virtual (page walk) and guest-physical address, a variable written
# and read back, detach and kill. Exact values, on the soft backend and on kvm where it is real KVM.
# Under KVM inside QEMU's software CPU (MINIVMM_KVM_UNDER_TCG=1) breakpoints never fire: there the kvm side reaches
# the same places by single steps, and each breakpoint check skips with the reason, counted.
#   tests/gdb/test_gdb.sh BUILD_DIR     ends with "gdb: N passed, N failed, N skipped"
#   MINIVMM_GDB_BACKENDS="kvm"          only these backends (default "soft kvm")
set -u
build=${1:?usage: test_gdb.sh BUILD_DIR}
bin=$build/bin/minivmm
elf=$build/obj/guests
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
bp=1 # 0: the backend fires no breakpoints; nobp says why
nobp=""

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
skip() { skipped=$((skipped + $2)); echo "skip $1"; }

# session NAME BACKEND MINIVMM_ARGS -- GDB_COMMANDS...: minivmm waits for gdb on a free port; gdb -batch runs the
# commands (one -ex each: a failing command does not stop the rest). Leaves $tmp/NAME.{gdb,out,err,rc}.
session() {
    local name=$1 backend=$2 port="" mpid i
    shift 2
    local margs=()
    while [ "$1" != -- ]; do margs+=("$1"); shift; done
    shift
    local gargs=()
    for c in "$@"; do gargs+=(-ex "$c"); done
    timeout 60 "$bin" run --backend "$backend" --gdb 0 "${margs[@]}" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    mpid=$!
    for i in $(seq 100); do
        port=$(sed -n 's/^minivmm: waiting for gdb on 127.0.0.1:\([0-9]*\) .*/\1/p' "$tmp/$name.err")
        [ -n "$port" ] || ! kill -0 "$mpid" 2>/dev/null && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "     minivmm never said which port it waits on:" && sed 's/^/     | /' "$tmp/$name.err"
    else
        timeout 60 gdb -nx -batch -ex "set pagination off" -ex "target remote 127.0.0.1:$port" "${gargs[@]}" \
            >"$tmp/$name.gdb" 2>&1 </dev/null
    fi
    # gdb has detached, killed, or seen the guest exit: minivmm ends by itself. Still there after 10 s is a hang.
    for i in $(seq 100); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
    kill "$mpid" 2>/dev/null
    wait "$mpid"
    echo $? >"$tmp/$name.rc"
    touch "$tmp/$name.gdb"
}

# expect LABEL NAME LINE: gdb printed exactly LINE (printf lines are the checks' own format).
expect() {
    if grep -qxF -- "$3" "$tmp/$2.gdb"; then
        ok "$1"
    else
        fail "$1: gdb should have printed '$3'; it printed:"
        grep -v '^warning: No executable\|^determining executable' "$tmp/$2.gdb" | sed 's/^/     | /' | head -n 40
        sed 's/^/     | minivmm: /' "$tmp/$2.err" | tail -n 5
    fi
}

# expect_re LABEL NAME REGEX: a line of gdb's output matches the extended REGEX.
expect_re() {
    if grep -qE -- "$3" "$tmp/$2.gdb"; then
        ok "$1"
    else
        fail "$1: no line of gdb's output matches /$3/; it printed:"
        sed 's/^/     | /' "$tmp/$2.gdb" | tail -n 30
    fi
}

# expect_in LABEL NAME FILE_SUFFIX TEXT: the session's file (gdb, out, err) has TEXT somewhere.
expect_in() {
    if grep -qF -- "$4" "$tmp/$2.$3"; then
        ok "$1"
    else
        fail "$1: '$4' missing from $3 of the $2 session:"
        sed 's/^/     | /' "$tmp/$2.$3" | tail -n 20
    fi
}

expect_rc() {
    local rc
    rc=$(cat "$tmp/$2.rc")
    if [ "$rc" = "$3" ]; then ok "$1"; else fail "$1: minivmm exited with status $rc, not $3 ($4)"; fi
}

# sym ELF NAME: the symbol's address as 0x... without leading zeros (as gdb's printf %x prints it, less 0x).
sym() { gdb -nx -batch -ex "printf \"0x%lx\\n\", (long)&$2" "$1" 2>/dev/null; }

# Ctrl-C: a guest in an endless loop (probes/spin16: jmp $) under a synchronous `continue`; gdb gets one SIGINT, as
# from a user's Ctrl-C, sends 0x03, and the stub stops the vCPU between two instructions and reports SIGINT.
interrupt() {
    local b=$1 s=intr-$1 port="" mpid gpid i
    timeout 60 "$bin" run --backend "$b" --gdb 0 --guest probes/spin16 >"$tmp/$s.out" 2>"$tmp/$s.err" &
    mpid=$!
    for i in $(seq 100); do
        port=$(sed -n 's/^minivmm: waiting for gdb on 127.0.0.1:\([0-9]*\) .*/\1/p' "$tmp/$s.err")
        [ -n "$port" ] && break
        sleep 0.1
    done
    # Not under timeout(1): it would pass the SIGINT to gdb's whole group too, and a second SIGINT makes gdb give up.
    gdb -nx -batch -ex "set pagination off" -ex "target remote 127.0.0.1:$port" -ex continue \
        -ex 'printf "stopped eip=%x\n", $eip' -ex stepi -ex 'printf "stepped eip=%x\n", $eip' -ex kill \
        >"$tmp/$s.gdb" 2>&1 </dev/null &
    gpid=$!
    # gdb starts slowly under an emulated CPU: count the time from its connection, not from its start.
    for i in $(seq 300); do
        grep -q '^minivmm: gdb connected' "$tmp/$s.err" && break
        sleep 0.1
    done
    sleep 1.5
    kill -INT "$gpid" 2>/dev/null
    for i in $(seq 100); do kill -0 "$gpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$gpid" 2>/dev/null
    wait "$gpid"
    for i in $(seq 100); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
    kill "$mpid" 2>/dev/null
    wait "$mpid"
    expect "$b Ctrl-C: gdb reports SIGINT" "$s" "Program received signal SIGINT, Interrupt."
    expect "$b Ctrl-C: stopped inside the loop, at its one instruction" "$s" "stopped eip=1000"
    expect "$b Ctrl-C: a step from there runs the jmp back to itself" "$s" "stepped eip=1000"
}

# lab 1's hello in real mode: the loop `next: lodsb; test %al,%al; je finished; out %al,(%dx); jmp next`.
lab1() {
    local b=$1 s=lab1-$1 next finished out
    next=$(sym "$elf/lab1/hello.elf" next)
    finished=$(sym "$elf/lab1/hello.elf" finished)
    out=$(printf '0x%x' $((next + 5)))
    if [ "$bp" = 0 ]; then
        # mov, mov, cld, then the loop's lodsb, test, jz: six steps reach the OUT.
        session "$s" "$b" --guest lab1/hello -- \
            'printf "entry eip=%x cs=%x cs_base=%x cr0=%x\n", $eip, $cs, $cs_base, $cr0' \
            'x/4xb $pc' 'x/i $pc' 'stepi 6' \
            'printf "at out eip=%x eax=%x edx=%x esi=%x\n", $eip, $eax, $edx, $esi' \
            stepi 'printf "after the out eip=%x\n", $eip' detach
    else
    session "$s" "$b" --guest lab1/hello -- \
        'printf "entry eip=%x cs=%x cs_base=%x cr0=%x\n", $eip, $cs, $cs_base, $cr0' \
        'x/4xb $pc' 'x/i $pc' \
        "break *$out" continue \
        'printf "at out eip=%x eax=%x edx=%x esi=%x\n", $eip, $eax, $edx, $esi' \
        stepi 'printf "after the out eip=%x\n", $eip' \
        continue 'printf "second pass eip=%x eax=%x\n", $eip, $eax' \
        delete "hbreak *$finished" continue \
        'printf "hw breakpoint eip=%x eax=%x\n", $eip, $eax' \
        detach
    fi
    expect "$b lab1: stopped at the entry, real-mode state" "$s" "entry eip=1000 cs=0 cs_base=0 cr0=60000010"
    expect_in "$b lab1: memory at the entry (mov \$0x3f8,%dx)" "$s" gdb "0x1000:	0xba	0xf8	0x03	0xbe"
    expect_in "$b lab1: decoded as 16-bit code (i8086)" "$s" gdb "mov    \$0x3f8,%dx"
    if [ "$bp" = 0 ]; then
        expect "$b lab1: six steps to the OUT, 'H' in al" "$s" "at out eip=${out#0x} eax=48 edx=3f8 esi=101c"
    else
        expect "$b lab1: INT3 breakpoint at the OUT, 'H' in al" "$s" "at out eip=${out#0x} eax=48 edx=3f8 esi=101c"
    fi
    expect "$b lab1: a step across the OUT's I/O exit" "$s" "after the out eip=$(printf '%x' $((out + 1)))"
    if [ "$bp" = 0 ]; then
        skip "$b lab1: INT3 breakpoint at the OUT, again after gdb stepped over it: $nobp" 1
        skip "$b lab1: DR0 breakpoint at 'finished': $nobp" 1
    else
        expect "$b lab1: the breakpoint again, after gdb stepped over it ('e')" "$s" "second pass eip=${out#0x} eax=65"
        expect "$b lab1: DR0 breakpoint at 'finished', al = 0" "$s" "hw breakpoint eip=${finished#0x} eax=0"
    fi
    expect_in "$b lab1: the guest's output, whole" "$s" out "Hello from real mode!"
    expect_rc "$b lab1: detached, the guest ran to GUEST_DONE" "$s" 0 "detach lets the guest run on"
}

# lab 2's switch: real mode sets CR0.PE, then a far jump loads CS from its GDT; then C code in 32-bit mode.
lab2() {
    local b=$1 s=lab2-$1 e=$elf/lab2/switch.elf pe ljmp entry
    entry=$(sym "$e" protected_entry)
    ljmp=$(printf '0x%x' $((entry - 8)))
    pe=$(printf '0x%x' $((entry - 11)))
    if [ "$bp" = 0 ]; then
        # cli, xor, mov %ax,%ds, lgdtl, mov %cr0,%eax, or: six steps reach the mov to CR0.
        session "$s" "$b" --guest lab2/switch -- \
            "file $e" 'stepi 6' 'x/i $pc' \
            'printf "before cr0=%x cs=%x\n", $cr0, $cs' \
            stepi 'printf "PE set cr0=%x cs=%x eip=%x\n", $cr0, $cs, $eip' \
            stepi 'printf "far jump cs=%x cs_base=%x eip=%x\n", $cs, $cs_base, $eip' \
            'monitor sregs' 'set architecture i386' 'x/i $pc' \
            'printf "gdt1=%llx\n", switch_gdt[1]' continue
    else
    session "$s" "$b" --guest lab2/switch -- \
        "file $e" "break *$pe" continue 'x/i $pc' \
        'printf "before cr0=%x cs=%x\n", $cr0, $cs' \
        stepi 'printf "PE set cr0=%x cs=%x eip=%x\n", $cr0, $cs, $eip' \
        stepi 'printf "far jump cs=%x cs_base=%x eip=%x\n", $cs, $cs_base, $eip' \
        'monitor sregs' 'set architecture i386' 'x/i $pc' \
        'break guest_main' continue \
        'printf "guest_main eip=%x ds=%x gdt1=%llx\n", $eip, $ds, switch_gdt[1]' \
        delete continue
    fi
    expect_in "$b lab2: the instruction that sets CR0.PE" "$s" gdb "mov    %eax,%cr0"
    expect "$b lab2: real mode before" "$s" "before cr0=60000010 cs=0"
    expect "$b lab2: CR0.PE=1, CS still the real-mode one" "$s" "PE set cr0=60000011 cs=0 eip=${ljmp#0x}"
    expect "$b lab2: the far jump loaded CS 0x08" "$s" "far jump cs=8 cs_base=0 eip=${entry#0x}"
    expect_in "$b lab2: gdb is told the guest runs 32-bit code now" "$s" gdb \
        "minivmm: the guest now runs 32-bit code (CR0.PE=1, CS.D=1)"
    expect_re "$b lab2: monitor sregs shows CS's hidden part (flat 32-bit code)" "$s" \
        '^cs  0008 base=0000000000000000 limit=ffffffff type=[ab] \(code, execute/read(, accessed)?\) s=1 dpl=0 p=1 db=1 l=0 g=1 avl=0$'
    expect_in "$b lab2: decoded as 32-bit code after set architecture i386" "$s" gdb "mov    \$0x10,%ax"
    # The descriptor in memory: the CPU may have set its accessed bit (9a -> 9b) when the far jump loaded it.
    if [ "$bp" = 0 ]; then
        expect_re "$b lab2: a variable read (the GDT's code descriptor)" "$s" "^gdt1=cf9[ab]000000ffff$"
        skip "$b lab2: a symbol breakpoint (guest_main): $nobp" 1
    else
        expect_re "$b lab2: a symbol breakpoint and a variable read" "$s" \
            "^guest_main eip=$(sym "$e" guest_main | sed 's/^0x//') ds=10 gdt1=cf9[ab]000000ffff$"
    fi
    expect_in "$b lab2: gdb heard the guest exit" "$s" gdb "exited normally"
    expect_rc "$b lab2: GUEST_DONE" "$s" 0 "the run ends as without gdb"
}

# lab 3's hello64 in long mode: a variable seen at its identity address and at the higher-half alias (page walk).
lab3() {
    local b=$1 s=lab3-$1 e=$elf/lab3/hello64.elf alias
    if [ "$bp" = 0 ]; then
        # At the entry: the VMM's page tables already map the higher-half alias.
        session "$s" "$b" --guest lab3/hello64 --mode long -- \
            "file $e" 'printf "entry rip=%lx efer=%lx cr3=%lx cs=%x\n", $rip, $efer, $cr3, $cs' \
            'stepi 3' 'printf "three steps rip=%lx return=%lx\n", $rip, *(long *)$rsp' \
            'set var shared_word = 7' \
            'printf "written alias=%ld\n", *(long *)(0xffffffff80000000 + (long)&shared_word)' \
            'monitor phys on' 'x/gx 0xffffffff80000000 + (long)&shared_word' \
            'printf "physical=%ld\n", *(long *)&shared_word' 'monitor phys off' kill
    else
    session "$s" "$b" --guest lab3/hello64 --mode long -- \
        "file $e" 'printf "entry rip=%lx efer=%lx cr3=%lx cs=%x\n", $rip, $efer, $cr3, $cs' \
        'break ucall_send' continue \
        'printf "shared_word=%ld alias=%ld\n", shared_word, *(long *)(0xffffffff80000000 + (long)&shared_word)' \
        'set var shared_word = 7' \
        'printf "written alias=%ld\n", *(long *)(0xffffffff80000000 + (long)&shared_word)' \
        'monitor phys on' 'x/gx 0xffffffff80000000 + (long)&shared_word' \
        'printf "physical=%ld\n", *(long *)&shared_word' 'monitor phys off' \
        'set var shared_word = 42' kill
    fi
    expect "$b lab3: stopped at the entry, long-mode state" "$s" "entry rip=1000 efer=500 cr3=70000 cs=18"
    if [ "$bp" = 0 ]; then
        # mov $stack,%rsp; xor %ebp,%ebp; call guest_main: at guest_main, the call's return address on the stack.
        expect "$b lab3: three single steps in long mode, into a call" "$s" \
            "three steps rip=$(sym "$e" guest_main | sed 's/^0x//') return=$(gdb -nx -batch -ex 'x/4i _start' "$e" 2>/dev/null |
                sed -n '4s/^ *0x\([0-9a-f]*\) .*/\1/p')"
        skip "$b lab3: the guest's own write seen through the alias at a breakpoint (ucall_send): $nobp" 1
    else
        expect "$b lab3: a variable, and the same bytes through the higher-half alias" "$s" "shared_word=42 alias=42"
    fi
    expect "$b lab3: a write by gdb shows through the alias" "$s" "written alias=7"
    alias=$(printf '0x%x' $((0xffffffff80000000 + $(sym "$e" shared_word))))
    expect_in "$b lab3: 'monitor phys on' answered" "$s" gdb "memory addresses are now guest-physical"
    expect "$b lab3: guest-physical addressing has no alias there" "$s" \
        "$alias:	Cannot access memory at address $alias"
    expect "$b lab3: guest-physical read of the variable" "$s" "physical=7"
    expect_rc "$b lab3: gdb's kill ends the run with status 4" "$s" 4 "killed by the debugger"
    expect_in "$b lab3: minivmm says gdb killed it" "$s" err "minivmm: gdb killed the guest"
}

if ! command -v gdb >/dev/null; then
    skip "everything: no gdb (scripts/install-deps.sh installs it)" 8
    echo "gdb: $passed passed, $failed failed, $skipped skipped"
    exit 0
fi
if ! gdb -nx -batch -ex 'echo gdb-runs\n' 2>&1 | grep -qx gdb-runs; then
    skip "everything: gdb does not run here: $(gdb -nx -batch 2>&1 | head -n 1)" 8
    echo "gdb: $passed passed, $failed failed, $skipped skipped"
    exit 0
fi
for b in ${MINIVMM_GDB_BACKENDS:-soft kvm}; do
    if [ "$b" = kvm ]; then
        dev=${MINIVMM_KVM_DEVICE:-/dev/kvm}
        if ! { [ -r "$dev" ] && [ -w "$dev" ]; }; then
            skip "kvm: $dev does not open (no KVM here)" 4
            continue
        fi
        if [ "${MINIVMM_KVM_UNDER_TCG:-0}" = 1 ]; then
            # Steps, registers, memory and monitor sregs match there; breakpoints never fire.
            bp=0
            nobp="KVM under QEMU's software CPU: its nested SVM intercepts no INT3 and fires no DR0-3 breakpoint"
        fi
        if [ -d /sys/module/kvm_pvm ]; then
            skip "kvm: this is KVM-PVM, which does not single-step or trap INT3 as KVM does (KVM inside QEMU does)" 4
            continue
        fi
    fi
    lab1 "$b"
    lab2 "$b"
    lab3 "$b"
    interrupt "$b"
done
echo "gdb: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
