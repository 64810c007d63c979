/* Lab 5 guest: 32 frames in one batch, each an indirect table (header, frame), interrupts off (the driver polls). */
#include "lab5/net.h"

void guest_main(void)
{
    static const struct mvm_virtio_params defaults = {
        .packets = 32,
        .batch = 32,
        .flags = MVM_VIRTIO_P_INDIRECT | MVM_VIRTIO_P_NO_INTERRUPT,
    };

    net_run(&defaults);
}
