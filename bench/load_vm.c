/* The load guest (bench/load_vm.h): built byte by byte here, so its loop count can differ from VM to VM. */
#include "load_vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab_parts.h"

#define LOAD_RAM_SIZE 0x20000 /* the real-mode segment at 0x1000 and its stack, SP = 0xfffe, fit */
#define LOAD_CODE_GPA 0x1000
#define LOAD_DATA_OFF 0x2000 /* from DS = CS: another page than the code, so the store is not self-modifying */

struct load_answer {
    uint32_t outs;
    uint16_t value;
};

static uint16_t load_count(uint32_t seed)
{
    return (uint16_t)(seed % 61 + 1);
}

uint16_t load_expected(uint32_t seed)
{
    return (uint16_t)(load_count(seed) * (uint16_t)seed);
}

static int load_port(struct mvm_vcpu *vcpu, void *opaque, uint16_t port, bool is_write, uint8_t *data, uint32_t size)
{
    struct load_answer *a = opaque;

    (void)vcpu;
    (void)port;
    if (!is_write || size != 2)
        return MVM_STOP_ASSERT;
    a->outs++;
    memcpy(&a->value, data, 2);
    return 0;
}

int load_vm_create(const struct mvm_backend *be, uint32_t seed, struct mvm_vm **out, struct mvm_vcpu **vcpu_out)
{
    uint16_t n = load_count(seed);
    const uint8_t code[] = {
        0x89,
        0x0e,
        LOAD_DATA_OFF & 0xff,
        LOAD_DATA_OFF >> 8, /* mov [data], cx */
        0x31,
        0xc0, /* xor ax, ax */
        0xbb,
        n & 0xff,
        n >> 8, /* mov bx, n */
        0x03,
        0x06,
        LOAD_DATA_OFF & 0xff,
        LOAD_DATA_OFF >> 8, /* 1: add ax, [data] */
        0x4b,               /* dec bx */
        0x75,
        0xf9, /* jnz 1b */
        0xba,
        LOAD_PORT & 0xff,
        LOAD_PORT >> 8, /* mov dx, LOAD_PORT */
        0xef,           /* out dx, ax */
        0xf4,           /* hlt */
    };
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu = NULL;
    struct kvm_regs regs;
    int rc = vm_create(be, &vm);

    if (rc == 0)
        rc = vm_mem_add(vm, 0, LOAD_RAM_SIZE, 0);
    if (rc == 0)
        rc = vm_write(vm, LOAD_CODE_GPA, code, sizeof(code));
    if (rc == 0)
        rc = vcpu_create(vm, 0, &vcpu);
    if (rc == 0)
        rc = lab1_vcpu_setup_real(vcpu, LOAD_CODE_GPA);
    if (rc == 0)
        rc = vcpu_regs_get(vcpu, &regs);
    if (rc == 0) {
        regs.rcx = (uint16_t)seed;
        rc = vcpu_regs_set(vcpu, &regs);
    }
    if (rc < 0) {
        vm_destroy(vm);
        return rc;
    }
    *out = vm;
    *vcpu_out = vcpu;
    return 0;
}

int load_vm_cycle(const struct mvm_backend *be, uint32_t seed, char *why, size_t why_len)
{
    struct load_answer a = {0};
    struct mvm_run_opts opts = {.max_exits = 16};
    struct mvm_run_result res;
    struct mvm_vm *vm;
    struct mvm_vcpu *vcpu;
    int rc = load_vm_create(be, seed, &vm, &vcpu);

    if (rc < 0)
        return rc;
    rc = vm_pio_register(vm, LOAD_PORT, 1, load_port, &a);
    if (rc == 0)
        rc = vcpu_run(vcpu, &opts, &res);
    vm_destroy(vm);
    if (rc < 0)
        return rc;
    if (res.stop == MVM_STOP_HLT && a.outs == 1 && a.value == load_expected(seed))
        return 1;
    if (why)
        snprintf(why, why_len, "seed %u: stop '%s', %u OUTs, answer %u (expected %u)", seed, mvm_stop_name(res.stop),
                 a.outs, a.value, load_expected(seed));
    return 0;
}

