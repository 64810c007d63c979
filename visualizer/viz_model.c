/* The visualizer's model: counts by kind, a rate graph, a latency histogram, top ports/addresses, the last exits. */
#include <stdlib.h>
#include <string.h>

#include "viz_model.h"

const uint64_t viz_lat_bounds[VIZ_LAT_BUCKETS] = {1000, 4000, 16000, 64000, 256000, UINT64_MAX};
const char *const viz_lat_labels[VIZ_LAT_BUCKETS] = {"   <1us", "  1-4us", " 4-16us", "16-64us", "64-256us", " >256us"};

void viz_model_init(struct viz_model *m, uint64_t start_ns)
{
    int filter = m->filter;

    memset(m, 0, sizeof(*m));
    m->start_ns = start_ns;
    m->bin_ns = 1000; /* 1 us to start; doubles as the trace grows */
    m->filter = filter;
}

int viz_model_kind(struct viz_model *m, const struct mvm_trace_event *ev)
{
    char name[32];

    mvm_trace_event_kind(ev, name, sizeof(name));
    for (int i = 0; i < m->nkinds; i++)
        if (!strcmp(m->kinds[i].name, name))
            return i;
    if (m->nkinds == VIZ_KINDS)
        return -1;
    memcpy(m->kinds[m->nkinds].name, name, sizeof(name));
    m->kinds[m->nkinds].kernel = ev->source != MVM_TRACE_SRC_USER;
    return m->nkinds++;
}

static void addr_count(struct viz_model *m, uint64_t addr, bool mmio, bool write)
{
    for (int i = 0; i < m->naddrs; i++) {
        struct viz_addr *a = &m->addrs[i];

        if (a->addr == addr && a->mmio == mmio && a->write == write) {
            a->n++;
            return;
        }
    }
    if (m->naddrs < VIZ_ADDRS)
        m->addrs[m->naddrs++] = (struct viz_addr){.addr = addr, .mmio = mmio, .write = write, .n = 1};
}

static void rate_add(struct viz_model *m, uint64_t t_ns, uint64_t n)
{
    uint64_t bin = t_ns / m->bin_ns;

    while (bin >= VIZ_RATE_BINS) {
        for (int i = 0; i < VIZ_RATE_BINS / 2; i++)
            m->rate[i] = m->rate[2 * i] + m->rate[2 * i + 1];
        memset(m->rate + VIZ_RATE_BINS / 2, 0, sizeof(m->rate) / 2);
        m->bin_ns *= 2;
        bin = t_ns / m->bin_ns;
    }
    m->rate[bin] += n;
}

void viz_model_add(struct viz_model *m, const struct mvm_trace_event *ev)
{
    uint64_t n = ev->source == MVM_TRACE_SRC_SOFT ? ev->count : 1;
    uint64_t t = ev->exit_ns > m->start_ns ? ev->exit_ns - m->start_ns : 0;
    int k = viz_model_kind(m, ev);

    m->events++;
    if (ev->source == MVM_TRACE_SRC_USER)
        m->user++;
    else
        m->kernel += n;
    if (k >= 0)
        m->kinds[k].n += n;
    else
        m->other_kinds += n;
    if (ev->exit_ns > m->last_ns)
        m->last_ns = ev->exit_ns;
    if (ev->done_ns >= ev->exit_ns && ev->done_ns) {
        uint64_t lat = ev->done_ns - ev->exit_ns;
        int b = 0;

        while (b < VIZ_LAT_BUCKETS - 1 && lat >= viz_lat_bounds[b])
            b++;
        m->lat[b]++;
    }
    if (ev->source == MVM_TRACE_SRC_USER && ev->reason == KVM_EXIT_IO)
        addr_count(m, ev->addr, false, ev->flags & MVM_TRACE_F_WRITE);
    else if (ev->source == MVM_TRACE_SRC_USER && ev->reason == KVM_EXIT_MMIO)
        addr_count(m, ev->addr, true, ev->flags & MVM_TRACE_F_WRITE);
    else if (ev->source == MVM_TRACE_SRC_KERNEL && (ev->flags & MVM_TRACE_F_ISA_SVM) && ev->reason == 0x7b)
        addr_count(m, ev->addr >> 16, false, !(ev->addr & 1));
    else if (ev->source == MVM_TRACE_SRC_KERNEL && (ev->flags & MVM_TRACE_F_ISA_SVM) && ev->reason == 0x400)
        addr_count(m, ev->data, true, ev->addr & 2);
    if (m->filter >= 0 && k != m->filter)
        return;
    m->last[m->nlast++ % VIZ_LAST] = *ev;
    rate_add(m, t, n);
}

static const struct viz_model *sort_model;

static int kind_cmp(const void *a, const void *b)
{
    uint64_t x = sort_model->kinds[*(const int *)a].n, y = sort_model->kinds[*(const int *)b].n;

    return x < y ? 1 : x > y ? -1 : *(const int *)a - *(const int *)b;
}

static int addr_cmp(const void *a, const void *b)
{
    uint64_t x = sort_model->addrs[*(const int *)a].n, y = sort_model->addrs[*(const int *)b].n;

    return x < y ? 1 : x > y ? -1 : *(const int *)a - *(const int *)b;
}

int viz_model_kinds_sorted(const struct viz_model *m, int *idx, int max)
{
    int all[VIZ_KINDS];

    for (int i = 0; i < m->nkinds; i++)
        all[i] = i;
    sort_model = m;
    qsort(all, (size_t)m->nkinds, sizeof(int), kind_cmp);
    if (max > m->nkinds)
        max = m->nkinds;
    memcpy(idx, all, (size_t)max * sizeof(int));
    return max;
}

int viz_model_addrs_sorted(const struct viz_model *m, int *idx, int max)
{
    int all[VIZ_ADDRS];

    for (int i = 0; i < m->naddrs; i++)
        all[i] = i;
    sort_model = m;
    qsort(all, (size_t)m->naddrs, sizeof(int), addr_cmp);
    if (max > m->naddrs)
        max = m->naddrs;
    memcpy(idx, all, (size_t)max * sizeof(int));
    return max;
}

const struct mvm_trace_event *viz_model_last(const struct viz_model *m, uint64_t i)
{
    if (i >= m->nlast || i >= VIZ_LAST)
        return NULL;
    return &m->last[(m->nlast - 1 - i) % VIZ_LAST];
}

int viz_model_rate_bins(const struct viz_model *m)
{
    int n = VIZ_RATE_BINS;

    while (n > 0 && !m->rate[n - 1])
        n--;
    return n;
}
