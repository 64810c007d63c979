# Fuzzing (tests/fuzz/README.md): the guest fuzzer and libFuzzer targets for every parser of outside input,
# built with clang, ASan and UBSan into $(O)/fuzz/. Included by the Makefile; also usable as
# `make -f Makefile -f tests/fuzz/fuzz.mk TARGET`.
## make fuzz-bin        build the fuzzers (clang with libFuzzer: libclang-rt-14-dev on Debian 12)
## make fuzz            the long campaign: FUZZ_RUNS guest runs, FUZZ_INPUTS parser inputs, FUZZ_JOBS cores
## make fuzz-corpus     refresh tests/fuzz/corpus/ seeds from the built guests and a recorded trace
ifndef MVM_FUZZ_MK
MVM_FUZZ_MK := 1

FUZZ_CC ?= clang
FUZZ_O := $(O)/fuzz
FUZZ_RUNS ?= 1000000
FUZZ_INPUTS ?= 10000000
FUZZ_JOBS ?= 2
FUZZ_SEED ?= 1
FUZZ_GUEST_LF_SECONDS ?= 600
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# Coverage on the code under test, not on the drivers; -O1 keeps reports readable and the fuzzing fast.
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 $(UNICORN_CFLAGS) $(FUZZ_SAN) -Itests/fuzz
FUZZ_COV := -fsanitize=fuzzer-no-link
FUZZ_LDLIBS = $(LDLIBS) -lz

# The core library and the lab parts come from the main Makefile itself, built again with clang, the sanitizers
# and coverage into $(FUZZ_O)/core: whatever the labs' plug-in rules link in, the fuzzers link in too.
FUZZ_CORE := $(FUZZ_O)/core
FUZZ_CORE_OBJ := $(patsubst $(O)/%,$(FUZZ_CORE)/%,$(LAB_OBJ) $(LIB))
# Every tests/fuzz/fuzz_NAME.c but the guest fuzzer's parts and the null backend is a libFuzzer target fuzz-NAME.
FUZZ_PARSERS := $(filter-out guest guest_run guest_lf backend,$(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_LF := $(patsubst %,$(FUZZ_O)/fuzz-%,$(FUZZ_PARSERS)) $(FUZZ_O)/fuzz-guest-lf
FUZZ_GUEST := $(FUZZ_O)/fuzz-guest
FUZZ_SUPPORT_OBJ := $(FUZZ_O)/obj/tests/fuzz/fuzz_backend.o
# The drivers' objects (pattern-chain intermediates) are kept by the Makefile's bare .SECONDARY:, so a second make
# does nothing; naming files in a .SECONDARY: here would turn that off.

.PHONY: fuzz fuzz-bin fuzz-corpus
fuzz-bin: $(FUZZ_GUEST) $(FUZZ_LF)

fuzz: fuzz-bin
	$(Q)FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_INPUTS=$(FUZZ_INPUTS) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_SEED=$(FUZZ_SEED) \
		FUZZ_GUEST_LF_SECONDS=$(FUZZ_GUEST_LF_SECONDS) ./tests/fuzz/run-fuzz.sh long $(O)

fuzz-corpus: $(MINIVMM) $(GUESTS)
	$(Q)./tests/fuzz/make-corpus.py $(O)

# One sub-make for the core (see above); it decides itself whether anything is out of date. Its warnings are
# shown but not fatal: the project's compiler (gcc) judges warnings, and clang must not stop the fuzzing.
$(FUZZ_CORE_OBJ): fuzz-core
	@:
.PHONY: fuzz-core
fuzz-core:
	$(Q)$(MAKE) $(if $(Q),-s) --no-print-directory -f Makefile O=$(FUZZ_CORE) CC=$(FUZZ_CC) SAN=1 \
		CFLAGS_BASE="$(CFLAGS_BASE) -Wno-error -O1 $(FUZZ_COV)" $(FUZZ_CORE_OBJ)

# The drivers and the null backend: no coverage of their own, so it steers toward the code under test.
$(FUZZ_O)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_GUEST): $(FUZZ_O)/obj/tests/fuzz/fuzz_guest.o $(FUZZ_O)/obj/tests/fuzz/fuzz_guest_run.o $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) $(FUZZ_COV) -o $@ $^ $(FUZZ_LDLIBS)

$(FUZZ_O)/fuzz-guest-lf: $(FUZZ_O)/obj/tests/fuzz/fuzz_guest_lf.o $(FUZZ_O)/obj/tests/fuzz/fuzz_guest_run.o \
		$(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS)

$(FUZZ_O)/fuzz-%: $(FUZZ_O)/obj/tests/fuzz/fuzz_%.o $(FUZZ_SUPPORT_OBJ) $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS)

-include $(shell find $(FUZZ_O)/obj -name '*.d' 2>/dev/null)
endif