/* A gate: threads arrive and wait until the host opens it. */
struct load_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int arrived;
    bool open;
};

static void gate_pass(struct load_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->arrived++;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* Waits until `n` threads have arrived, calls fn(arg) (may be NULL), then lets them all through. */
static void gate_open_when(struct load_gate *g, int n, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&g->lock);
    while (g->arrived < n)
        pthread_cond_wait(&g->cond, &g->lock);
    if (fn)
        fn(arg);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

struct load_thread {
    pthread_t tid;
    const struct mvm_backend *be;
    uint32_t seed;
    struct load_gate *created, *ran;
    struct load_answer answer;
    int rc;    /* 0 or -errno: creating or running the VM failed */
    bool made; /* the VM and its port handler were created */
    bool right;
    char why[200];
};

static void *load_thread_main(void *arg)
{
    struct load_thread *t = arg;
    struct mvm_vm *vm = NULL;
    struct mvm_vcpu *vcpu = NULL;
    struct mvm_run_opts opts = {.max_exits = 16};
    struct mvm_run_result res;

    t->rc = load_vm_create(t->be, t->seed, &vm, &vcpu);
    if (t->rc == 0)
        t->rc = vm_pio_register(vm, LOAD_PORT, 1, load_port, &t->answer);
    t->made = t->rc == 0;
    if (t->rc < 0)
        snprintf(t->why, sizeof(t->why), "seed %u: creating the VM failed: %s", t->seed, mvm_error());
    gate_pass(t->created);
    if (t->rc == 0) {
        t->rc = vcpu_run(vcpu, &opts, &res);
        if (t->rc < 0)
            snprintf(t->why, sizeof(t->why), "seed %u: running the VM failed: %s", t->seed, mvm_error());
    }
    if (t->rc == 0) {
        t->right = res.stop == MVM_STOP_HLT && t->answer.outs == 1 && t->answer.value == load_expected(t->seed);
        if (!t->right)
            snprintf(t->why, sizeof(t->why), "seed %u: stop '%s', %u OUTs, answer %u (expected %u)", t->seed,
                     mvm_stop_name(res.stop), t->answer.outs, t->answer.value, load_expected(t->seed));
    }
    gate_pass(t->ran);
    vm_destroy(vm);
    return NULL;
}

static void note_rss(void *arg)
{
    *(uint64_t *)arg = load_rss_kib();
}

int load_vms_at_once(const struct mvm_backend *be, int n, uint32_t first_seed, struct load_at_once *out)
{
    struct load_gate created = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
    struct load_gate ran = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
    struct load_thread *threads = calloc((size_t)n, sizeof(*threads));
    int started = 0;

    memset(out, 0, sizeof(*out));
    if (!threads)
        return mvm_fail(ENOMEM, "load: no memory for %d threads", n);
    for (; started < n; started++) {
        struct load_thread *t = &threads[started];

        *t = (struct load_thread){
            .be = be, .seed = first_seed + 37 * (uint32_t)started, .created = &created, .ran = &ran};
        if (pthread_create(&t->tid, NULL, load_thread_main, t) != 0)
            break;
    }
    /* Those that did start are let through either way, so none is left waiting. */
    gate_open_when(&created, started, note_rss, &out->rss_kib);
    gate_open_when(&ran, started, NULL, NULL);
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i].tid, NULL);
        out->created += threads[i].made;
        out->right += threads[i].right;
        if (!out->why[0] && threads[i].why[0])
            snprintf(out->why, sizeof(out->why), "%s", threads[i].why);
    }
    free(threads);
    if (started < n)
        return mvm_fail(EAGAIN, "load: only %d of %d threads started", started, n);
    return 0;
}

uint64_t load_rss_kib(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}
