# minivmm labs: one non-recursive Makefile. `make demo` and `make test` are the two commands.
# O=DIR puts the build elsewhere; SAN=1 builds with ASan+UBSan; V=1 shows commands.
# LAB1_SRC=path builds lab 1's student part from another file (the grader uses it).

O ?= build
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

CC ?= cc
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -MMD -MP -Iminivmm
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
UNICORN_CFLAGS := $(shell pkg-config --cflags unicorn 2>/dev/null)
UNICORN_LIBS := $(shell pkg-config --libs unicorn 2>/dev/null)
CFLAGS := $(CFLAGS_BASE) $(UNICORN_CFLAGS) $(if $(filter 1,$(SAN)),$(SAN_FLAGS))
LDFLAGS := $(if $(filter 1,$(SAN)),$(SAN_FLAGS))
LDLIBS := $(UNICORN_LIBS) -lpthread

# Guests: freestanding, their own flags, flat binaries.
GUEST_CFLAGS := -ffreestanding -fno-pic -fno-stack-protector -mno-red-zone -nostdlib -Iminivmm -Iguest-kernels
GUEST_LD := ld

# The lab parts: solutions by default (the starter where there is none, as in the handout), or a student's file.
lab_part = $(firstword $(wildcard solutions/$(1)) labs/$(1))
LAB1_SRC ?= $(call lab_part,lab1-realmode/lab1_realmode.c)

CORE_SRC := $(sort $(filter-out minivmm/main.c,$(wildcard minivmm/*.c)))
CORE_OBJ := $(CORE_SRC:%.c=$(O)/obj/%.o)
LAB_OBJ := $(O)/obj/lab1_realmode.o
LIB := $(O)/lib/libminivmm.a
MINIVMM := $(O)/bin/minivmm

LAB1_GUESTS := $(patsubst guest-kernels/lab1/%.S,$(O)/guests/lab1/%.bin,$(wildcard guest-kernels/lab1/*.S))
PROBE16_GUESTS := $(patsubst guest-kernels/probes/%.S,$(O)/guests/probes/%.bin,$(wildcard guest-kernels/probes/*16.S))
GUESTS := $(LAB1_GUESTS) $(PROBE16_GUESTS)

HARNESS_OBJ := $(O)/obj/tests/integration/harness.o
UNIT_TESTS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(wildcard tests/unit/test_*.c))
# Integration tests: tests/integration/test_*.c (visible) and tests/hidden/LAB/test_*.c (absent from the handout).
INTEGRATION_SRC := $(wildcard tests/integration/test_*.c)
HIDDEN_SRC := $(wildcard tests/hidden/*/test_*.c)
INTEGRATION_TESTS := $(patsubst %.c,$(O)/tests/%,$(notdir $(INTEGRATION_SRC) $(HIDDEN_SRC)))
TEST_BINS := $(UNIT_TESTS) $(INTEGRATION_TESTS)

.PHONY: all deps demo test check grade guests tests clean help handout gradescope
all: $(MINIVMM) $(GUESTS) $(TEST_BINS)

help:
	@sed -n 's/^## //p' Makefile

## make demo            run lab 1's guest on real KVM (native, else inside QEMU) and show its exits
## make test            unit, integration and CLI tests on every backend there is, then under ASan+UBSan
## make grade LAB=1 [STUDENT=dir]   grade a lab (solutions by default), points per test
## make deps            install what the kit needs (Debian 12; apt)
deps:
	$(Q)./scripts/install-deps.sh

guests: $(GUESTS)
tests: $(TEST_BINS)

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# LAB_EXTRA_CFLAGS: the grader passes -Wno-error, so a student's warning is shown, not fatal.
$(O)/obj/lab1_realmode.o: $(LAB1_SRC) $(MAKEFILE_LIST)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $< (lab 1 part)")
	$(Q)$(CC) $(CFLAGS) $(LAB_EXTRA_CFLAGS) -c -o $@ $<

$(LIB): $(CORE_OBJ)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

$(MINIVMM): $(O)/obj/minivmm/main.o $(LAB_OBJ) $(LIB)
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
endef
$(eval $(call guest16_rule,lab1))
$(eval $(call guest16_rule,probes))

demo: deps all
	$(Q)./scripts/demo.sh $(O)

test: deps
	$(Q)./tests/run-all.sh

check: all
	$(Q)./tests/run-suite.sh $(O)

grade: deps
	$(Q)./tests/grading/grade.py $(LAB) $(STUDENT)

## make handout         the student tree in build/handout/ (no solutions, no hidden tests)
handout:
	$(Q)./scripts/make-handout.sh

## make gradescope LAB=n   the Gradescope autograder zip in build/gradescope/
gradescope:
	$(Q)./scripts/make-gradescope.sh $(LAB)

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
