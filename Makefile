# minivmm labs: one non-recursive Makefile. `make demo` and `make test` are the two commands.
# O=DIR puts the build elsewhere; SAN=1 builds with ASan+UBSan; V=1 shows commands.
# LAB1_SRC=path (LAB2_SRC, ...) builds on a student's copy of that lab's file, the reference for the others.

O ?= build
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

# Dependencies come first: on a fresh machine the first `make` (any target) installs the packages
# before the probes below (pkg-config, clang, bpftool) are evaluated. The check is quick when all is
# there and runs once per top-level make (sub-makes inherit MINIVMM_DEPS_CHECKED). MINIVMM_NO_DEPS=1
# skips it for those who install the packages themselves (scripts/install-deps.sh lists them).
NODEPS_GOALS := clean help handout deps submit hint
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
ifeq ($(MINIVMM_NO_DEPS)$(MINIVMM_DEPS_CHECKED),)
DEPS_STATUS := $(shell ./scripts/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error scripts/install-deps.sh failed (status $(DEPS_STATUS)), see its message above; MINIVMM_NO_DEPS=1 skips the step if you installed the packages yourself)
endif
endif
endif
export MINIVMM_DEPS_CHECKED := 1

# `make` alone builds everything, whatever rules the labs' fragments (labs/*/lab.mk) define first.
.DEFAULT_GOAL := all
CC ?= cc
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -MMD -MP -Iminivmm -Ilabs
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
UNICORN_CFLAGS := $(shell pkg-config --cflags unicorn 2>/dev/null)
UNICORN_LIBS := $(shell pkg-config --libs unicorn 2>/dev/null)
CFLAGS := $(CFLAGS_BASE) $(UNICORN_CFLAGS) $(if $(filter 1,$(SAN)),$(SAN_FLAGS))
LDFLAGS := $(if $(filter 1,$(SAN)),$(SAN_FLAGS))
LDLIBS := $(UNICORN_LIBS) -lpthread

# Guests: freestanding, their own flags, flat binaries.
GUEST_CFLAGS := -ffreestanding -fno-pic -fno-stack-protector -mno-red-zone -nostdlib -Iminivmm -Iguest-kernels
GUEST_LD := ld

# A lab's reference part: solutions/ (the starter where there is none, as in the handout).
lab_part = $(firstword $(wildcard solutions/$(1)) labs/$(1))

