/* The guest fuzzer's parts shared by its driver (fuzz_guest.c) and its libFuzzer target: inputs, one run, the corpus.
 */
#ifndef TESTS_FUZZ_GUEST_H
#define TESTS_FUZZ_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "mvm.h"

/*
 * A guest input, as saved for reproducers and kept in tests/fuzz/corpus/guest/:
 *   byte 0    the CPU mode it starts in: 0 real, 1 protected, 2 long (taken modulo 3)
 *   byte 1    what fills guest RAM around the image (low 2 bits): 0 zeros, 1 HLT, 2 the image over
 *             and over, 3 0xff
 *   byte 2    bit 0: a long run, limited to FUZZ_GUEST_LONG_MS rather than the short limit (a guest that
 *             loops for a second fills the engine's code buffer); other bits reserved (0)
 *   byte 3    reserved (0)
 *   then      the image, loaded and entered at MVM_BOOT_LOAD_GPA; bytes past FUZZ_GUEST_IMAGE_MAX are ignored
 * The VM has FUZZ_GUEST_RAM bytes at gpa 0, the standard devices, and the mode's set-up from the lab parts,
 * as `minivmm run --mode MODE` gives it.
 */
#define FUZZ_GUEST_HDR       4
#define FUZZ_GUEST_IMAGE_MAX 0x10000
#define FUZZ_GUEST_INPUT_MAX (FUZZ_GUEST_HDR + FUZZ_GUEST_IMAGE_MAX)
#define FUZZ_GUEST_RAM       (2u << 20)

struct fuzz_guest_limits {
    uint32_t max_ms;  /* wall time, as vcpu_run enforces it */
    uint32_t long_ms; /* the same for a long run (byte 2, bit 0) */
    uint64_t max_exits;
};
#define FUZZ_GUEST_LONG_MS 1500
/* How often the generator asks for a long run: 1 run in this many. */
#define FUZZ_GUEST_LONG_EVERY 64

/* The wall-time limit the input asks for. */
uint32_t fuzz_guest_limit_ms(const uint8_t *in, size_t len, const struct fuzz_guest_limits *lim);

struct fuzz_guest_outcome {
    int setup_rc; /* < 0: the VM could not be set up (detail says why); the rest is unset */
    int rc;       /* vcpu_run's return */
    enum mvm_stop stop;
    uint64_t exits;
    double ms; /* wall time of vcpu_run */
    char detail[320];
};

/* Seed inputs, in file-name order. */
struct fuzz_guest_corpus {
    uint8_t **data;
    size_t *len;
    size_t n;
};

/* Reads every regular file in `dir` (inputs longer than FUZZ_GUEST_INPUT_MAX are cut). 0, or -1 with errno. */
int fuzz_guest_corpus_load(const char *dir, struct fuzz_guest_corpus *c);
void fuzz_guest_corpus_free(struct fuzz_guest_corpus *c);

/*
 * Makes run i's input into buf (cap >= FUZZ_GUEST_INPUT_MAX) and returns its length: random bytes,
 * random sequences of x86 instructions that exit or switch modes, or a corpus input mutated. Depends only
 * on (seed, i), the corpus and `mode` (0..2 forces the mode, -1 lets it vary).
 */
size_t fuzz_guest_input_make(uint64_t seed, uint64_t i, const struct fuzz_guest_corpus *c, int mode, uint8_t *buf,
                             size_t cap);

/*
 * Runs one input in a fresh VM on the soft backend with the limits, and fills *out. Returns the VM, still
 * alive, for the caller to destroy with fuzz_guest_vm_destroy (NULL when none was made).
 */
struct fuzz_guest_vm *fuzz_guest_run(const uint8_t *in, size_t len, const struct fuzz_guest_limits *lim,
                                     struct fuzz_guest_outcome *out);
void fuzz_guest_vm_destroy(struct fuzz_guest_vm *vm);

/* "real", "protected" or "long" for an input's mode byte. */
const char *fuzz_guest_mode_name(uint8_t mode_byte);
/* 0, 1 or 2 for "real", "protected", "long"; -2 for anything else. */
int fuzz_guest_mode_parse(const char *name);

/* Does what `what` says ("crash", "hang", "ubsan", "asan", "leak"), so the fuzzer's own detection can be tested. */
void fuzz_guest_self_test(const char *what);

#endif
