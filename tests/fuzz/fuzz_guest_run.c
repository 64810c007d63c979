/* One fuzzed guest run on the soft backend, and the inputs: random, instruction sequences, mutated seeds. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_guest.h"
#include "lab_parts.h"

struct fuzz_guest_vm {
    struct mvm_vm *vm;
};

static const char *const mode_names[] = {"real", "protected", "long"};

const char *fuzz_guest_mode_name(uint8_t mode_byte)
{
    return mode_names[mode_byte % 3];
}

int fuzz_guest_mode_parse(const char *name)
{
    for (int m = 0; m < 3; m++)
        if (!strcmp(name, mode_names[m]))
            return m;
    return -2;
}

/* The vCPU in `mode` at MVM_BOOT_LOAD_GPA through the lab parts, as the CLI and the integration harness do. */
static int vcpu_setup(struct mvm_vm *vm, struct mvm_vcpu *vcpu, int mode)
{
    struct lab3_pt_pool pool = {.base_gpa = MVM_BOOT_PT_POOL_GPA, .size = MVM_BOOT_PT_POOL_SIZE};
    uint64_t cr3;
    int rc;

    if (mode == 0)
        return lab1_vcpu_setup_real(vcpu, MVM_BOOT_LOAD_GPA);
    if (mode == 1)
        return lab2_vcpu_setup_protected(vcpu, MVM_BOOT_LOAD_GPA);
    rc = lab3_page_tables_build(vm, &pool, &cr3);
    return rc < 0 ? rc : lab3_vcpu_setup_long(vcpu, MVM_BOOT_LOAD_GPA, cr3);
}

