/* Lab 5 guest: 32 frames, one kick each, no EVENT_IDX: the exit-per-packet baseline. */
#include "lab5/net.h"

void guest_main(void)
{
    static const struct mvm_virtio_params defaults = {.packets = 32, .batch = 1};

    net_run(&defaults);
}
