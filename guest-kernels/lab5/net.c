/* Lab 5 guest: 32 frames in batches of 8 with EVENT_IDX, looped back and checked (a test may change the parameters). */
#include "lab5/net.h"

void guest_main(void)
{
    static const struct mvm_virtio_params defaults = {.packets = 32, .batch = 8, .flags = MVM_VIRTIO_P_EVENT_IDX};

    net_run(&defaults);
}
