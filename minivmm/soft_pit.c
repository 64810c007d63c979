/* The soft backend's 8254 PIT (KVM's arch/x86/kvm/i8254.c), as pure logic on struct kvm_pit_state2. */
#include "soft_pit.h"

#include <string.h>

enum { RW_LSB = 1, RW_MSB = 2, RW_WORD0 = 3, RW_WORD1 = 4 };

#define PIT_MIN_PERIOD_NS 200000ull /* kvm.min_timer_period_us */

bool soft_pit_port(uint16_t port)
{
    return (port >= 0x40 && port <= 0x43) || port == 0x61;
}

/* PIT ticks since the channel's count was loaded. */
static uint64_t elapsed(const struct kvm_pit_channel_state *c, uint64_t now_ns)
{
    uint64_t t = now_ns > (uint64_t)c->count_load_time ? now_ns - (uint64_t)c->count_load_time : 0;
    return (uint64_t)((unsigned __int128)t * PIT_FREQ_HZ / 1000000000u);
}

static uint32_t get_count(const struct kvm_pit_channel_state *c, uint64_t now_ns)
{
    uint64_t d = elapsed(c, now_ns);
    switch (c->mode) {
    case 0:
    case 1:
    case 4:
    case 5:
        return (uint32_t)((c->count - d) & 0xffff);
    case 3:
        return (uint32_t)(c->count - ((2 * d) % c->count));
    default:
        return (uint32_t)(c->count - (d % c->count));
    }
}

static int get_out(const struct kvm_pit_channel_state *c, uint64_t now_ns)
{
    uint64_t d = elapsed(c, now_ns);
    switch (c->mode) {
    default:
    case 0:
        return d >= c->count;
    case 1:
        return d < c->count;
    case 2:
        return (d % c->count) == 0 && d != 0;
    case 3:
        return (d % c->count) < ((c->count + 1) >> 1);
    case 4:
    case 5:
        return d == c->count;
    }
}

/* Channel 0's timer from its mode and count (create_pit_timer / destroy_pit_timer). */
static void arm(struct soft_pit *p, uint64_t now_ns)
{
    const struct kvm_pit_channel_state *c = &p->s.channels[0];
    uint64_t ns = (uint64_t)c->count * 1000000000u / PIT_FREQ_HZ;
    p->expire_ns = 0;
    p->period_ns = 0;
    switch (c->mode) {
    case 0:
    case 1:
    case 4:
        p->expire_ns = now_ns + ns;
        break;
    case 2:
    case 3:
        p->period_ns = ns < PIT_MIN_PERIOD_NS ? PIT_MIN_PERIOD_NS : ns;
        p->expire_ns = now_ns + p->period_ns;
        break;
    default:
        break; /* 0xff after reset: no timer */
    }
}

static void load_count(struct soft_pit *p, int ch, uint32_t val, uint64_t now_ns)
{
    struct kvm_pit_channel_state *c = &p->s.channels[ch];
    c->count = val ? val : 0x10000;
    c->count_load_time = (int64_t)now_ns;
    if (ch == 0)
        arm(p, now_ns);
}

void soft_pit_reset(struct soft_pit *p, uint64_t now_ns)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < 3; i++) {
        p->s.channels[i].mode = 0xff;
        p->s.channels[i].gate = i != 2;
        load_count(p, i, 0, now_ns);
    }
}

static void latch_count(struct kvm_pit_channel_state *c, uint64_t now_ns)
{
    if (!c->count_latched) {
        c->latched_count = (uint16_t)get_count(c, now_ns);
        c->count_latched = c->rw_mode;
    }
}

static void latch_status(struct kvm_pit_channel_state *c, uint64_t now_ns)
{
    if (!c->status_latched) {
        c->status = (uint8_t)((get_out(c, now_ns) << 7) | (c->rw_mode << 4) | (c->mode << 1) | c->bcd);
        c->status_latched = 1;
    }
}