# The CLI is main.c and its helpers (minivmm/cli_*.c); everything else in minivmm/ is the core library.
CLI_OBJ := $(patsubst %.c,$(O)/obj/%.o,minivmm/main.c $(wildcard minivmm/cli_*.c))
CORE_SRC := $(sort $(filter-out minivmm/main.c minivmm/cli_%.c,$(wildcard minivmm/*.c)))
CORE_OBJ := $(CORE_SRC:%.c=$(O)/obj/%.o)
LIB := $(O)/lib/libminivmm.a
MINIVMM := $(O)/bin/minivmm

LAB1_GUESTS := $(patsubst guest-kernels/lab1/%.S,$(O)/guests/lab1/%.bin,$(wildcard guest-kernels/lab1/*.S))
PROBE16_GUESTS := $(patsubst guest-kernels/probes/%.S,$(O)/guests/probes/%.bin,$(wildcard guest-kernels/probes/*16.S guest-kernels/probes/*32.S))
GUESTS := $(LAB1_GUESTS) $(PROBE16_GUESTS)


# Labs as plug-ins (ARCHITECTURE.md). labs/*/lab.mk names each lab's student files as MAKEVAR:file. Each lab is
# linked in as its reference (solutions/, or labs/ in the handout), every global symbol renamed ref_*, with its
# plug-in file (labs/DIR/*_plugin.c, registering the lab's ops); where MAKEVAR names a student's copy, that copy
# with the plug-in file again (the student's version wins); and a fallback object whose weak labN_* forward to
# ref_labN_*, so code that calls another lab by name reaches the reference when no student file provides it.
LABS :=
include $(sort $(wildcard labs/*/lab.mk))
part_var = $(word 1,$(subst :, ,$(1)))
part_file = $(word 2,$(subst :, ,$(1)))
lab_student = $(strip $(foreach p,$($(1)_PARTS),$($(call part_var,$(p)))))
# LAB_EXTRA_CFLAGS: the grader passes -Wno-error, so a student's warning is shown, not fatal.
LAB_CC = $(CC) $(CFLAGS) -c -o $@ $<

# part_rules LAB MAKEVAR FILE
define part_rules
$(O)/obj/labs/$(1)/ref/$(3:.c=.raw.o): $(call lab_part,$(1)/$(3)) $(MAKEFILE_LIST)
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  CC      $$< (reference)")
	$$(Q)$$(LAB_CC)
$(O)/obj/labs/$(1)/ref/$(3:.c=.o): $(O)/obj/labs/$(1)/ref/$(3:.c=.raw.o) $(O)/obj/labs/$(1)/ref.syms
	$$(Q)objcopy --redefine-syms=$(O)/obj/labs/$(1)/ref.syms $$< $$@
LAB_OBJ += $(O)/obj/labs/$(1)/ref/$(3:.c=.o)
ifneq ($$($(2)),)
$(O)/obj/labs/$(1)/student/$(3:.c=.o): $$($(2)) $(MAKEFILE_LIST)
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  CC      $$< (your $(1))")
	$$(Q)$$(LAB_CC) $$(LAB_EXTRA_CFLAGS)
LAB_OBJ += $(O)/obj/labs/$(1)/student/$(3:.c=.o)
endif
endef

# lab_rules LAB
define lab_rules
$(O)/obj/labs/$(1)/ref.syms: $(foreach p,$($(1)_PARTS),$(O)/obj/labs/$(1)/ref/$(patsubst %.c,%.raw.o,$(call part_file,$(p))))
	$$(Q)nm -g --defined-only $$^ | awk 'NF == 3 { print $$$$3 " ref_" $$$$3 }' | sort -u >$$@
$(O)/obj/labs/$(1)/ref/plugin.raw.o: $(wildcard labs/$(1)/*_plugin.c) $(MAKEFILE_LIST)
	@mkdir -p $$(@D)
	$$(Q)$$(LAB_CC) -DMVM_LAB_REF
$(O)/obj/labs/$(1)/ref/plugin.o: $(O)/obj/labs/$(1)/ref/plugin.raw.o $(O)/obj/labs/$(1)/ref.syms
	$$(Q)objcopy --redefine-syms=$(O)/obj/labs/$(1)/ref.syms $$< $$@
$(O)/obj/labs/$(1)/fallback.o: $(wildcard labs/$(1)/*_plugin.c) $(MAKEFILE_LIST)
	@mkdir -p $$(@D)
	$$(Q)$$(LAB_CC) -DMVM_LAB_FALLBACK
LAB_OBJ += $(O)/obj/labs/$(1)/ref/plugin.o $(O)/obj/labs/$(1)/fallback.o
ifneq ($(call lab_student,$(1)),)
$(O)/obj/labs/$(1)/student/plugin.o: $(wildcard labs/$(1)/*_plugin.c) $(MAKEFILE_LIST)
	@mkdir -p $$(@D)
	$$(Q)$$(LAB_CC)
LAB_OBJ += $(O)/obj/labs/$(1)/student/plugin.o
endif
endef

# A lab's C guests on the guest runtime: DIR_GUESTS := GUESTDIR:BITS builds guest-kernels/GUESTDIR/*.c as 32- or
# 64-bit guests (rules further down, with guestc_rule).
LAB_C_GUESTS := $(foreach l,$(LABS),$($(l)_GUESTS))
# The interrupt probes (guest-kernels/irq, run with --irqchip): 32-bit, the APIC pages reached with paging off.
LAB_C_GUESTS += irq:32
# The system-call probes (guest-kernels/sys, run with --mode long): SYSCALL/SYSRET between rings 0 and 3.
LAB_C_GUESTS += sys:64
# The memory probes (guest-kernels/mem, run with --mode long and --mem-at): RAM and MMIO above 4 GiB.
LAB_C_GUESTS += mem:64
guest_dir = $(word 1,$(subst :, ,$(1)))
guest_bits = $(word 2,$(subst :, ,$(1)))
GUESTS += $(foreach g,$(LAB_C_GUESTS),$(patsubst guest-kernels/%.c,$(O)/guests/%.bin,$(wildcard guest-kernels/$(call guest_dir,$(g))/*.c)))

LAB_OBJ :=
$(foreach l,$(LABS),$(foreach p,$($(l)_PARTS),$(eval $(call part_rules,$(l),$(call part_var,$(p)),$(call part_file,$(p))))))
$(foreach l,$(LABS),$(eval $(call lab_rules,$(l))))
# (The labs' reference objects, *.raw.o, are kept by the bare .SECONDARY: below. A .SECONDARY: that names files
# anywhere in the Makefile turns that bare one off, and make then deletes every other intermediate with "rm ...".)

HARNESS_OBJ := $(O)/obj/tests/integration/harness.o
UNIT_TESTS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(wildcard tests/unit/test_*.c))
# Integration tests: tests/integration/test_*.c (visible) and tests/hidden/LAB/test_*.c (absent from the handout).
INTEGRATION_SRC := $(wildcard tests/integration/test_*.c)
HIDDEN_SRC := $(wildcard tests/hidden/*/test_*.c)
INTEGRATION_TESTS := $(patsubst %.c,$(O)/tests/%,$(notdir $(INTEGRATION_SRC) $(HIDDEN_SRC)))
TEST_BINS := $(UNIT_TESTS) $(INTEGRATION_TESTS)

.PHONY: all deps demo test check grade grade-all submit guests tests clean help handout gradescope
# Each built-in guest's start mode beside its image (minivmm run --guest, minivmm list).
GUEST_MODES = $(GUESTS:.bin=.mode)
all: $(MINIVMM) $(GUESTS) $(GUEST_MODES) $(TEST_BINS)

help:
	@sed -n 's/^## //p' Makefile | grep -v $(if $(wildcard scripts/make-gradescope.sh),-e '^$$',-e gradescope)

## make demo            run lab 1's guests on KVM (else the soft backend) and show their exits and the visualizer
## make test            unit, integration and CLI tests on every backend there is, then under ASan+UBSan
## make grade LAB=n [STUDENT=dir] [ONLY=test]   grade a lab (solutions by default), points per test, results.json
## make deps            install what the kit needs (Debian 12; apt)
deps:
	$(Q)./scripts/install-deps.sh

guests: $(GUESTS) $(GUEST_MODES)
tests: $(TEST_BINS)

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(CORE_OBJ)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(MINIVMM): $(CLI_OBJ) $(LAB_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/test_%: $(O)/obj/tests/unit/test_%.o $(LAB_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

define integration_test_rule
$(O)/tests/$(notdir $(1:.c=)): $(O)/obj/$(1:.c=.o) $$(HARNESS_OBJ) $$(LAB_OBJ) $$(LIB)
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lcmocka
endef
$(foreach src,$(INTEGRATION_SRC) $(HIDDEN_SRC),$(eval $(call integration_test_rule,$(src))))

$(O)/obj/tests/%.o: CFLAGS += -Itests/integration

# 16-bit guests (lab 1, *16.S probes): flat images at 0x1000.
define guest16_rule
$(O)/guests/$(1)/%.bin: guest-kernels/$(1)/%.S guest-kernels/lab1/lab1.ld
	@mkdir -p $$(@D) $(O)/obj/guests/$(1)
	$$(if $$(Q),@echo "  GUEST   $$@")
	$$(Q)$$(CC) -m16 $$(GUEST_CFLAGS) -MMD -MP -c -o $(O)/obj/guests/$(1)/$$*.o $$<
	$$(Q)$$(GUEST_LD) -m elf_i386 --no-warn-rwx-segments -T guest-kernels/lab1/lab1.ld -o $(O)/obj/guests/$(1)/$$*.elf $(O)/obj/guests/$(1)/$$*.o
	$$(Q)objcopy -O binary $(O)/obj/guests/$(1)/$$*.elf $$@

$(O)/guests/$(1)/%.mode: $(O)/guests/$(1)/%.bin
	$$(Q)printf real >$$@
endef
$(eval $(call guest16_rule,lab1))
$(eval $(call guest16_rule,probes))

# Labs 2 and 3: C guests on guest-kernels/runtime, the page-walk model.
# -mgeneral-regs-only: no SSE state to set up, and GCC's interrupt attribute requires it.
# -g: the ELF next to each .bin (build/obj/guests/) carries types and lines for gdb (--gdb); the .bin is the same.
GUEST_C_CFLAGS := $(GUEST_CFLAGS) -g -std=gnu11 -O2 -Wall -Wextra -Werror -fno-pie -fcf-protection=none \
	-fno-asynchronous-unwind-tables -mgeneral-regs-only -MMD -MP
GUEST_LDEMU_32 := elf_i386
GUEST_LDEMU_64 := elf_x86_64
# The guest runtime: start code, then an archive of guest-kernels/runtime/*.c (serial, ucall, and the drivers later
# labs add, one file each), so a guest links only the parts it uses.
RUNTIME_SRC := $(wildcard guest-kernels/runtime/*.c)
RUNTIME_LIB_32 := $(O)/obj/guests/rt32/libguest.a
RUNTIME_LIB_64 := $(O)/obj/guests/rt64/libguest.a
RUNTIME_OBJ_32 := $(O)/obj/guests/rt32/start.o $(RUNTIME_LIB_32)
RUNTIME_OBJ_64 := $(O)/obj/guests/rt64/start.o $(RUNTIME_LIB_64)

# guestc_rule DIR BITS: guest-kernels/DIR/NAME.c -> $(O)/guests/DIR/NAME.bin, linked at 0x1000 with the runtime.
define guestc_rule
$(O)/obj/guests/$(1)/%.o: guest-kernels/$(1)/%.c
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  GUESTCC $$<")
	$$(Q)$$(CC) -m$(2) $$(GUEST_C_CFLAGS) -c -o $$@ $$<

$(O)/guests/$(1)/%.bin: $(O)/obj/guests/$(1)/%.o $$(RUNTIME_OBJ_$(2)) guest-kernels/runtime/guest$(2).ld
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  GUEST   $$@")
	$$(Q)$$(GUEST_LD) -m $$(GUEST_LDEMU_$(2)) --no-warn-rwx-segments -T guest-kernels/runtime/guest$(2).ld \
		-o $(O)/obj/guests/$(1)/$$*.elf $$< $$(RUNTIME_OBJ_$(2))
	$$(Q)objcopy -O binary $(O)/obj/guests/$(1)/$$*.elf $$@

# NAME.mode: the mode the guest starts in, from its .mvm_start_mode section (MVM_GUEST_START_MODE), else its runtime's.
$(O)/guests/$(1)/%.mode: $(O)/guests/$(1)/%.bin
	$$(Q)objcopy -O binary --only-section=.mvm_start_mode --set-section-flags .mvm_start_mode=alloc,load \
		$(O)/obj/guests/$(1)/$$*.elf $$@
	$$(Q)[ -s $$@ ] || printf $(if $(filter 64,$(2)),long,protected) >$$@
endef
$(foreach g,$(LAB_C_GUESTS),$(eval $(call guestc_rule,$(call guest_dir,$(g)),$(call guest_bits,$(g)))))
# Keep every intermediate file of the pattern chains (objects of guests and tests), so a second make does nothing
# and make never prints "rm ..." at a newcomer.
.SECONDARY:

# rt_rule BITS: the runtime's objects and archive for 32- or 64-bit guests
define rt_rule
$(O)/obj/guests/rt$(1)/%.o: guest-kernels/runtime/%.c
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  GUESTCC $$< ($(1)-bit)")
	$$(Q)$$(CC) -m$(1) $$(GUEST_C_CFLAGS) -c -o $$@ $$<

$$(RUNTIME_LIB_$(1)): $(patsubst guest-kernels/runtime/%.c,$(O)/obj/guests/rt$(1)/%.o,$(RUNTIME_SRC))
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call rt_rule,32))
$(eval $(call rt_rule,64))

$(O)/obj/guests/rt%/start.o: guest-kernels/runtime/start%.S
	@mkdir -p $(@D)
	$(if $(Q),@echo "  GUESTAS $<")
	$(Q)$(CC) -m$* $(GUEST_CFLAGS) -MMD -MP -c -o $@ $<

# The soft backend's load test runs the load guest of bench/load_vm.c (bench/bench_load.c times it).
$(O)/obj/tests/unit/test_soft_load.o: CFLAGS += -Ibench
$(O)/tests/test_soft_load: $(O)/obj/tests/unit/test_soft_load.o $(O)/obj/bench/load_vm.o $(LAB_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(O)/obj/tests/unit/test_pagewalk_model.o: CFLAGS += -Ibench
$(O)/tests/test_pagewalk_model: $(O)/obj/tests/unit/test_pagewalk_model.o $(O)/obj/bench/pagewalk_model.o
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

.PHONY: demo-lab2 demo-lab3
## make demo-lab2       lab 2's guests: protected mode set by the VMM and by the guest, descriptor caches, #GP
demo-lab2: all
	$(Q)./scripts/demo-lab2.sh $(O)

## make demo-lab3       lab 3's guests: long mode, the higher-half alias, guest #PF, an MMIO exit from a RAM hole
demo-lab3: all
	$(Q)./scripts/demo-lab3.sh $(O)

## make demo-linux      the capstone: Debian's kernel booted by minivmm on real KVM (inside QEMU), exits by reason
.PHONY: demo-linux
demo-linux: all
	$(Q)./scripts/demo-linux.sh $(O)

## make bench-linux     time to init's command: QEMU TCG alone, minivmm on KVM inside QEMU, minivmm on soft
.PHONY: bench-linux
bench-linux: all
	$(Q)./tests/linux/bench_linux.sh $(O)

# Exit tracing and the visualizer. The kernel-side tracer (visualizer/kvm_exits.bpf.c) is built
# when clang, bpftool, libbpf and the running kernel's BTF are all here; else trace_bpf.c builds
# a stub that says so at run time. vmlinux.h is generated into $(O)/bpf, never checked in.
BPFTOOL ?= $(firstword $(shell command -v bpftool 2>/dev/null) $(wildcard /usr/sbin/bpftool /sbin/bpftool))
BPF_OK := $(if $(and $(BPFTOOL),$(shell command -v clang 2>/dev/null),$(shell pkg-config --exists libbpf && echo y),$(wildcard /sys/kernel/btf/vmlinux)),1)
LDLIBS += $(if $(BPF_OK),$(shell pkg-config --libs libbpf),) -lz
MVM_TOP := $(O)/bin/mvm-top
all: $(MVM_TOP)

$(O)/bpf/vmlinux.h:
	@mkdir -p $(@D)
	$(if $(Q),@echo "  BTF     $@")
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c >$@.tmp && mv $@.tmp $@

$(O)/bpf/kvm_exits.bpf.o: visualizer/kvm_exits.bpf.c visualizer/kvm_exits.h $(O)/bpf/vmlinux.h
	$(if $(Q),@echo "  BPF     $@")
	$(Q)clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I$(O)/bpf -Ivisualizer -c -o $@ $<

$(O)/bpf/kvm_exits.skel.h: $(O)/bpf/kvm_exits.bpf.o
	$(if $(Q),@echo "  SKEL    $@")
	$(Q)$(BPFTOOL) gen skeleton $< name kvm_exits >$@.tmp && mv $@.tmp $@

ifeq ($(BPF_OK),1)
$(O)/obj/minivmm/trace_bpf.o: $(O)/bpf/kvm_exits.skel.h
$(O)/obj/minivmm/trace_bpf.o: CFLAGS += -DMVM_HAVE_BPF -I$(O)/bpf -Ivisualizer
endif

$(O)/obj/visualizer/%.o: CFLAGS += $(shell pkg-config --cflags ncursesw 2>/dev/null)
$(MVM_TOP): $(patsubst %.c,$(O)/obj/%.o,$(filter-out %.bpf.c,$(wildcard visualizer/*.c))) $(LAB_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

demo: all
	$(Q)./scripts/demo.sh $(O)

test:
	$(Q)./tests/run-all.sh

check: all
	$(Q)./tests/run-suite.sh $(O)

## make gdb LAB=n TEST=name [BACKEND=soft]   lab n's guest NAME under gdb (minivmm run --gdb), with its symbols
.PHONY: gdb
gdb: all
	$(Q)./scripts/gdb.sh $(O) "$(LAB)" "$(TEST)" $(or $(BACKEND),auto)

grade:
	$(Q)./tests/grading/grade.py $(LAB) $(STUDENT) $(if $(ONLY),--only $(ONLY))

## make grade-all LAB=n SUBMISSIONS=dir [JOBS=n]   grade a class: build/grade/class-labN/gradebook.csv and reports
grade-all:
	$(Q)if [ ! -x tests/grading/grade_all.py ]; then \
		echo "make grade-all grades a class for instructors and is not in the student handout" >&2; exit 2; fi
	$(Q)./tests/grading/grade_all.py $(LAB) $(SUBMISSIONS) $(if $(JOBS),--jobs $(JOBS))

## make hint LAB=n STEP=n   the hint for step n of lab n's handout (labs/labN-*/hints.md), when you are stuck
.PHONY: hint
hint:
	$(Q)./scripts/hint.sh "$(LAB)" "$(STEP)"

## make submit LAB=n    build/submit/labN.tar.gz: exactly the files lab n asks for (code, answers.md), from labs/ (STUDENT=dir: from there)
submit:
	$(Q)./tests/grading/submit.py $(LAB) $(STUDENT)

## make handout         the student tree in build/handout/ (no solutions, no hidden tests)
handout:
	$(Q)./scripts/make-handout.sh

# The Gradescope packager is for instructors: the handout has no scripts/make-gradescope.sh, nor this target.
ifneq ($(wildcard scripts/make-gradescope.sh),)
## make gradescope LAB=n   the Gradescope autograder zip in build/gradescope/
gradescope:
	$(Q)./scripts/make-gradescope.sh $(LAB)
else
gradescope:
	@echo "make gradescope packages the autograder for instructors and is not in the student handout;" \
		"make grade LAB=n grades your work" >&2; exit 2
endif

# Benchmarks: C cases (bench/*.c) registered with Google Benchmark by bench/shim.cc, the only C++,
# and their own guests (guest-kernels/bench/). BENCH_ARGS passes Google Benchmark flags through.
BENCH := $(O)/bin/minivmm-bench
BENCH_OBJ := $(patsubst %.c,$(O)/obj/%.o,$(wildcard bench/*.c)) $(O)/obj/bench/shim.o
BENCH_GUESTS := $(O)/guests/bench/exits16.bin $(O)/guests/bench/exits64.bin $(O)/guests/bench/mem64.bin
BENCH_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -O2 -g -MMD -MP -Iminivmm -Ibench $(if $(filter 1,$(SAN)),$(SAN_FLAGS))
BENCH_ARGS ?=
.PHONY: bench bench-bin bench-smoke

## make bench           benchmarks on every backend there is: build/bench/results.json, table.txt, plots
bench: bench-bin
	$(Q)./bench/run.sh $(O) $(O)/bench $(BENCH_ARGS)

## make bench-smoke     the benchmarks with a tiny time budget (what the smoke test runs)
bench-smoke: bench-bin
	$(Q)./bench/run.sh --smoke $(O) $(O)/bench-smoke $(BENCH_ARGS)

bench-bin: $(BENCH) $(BENCH_GUESTS)

$(O)/obj/bench/%.o: CFLAGS += -Ibench -Iguest-kernels
$(O)/obj/bench/shim.o: bench/shim.cc
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CXX     $<")
	$(Q)$(CXX) $(BENCH_CXXFLAGS) -c -o $@ $<

$(BENCH): $(BENCH_OBJ) $(LAB_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lbenchmark -lpthread

$(eval $(call guest16_rule,bench))
$(O)/obj/guests/bench/%.o: guest-kernels/bench/%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  GUESTCC $<")
	$(Q)$(CC) -m64 $(GUEST_C_CFLAGS) -c -o $@ $<

$(O)/guests/bench/%.bin: $(O)/obj/guests/bench/%.o guest-kernels/bench/bench64.ld
	@mkdir -p $(@D)
	$(if $(Q),@echo "  GUEST   $@")
	$(Q)$(GUEST_LD) -m elf_x86_64 --no-warn-rwx-segments -T guest-kernels/bench/bench64.ld -o $(O)/obj/guests/bench/$*.elf $<
	$(Q)objcopy -O binary $(O)/obj/guests/bench/$*.elf $@

# A drop-in /dev/kvm (preload/): libminivmm-kvm.so, preloaded into an unmodified KVM program (minivmm exec), runs
# it on the soft backend. Its objects are the soft backend's, built again position-independent, symbols hidden.
PRELOAD_SO := $(O)/lib/libminivmm-kvm.so
PRELOAD_OBJ := $(patsubst %.c,$(O)/obj/pic/%.o,$(wildcard preload/*.c) \
	$(sort $(wildcard minivmm/backend_soft*.c minivmm/soft_*.c)))
PRELOAD_TESTS := $(patsubst tests/preload/%.c,$(O)/tests/preload/%,$(wildcard tests/preload/*.c))
all: $(PRELOAD_SO) $(PRELOAD_TESTS)

$(O)/obj/pic/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $< (PIC)")
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(PRELOAD_SO): $(PRELOAD_OBJ)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-z,defs -o $@ $^ $(UNICORN_LIBS) -ldl -lpthread

.PHONY: selftests
## make selftests [ALL=1]   Linux's KVM selftests (linux-source-6.1 via apt, ~140 MB) on soft and on real KVM: a table
selftests: $(MINIVMM) $(PRELOAD_SO)
	$(Q)./scripts/selftests.sh $(if $(filter 1,$(ALL)),--all) $(O)

# The unmodified KVM programs the preload tests run: linux/kvm.h and libc, nothing of the kit.
$(O)/tests/preload/%: tests/preload/%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g $(if $(filter 1,$(SAN)),$(SAN_FLAGS)) -o $@ $<

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
include tests/fuzz/fuzz.mk