/* Console output goes through the devices to /dev/null, so their output paths run too. */
static FILE *devnull(void)
{
    static FILE *f;

    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

uint32_t fuzz_guest_limit_ms(const uint8_t *in, size_t len, const struct fuzz_guest_limits *lim)
{
    return len > 2 && (in[2] & 1) ? lim->long_ms : lim->max_ms;
}

struct fuzz_guest_vm *fuzz_guest_run(const uint8_t *in, size_t len, const struct fuzz_guest_limits *lim,
                                     struct fuzz_guest_outcome *out)
{
    struct mvm_run_opts opts = {.max_exits = lim->max_exits, .max_ms = fuzz_guest_limit_ms(in, len, lim)};
    uint8_t hdr[FUZZ_GUEST_HDR] = {0};
    struct fuzz_guest_vm *g = calloc(1, sizeof(*g));
    struct mvm_run_result res;
    struct mvm_vcpu *vcpu;
    struct timespec t0;
    const uint8_t *image = in + FUZZ_GUEST_HDR;
    size_t ilen = len > FUZZ_GUEST_HDR ? len - FUZZ_GUEST_HDR : 0;
    uint8_t *ram;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!g) {
        out->setup_rc = -ENOMEM;
        snprintf(out->detail, sizeof(out->detail), "out of memory");
        return NULL;
    }
    memcpy(hdr, in, len < FUZZ_GUEST_HDR ? len : FUZZ_GUEST_HDR);
    if (ilen > FUZZ_GUEST_IMAGE_MAX)
        ilen = FUZZ_GUEST_IMAGE_MAX;
    rc = vm_create(&mvm_backend_soft, &g->vm);
    if (rc == 0)
        rc = vm_mem_add(g->vm, 0, FUZZ_GUEST_RAM, 0);
    if (rc == 0)
        rc = vm_devices_add_standard(g->vm, devnull());
    if (rc == 0) {
        ram = vm_gpa_to_hva(g->vm, 0, FUZZ_GUEST_RAM);
        switch (hdr[1] & 3) {
        case 1:
            memset(ram, 0xf4, FUZZ_GUEST_RAM);
            break;
        case 2:
            for (size_t at = 0; ilen && at < FUZZ_GUEST_RAM; at += ilen)
                memcpy(ram + at, image, ilen < FUZZ_GUEST_RAM - at ? ilen : FUZZ_GUEST_RAM - at);
            break;
        case 3:
            memset(ram, 0xff, FUZZ_GUEST_RAM);
            break;
        default:
            break;
        }
        rc = vm_write(g->vm, MVM_BOOT_LOAD_GPA, image, ilen);
    }
    if (rc == 0)
        rc = vcpu_create(g->vm, 0, &vcpu);
    if (rc == 0)
        rc = vcpu_setup(g->vm, vcpu, hdr[0] % 3);
    if (rc < 0) {
        out->setup_rc = rc;
        snprintf(out->detail, sizeof(out->detail), "%s mode set-up: %s", mode_names[hdr[0] % 3], mvm_error());
        return g;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out->rc = vcpu_run(vcpu, &opts, &res);
    out->ms = ms_since(&t0);
    out->stop = res.stop;
    out->exits = res.exits;
    snprintf(out->detail, sizeof(out->detail), "%s", res.detail);
    return g;
}

void fuzz_guest_vm_destroy(struct fuzz_guest_vm *g)
{
    if (!g)
        return;
    vm_destroy(g->vm);
    free(g);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fuzz_guest_corpus_load(const char *dir, struct fuzz_guest_corpus *c)
{
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0;
    struct dirent *e;
    DIR *d = opendir(dir);

    memset(c, 0, sizeof(*c));
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
            if (!names) {
                closedir(d);
                return -1;
            }
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    c->data = calloc(n ? n : 1, sizeof(*c->data));
    c->len = calloc(n ? n : 1, sizeof(*c->len));
    for (size_t i = 0; i < n; i++) {
        FILE *f;
        size_t got;
        uint8_t *buf = malloc(FUZZ_GUEST_INPUT_MAX);

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        f = fopen(path, "rb");
        free(names[i]);
        if (!f || !buf) {
            if (f)
                fclose(f);
            free(buf);
            continue;
        }
        got = fread(buf, 1, FUZZ_GUEST_INPUT_MAX, f);
        fclose(f);
        if (got == 0) {
            free(buf);
            continue;
        }
        c->data[c->n] = buf;
        c->len[c->n++] = got;
    }
    free(names);
    return 0;
}

void fuzz_guest_corpus_free(struct fuzz_guest_corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->data[i]);
    free(c->data);
    free(c->len);
    memset(c, 0, sizeof(*c));
}

/* splitmix64: every run's generator is seeded from (seed, run) alone, so any run can be made again. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

/*
 * x86 instructions that make the VMM work: port I/O to every device, the ucall port, HLT, exceptions,
 * CPUID/MSRs, VMCALL, descriptor tables, control registers, far jumps; `imm` random bytes follow each.
 */
static const struct snippet {
    uint8_t n, imm;
    uint8_t b[6];
} snippets[] = {
    {1, 0, {0xf4}},                   /* hlt */
    {1, 0, {0xee}},                   /* out dx, al */
    {1, 0, {0xef}},                   /* out dx, (e)ax */
    {2, 0, {0x66, 0xef}},             /* out dx, other width */
    {1, 0, {0xec}},                   /* in al, dx */
    {1, 0, {0xed}},                   /* in (e)ax, dx */
    {1, 1, {0xe6}},                   /* out imm8, al */
    {1, 1, {0xe4}},                   /* in al, imm8 */
    {2, 0, {0xe6, 0xe9}},             /* out 0xe9, al */
    {3, 0, {0xba, 0x00, 0x05}},       /* mov dx, 0x500 (ucall; 16-bit) */
    {5, 0, {0xba, 0x00, 0x05, 0, 0}}, /* mov edx, 0x500 */
    {3, 0, {0xba, 0xf8, 0x03}},       /* mov dx, 0x3f8 (serial) */
    {3, 0, {0xba, 0xfd, 0x03}},       /* mov dx, 0x3fd (LSR) */
    {3, 0, {0xba, 0x10, 0x05}},       /* mov dx, 0x510 (hypercall) */
    {1, 2, {0xba}},                   /* mov dx, imm */
    {1, 4, {0xb8}},                   /* mov (e)ax, imm */
    {2, 4, {0x66, 0xb8}},             /* mov eax, imm32 in 16-bit code */
    {1, 4, {0xbc}},                   /* mov (e)sp, imm */
    {1, 0, {0x6e}},                   /* outsb */
    {2, 0, {0xf3, 0x6e}},             /* rep outsb */
    {2, 0, {0xf3, 0x6c}},             /* rep insb */
    {2, 0, {0xf3, 0x6f}},             /* rep outsw/d */
    {1, 4, {0xb9}},                   /* mov (e)cx, imm */
    {2, 0, {0x0f, 0xa2}},             /* cpuid */
    {2, 0, {0x0f, 0x31}},             /* rdtsc */
    {3, 0, {0x0f, 0x01, 0xf9}},       /* rdtscp */
    {2, 0, {0x0f, 0x32}},             /* rdmsr */
    {2, 0, {0x0f, 0x30}},             /* wrmsr */
    {3, 0, {0x0f, 0x01, 0xc1}},       /* vmcall */
    {3, 0, {0x0f, 0x01, 0xd9}},       /* vmmcall */
    {1, 0, {0xcc}},                   /* int3 */
    {1, 1, {0xcd}},                   /* int imm8 */
    {2, 0, {0x0f, 0x0b}},             /* ud2 */
    {1, 0, {0xcf}},                   /* iret */
    {3, 2, {0x0f, 0x01, 0x16}},       /* lgdt [disp16] */
    {3, 2, {0x0f, 0x01, 0x1e}},       /* lidt [disp16] */
    {3, 0, {0x0f, 0x22, 0xc0}},       /* mov cr0, eax */
    {3, 0, {0x0f, 0x20, 0xc0}},       /* mov eax, cr0 */
    {3, 0, {0x0f, 0x22, 0xd8}},       /* mov cr3, eax */
    {3, 0, {0x0f, 0x22, 0xe0}},       /* mov cr4, eax */
    {3, 0, {0x0f, 0x22, 0xd0}},       /* mov cr2, eax */
    {2, 1, {0x0c}},                   /* or al, imm8 */
    {1, 4, {0xea}},                   /* jmp far ptr16:16 (real mode) */
    {2, 6, {0x66, 0xea}},             /* jmp far ptr16:32 */
    {1, 0, {0xfb}},                   /* sti */
    {1, 0, {0xfa}},                   /* cli */
    {1, 0, {0x9c}},                   /* pushf */
    {1, 0, {0x9d}},                   /* popf */
    {2, 0, {0x0f, 0x05}},             /* syscall */
    {2, 0, {0x0f, 0x34}},             /* sysenter */
    {2, 0, {0x8e, 0xd0}},             /* mov ss, ax */
    {2, 0, {0x8e, 0xd8}},             /* mov ds, ax */
    {2, 0, {0x8e, 0xc0}},             /* mov es, ax */
    {3, 0, {0x0f, 0x00, 0xd8}},       /* ltr ax */
    {3, 0, {0x0f, 0x00, 0xd0}},       /* lldt ax */
    {3, 0, {0x0f, 0x01, 0x38}},       /* invlpg [bx+si] / [eax] */
    {2, 0, {0x0f, 0x09}},             /* wbinvd */
    {2, 0, {0xf7, 0xf1}},             /* div (e)cx: #DE when cx is 0 */
    {2, 0, {0xeb, 0xfe}},             /* jmp $ */
    {1, 0, {0xc3}},                   /* ret */
    {1, 0, {0xcb}},                   /* retf */
    {1, 2, {0xa3}},                   /* mov [imm], (e)ax */
    {1, 2, {0xa1}},                   /* mov (e)ax, [imm] */
    {2, 0, {0x89, 0x07}},             /* mov [bx] / [edi], (e)ax */
    {2, 0, {0x8b, 0x07}},             /* mov (e)ax, [bx] / [edi] */
    {3, 0, {0x0f, 0x01, 0xd1}},       /* xsetbv */
    {3, 0, {0x0f, 0x01, 0xc8}},       /* monitor */
    {3, 0, {0x0f, 0x01, 0xc9}},       /* mwait */
    {2, 0, {0xf3, 0x90}},             /* pause */
    {1, 0, {0xf0}},                   /* lock prefix */
    {1, 0, {0x66}},                   /* operand-size prefix */
    {1, 0, {0x67}},                   /* address-size prefix */
    {3, 0, {0x0f, 0x01, 0xf8}},       /* swapgs */
    {2, 0, {0x0f, 0x07}},             /* sysret */
    {2, 0, {0x0f, 0xaa}},             /* rsm */
};

/* Values that mean something to the VMM or the CPU: ports, boot layout addresses, CR0 and EFER bits, MSRs. */
static const uint32_t interesting32[] = {
    0,          1,          0x500,      0x510,      0x3f8,      0xe9,       0x1000,     0x6f000,
    0x70000,    0x1fffff,   0x200000,   0x80000000, 0x80000001, 0x80000011, 0xc0000080, 0xfee00000,
    0xfec00000, 0x7fffffff, 0xffffffff, 0xfffff000, 0x4b564d01, 0x40000000, 0xc0000100, 0x1b,
};

static size_t snippet_put(uint64_t *r, uint8_t *at, size_t room)
{
    const struct snippet *s = &snippets[rng_below(r, sizeof(snippets) / sizeof(snippets[0]))];
    size_t n = (size_t)s->n + s->imm;

    if (n > room)
        return 0;
    memcpy(at, s->b, s->n);
    for (size_t k = 0; k < s->imm; k++)
        at[s->n + k] = (uint8_t)rng_next(r);
    if (s->imm >= 2 && rng_below(r, 2)) {
        uint32_t v = interesting32[rng_below(r, sizeof(interesting32) / sizeof(interesting32[0]))];

        memcpy(at + s->n, &v, s->imm < 4 ? s->imm : 4);
    }
    return n;
}

/* One mutation of image[0..*len) (cap bytes of room); another corpus input may be spliced in. */
static void mutate_once(uint64_t *r, uint8_t *image, size_t *len, size_t cap, const struct fuzz_guest_corpus *c)
{
    size_t n = *len, pos = n ? rng_below(r, n) : 0, k;
    uint8_t tmp[16];

    switch (rng_below(r, 9)) {
    case 0:
        if (n)
            image[pos] ^= (uint8_t)(1u << rng_below(r, 8));
        break;
    case 1:
        if (n)
            image[pos] = (uint8_t)rng_next(r);
        break;
    case 2: { /* insert an instruction */
        k = snippet_put(r, tmp, sizeof(tmp));
        if (k && n + k <= cap) {
            memmove(image + pos + k, image + pos, n - pos);
            memcpy(image + pos, tmp, k);
            *len = n + k;
        }
        break;
    }
    case 3: /* overwrite with an instruction */
        k = snippet_put(r, tmp, sizeof(tmp));
        if (k && pos + k <= cap) {
            memcpy(image + pos, tmp, k);
            if (pos + k > n)
                *len = pos + k;
        }
        break;
    case 4: /* delete a few bytes */
        k = 1 + rng_below(r, 16);
        if (pos + k <= n && n - k > 0) {
            memmove(image + pos, image + pos + k, n - pos - k);
            *len = n - k;
        }
        break;
    case 5: { /* duplicate a few bytes */
        k = 1 + rng_below(r, 16);
        if (pos + k <= n && n + k <= cap) {
            memmove(image + pos + k, image + pos, n - pos);
            *len = n + k;
        }
        break;
    }
    case 6: { /* an interesting 32-bit value */
        uint32_t v = interesting32[rng_below(r, sizeof(interesting32) / sizeof(interesting32[0]))];

        if (pos + 4 <= n)
            memcpy(image + pos, &v, 4);
        break;
    }
    case 7: /* splice: a stretch of another seed's image over ours */
        if (c && c->n) {
            size_t s = rng_below(r, c->n);

            if (c->len[s] > FUZZ_GUEST_HDR) {
                size_t slen = c->len[s] - FUZZ_GUEST_HDR, from = rng_below(r, slen);

                k = 1 + rng_below(r, 256);
                if (k > slen - from)
                    k = slen - from;
                if (pos + k <= cap) {
                    memcpy(image + pos, c->data[s] + FUZZ_GUEST_HDR + from, k);
                    if (pos + k > n)
                        *len = pos + k;
                }
            }
        }
        break;
    default: /* an interesting byte */
        if (n) {
            static const uint8_t bytes[] = {0, 1, 0x7f, 0x80, 0xff, 0xf4, 0xcc, 0x0f, 0x90, 0xee, 0xef, 0xe9};

            image[pos] = bytes[rng_below(r, sizeof(bytes))];
        }
        break;
    }
}

size_t fuzz_guest_input_make(uint64_t seed, uint64_t i, const struct fuzz_guest_corpus *c, int mode, uint8_t *buf,
                             size_t cap)
{
    uint64_t r = seed * 0xd1342543de82ef95ull ^ (i + 1) * 0x9e3779b97f4a7c15ull;
    uint8_t *image = buf + FUZZ_GUEST_HDR;
    size_t len = 0, room = (cap < FUZZ_GUEST_INPUT_MAX ? cap : FUZZ_GUEST_INPUT_MAX) - FUZZ_GUEST_HDR;
    unsigned kind = (unsigned)rng_below(&r, 8);

    rng_next(&r);
    memset(buf, 0, FUZZ_GUEST_HDR);
    buf[0] = (uint8_t)(mode >= 0 ? mode : (int)rng_below(&r, 3));
    buf[1] = (uint8_t)rng_below(&r, 4);
    buf[2] = rng_below(&r, FUZZ_GUEST_LONG_EVERY) == 0;
    if (kind >= 4 && c && c->n) {
        size_t s = rng_below(&r, c->n), muts = 1 + rng_below(&r, 8);

        len = c->len[s] > FUZZ_GUEST_HDR ? c->len[s] - FUZZ_GUEST_HDR : 0;
        if (len > room)
            len = room;
        memcpy(image, c->data[s] + FUZZ_GUEST_HDR, len);
        /* A seed keeps its own mode and fill, mostly: a long-mode guest started in real mode is just noise. */
        if (mode < 0 && rng_below(&r, 32))
            buf[0] = c->data[s][0];
        if (rng_below(&r, 16))
            buf[1] = c->len[s] > 1 ? c->data[s][1] : 0;
        for (size_t m = 0; m < muts; m++)
            mutate_once(&r, image, &len, room, c);
    } else if (kind >= 2) {
        size_t count = 1 + rng_below(&r, 64);

        for (size_t m = 0; m < count; m++) {
            size_t k = snippet_put(&r, image + len, room - len);

            if (!k)
                break;
            len += k;
        }
    } else {
        len = 1 + rng_below(&r, 2048);
        for (size_t k = 0; k < len; k++)
            image[k] = (uint8_t)rng_next(&r);
    }
    return FUZZ_GUEST_HDR + len;
}

void fuzz_guest_self_test(const char *what)
{
    if (!strcmp(what, "crash")) {
        raise(SIGSEGV);
    } else if (!strcmp(what, "hang")) {
        sigset_t all;

        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        for (;;)
            pause();
    } else if (!strcmp(what, "ubsan")) {
        volatile int big = 0x7fffffff;

        big = big + 1; /* signed overflow: UBSan reports it and, built to halt, stops the child */
        (void)big;
    } else if (!strcmp(what, "leak")) {
        volatile char *lost = malloc(64);

        lost[0] = 1; /* then dropped: the batch's leak check reports it */
    } else if (!strcmp(what, "asan")) {
        volatile char *p = malloc(8);

        free((void *)p);
        p[0] = 1; /* use after free */
    }
}