void soft_pit_write(struct soft_pit *p, uint16_t port, uint8_t val, uint64_t now_ns)
{
    if (port == 0x61) {
        p->s.channels[2].gate = val & 1;
        p->speaker_data_on = (val >> 1) & 1;
        return;
    }
    if (port == 0x43) {
        int ch = val >> 6;
        if (ch == 3) { /* read-back */
            for (int i = 0; i < 3; i++) {
                if (!(val & (2 << i)))
                    continue;
                if (!(val & 0x20))
                    latch_count(&p->s.channels[i], now_ns);
                if (!(val & 0x10))
                    latch_status(&p->s.channels[i], now_ns);
            }
            return;
        }
        struct kvm_pit_channel_state *c = &p->s.channels[ch];
        unsigned access = (val >> 4) & 3;
        if (access == 0) {
            latch_count(c, now_ns);
            return;
        }
        c->rw_mode = (uint8_t)access;
        c->read_state = (uint8_t)access;
        c->write_state = (uint8_t)access;
        c->mode = (val >> 1) & 7;
        if (c->mode > 5)
            c->mode -= 4;
        c->bcd = val & 1;
        return;
    }
    int ch = port - 0x40;
    struct kvm_pit_channel_state *c = &p->s.channels[ch];
    switch (c->write_state) {
    default:
    case RW_LSB:
        load_count(p, ch, val, now_ns);
        break;
    case RW_MSB:
        load_count(p, ch, (uint32_t)val << 8, now_ns);
        break;
    case RW_WORD0:
        c->write_latch = val;
        c->write_state = RW_WORD1;
        break;
    case RW_WORD1:
        load_count(p, ch, c->write_latch | ((uint32_t)val << 8), now_ns);
        c->write_state = RW_WORD0;
        break;
    }
}

uint8_t soft_pit_read(struct soft_pit *p, uint16_t port, uint64_t now_ns)
{
    if (port == 0x61) {
        const struct kvm_pit_channel_state *c2 = &p->s.channels[2];
        unsigned refresh = (unsigned)(now_ns >> 14) & 1; /* KVM's refresh clock bit */
        return (uint8_t)(c2->gate | (p->speaker_data_on << 1) | (refresh << 4) | (get_out(c2, now_ns) << 5));
    }
    if (port == 0x43)
        return 0xff; /* KVM: the mode register is write-only */
    struct kvm_pit_channel_state *c = &p->s.channels[port - 0x40];
    uint32_t count;
    if (c->status_latched) {
        c->status_latched = 0;
        return c->status;
    }
    if (c->count_latched) {
        uint8_t r;
        switch (c->count_latched) {
        default:
        case RW_LSB:
            r = (uint8_t)c->latched_count;
            c->count_latched = 0;
            break;
        case RW_MSB:
            r = (uint8_t)(c->latched_count >> 8);
            c->count_latched = 0;
            break;
        case RW_WORD0:
            r = (uint8_t)c->latched_count;
            c->count_latched = RW_MSB;
            break;
        }
        return r;
    }
    count = get_count(c, now_ns);
    switch (c->read_state) {
    default:
    case RW_LSB:
        return (uint8_t)count;
    case RW_MSB:
        return (uint8_t)(count >> 8);
    case RW_WORD0:
        c->read_state = RW_WORD1;
        return (uint8_t)count;
    case RW_WORD1:
        c->read_state = RW_WORD0;
        return (uint8_t)(count >> 8);
    }
}

unsigned soft_pit_poll(struct soft_pit *p, uint64_t now_ns)
{
    if (!p->expire_ns || now_ns < p->expire_ns)
        return 0;
    if (p->period_ns) {
        p->expire_ns += p->period_ns;
        if (p->expire_ns <= now_ns)
            p->expire_ns = now_ns + p->period_ns - (now_ns - p->expire_ns) % p->period_ns;
    } else {
        p->expire_ns = 0;
    }
    return 1;
}

void soft_pit_set_state(struct soft_pit *p, const struct kvm_pit_state2 *s, uint64_t now_ns)
{
    p->s = *s;
    for (int i = 0; i < 3; i++) /* kvm_vm_ioctl_set_pit2: every count loaded again, now */
        load_count(p, i, p->s.channels[i].count, now_ns);
}
