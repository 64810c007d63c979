/* libFuzzer target: guest images on the soft backend, coverage-guided (the driver fuzz_guest.c does volume). */
#include "fuzz_guest.h"
#include "fuzz_util.h"

/* Input: as fuzz_guest.h describes (mode byte, fill byte, 2 reserved, the image). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_guest_limits lim = {.max_ms = 20, .long_ms = FUZZ_GUEST_LONG_MS, .max_exits = 2000};
    struct fuzz_guest_outcome out;
    struct fuzz_guest_vm *vm = fuzz_guest_run(data, size, &lim, &out);

    FUZZ_CHECK(out.setup_rc == 0, "the VM could not be set up: %s", out.detail);
    FUZZ_CHECK(out.ms < fuzz_guest_limit_ms(data, size, &lim) + 2000,
               "late stop: the run came back after %.0f ms (limit %u ms)", out.ms,
               fuzz_guest_limit_ms(data, size, &lim));
    fuzz_guest_vm_destroy(vm);
    return 0;
}
