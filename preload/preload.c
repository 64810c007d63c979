/*
 * libminivmm-kvm.so: a drop-in /dev/kvm. Preloaded (LD_PRELOAD, or `minivmm exec`), it routes an unmodified KVM
 * program's open of /dev/kvm, and its ioctl, mmap, dup and close of the descriptors KVM hands out, to the soft
 * backend in the same process. Every other descriptor, path and call goes straight through.
 *
 * Descriptors. The soft backend keys its objects by the fd it created (an eventfd for /dev/kvm and VMs, a memfd
 * for a vCPU, whose kvm_run lives in it). Here that fd is private: created above a high floor, never shown to the
 * program. The program gets a dup of it at the lowest free number, as KVM's anon-inode fds are; dup, dup2, dup3 and
 * fcntl(F_DUPFD*) give more names for the same object, and the object is closed in the backend when its last name
 * is closed (as a struct file is released). close, dup2 or close_range aimed at a private fd are refused, so the
 * program cannot pull one from under the backend.
 *
 * mmap of a vCPU fd maps the memfd itself: the program and the backend share kvm_run and the PIO page, a mapping
 * keeps them alive after the fd is closed, and munmap needs nothing from here (nor is it intercepted). /dev/kvm and
 * VM fds cannot be mapped (ENODEV), as on KVM.
 *
 * fork: the child inherits the names, and its copy of the backend's memory, but KVM binds a VM to the mm that
 * created it: in the child, VM and vCPU ioctls fail with EIO, as KVM's do, while /dev/kvm works and creates VMs of
 * the child's own. A close in the child only closes the child's descriptors.
 *
 * Not covered: fds above PRELOAD_FD_MAX (EMFILE); exec (the fds do not survive as KVM fds; KVM's VM and vCPU fds are
 * close-on-exec anyway); read/write/poll of KVM fds (KVM's stats fds; the soft backend has none); programs that make
 * system calls without libc's wrappers (static binaries, Go), which LD_PRELOAD cannot reach.
 *
 * $MINIVMM_PRELOAD_LOG=FILE appends a line for each KVM ioctl the backend refuses (once per ioctl, fd kind and
 * errno; EINTR is no refusal) and each capability it answers 0, with the backend's reason: the list of what the soft
 * backend lacks for a given program.
 */
#include "backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Descriptors the library tracks: the program's names for KVM objects and the backend's private fds. */
#define PRELOAD_FD_MAX 65536
/* The floor of the private fds (lower where RLIMIT_NOFILE is lower). */
#define PRELOAD_PRIV_FLOOR 4096

enum obj_kind { OBJ_SYS = 1, OBJ_VM, OBJ_VCPU, OBJ_OTHER };
static const char *const kind_name[] = {"?", "/dev/kvm", "VM", "vCPU", "KVM"};

/* One KVM object (KVM's struct file): the backend's private fd, and how many of the program's fds name it. */
struct obj {
    int bfd;
    enum obj_kind kind;
    int names;
    pid_t owner; /* the process whose VM it is (KVM's kvm->mm) */
};

static _Atomic(struct obj *) names[PRELOAD_FD_MAX];
static atomic_bool priv[PRELOAD_FD_MAX];
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
/* Inside the backend (and Unicorn under it), every call goes straight to libc. */
static _Thread_local int in_backend;
static const struct mvm_backend *const be = &mvm_backend_soft;

#define REAL(ret, name, params)                                                                                        \
    typedef ret name##_fn params;                                                                                      \
    static name##_fn *real_##name;
REAL(int, open, (const char *, int, ...))
REAL(int, open64, (const char *, int, ...))
REAL(int, openat, (int, const char *, int, ...))
REAL(int, openat64, (int, const char *, int, ...))
REAL(int, __open_2, (const char *, int))
REAL(int, __open64_2, (const char *, int))
REAL(int, __openat_2, (int, const char *, int))
REAL(int, __openat64_2, (int, const char *, int))
REAL(int, close, (int))
REAL(int, ioctl, (int, unsigned long, ...))
REAL(int, dup, (int))
REAL(int, dup2, (int, int))
REAL(int, dup3, (int, int, int))
REAL(int, fcntl, (int, int, ...))
REAL(int, fcntl64, (int, int, ...))
REAL(void *, mmap, (void *, size_t, int, int, int, off_t))
REAL(void *, mmap64, (void *, size_t, int, int, int, off_t))
REAL(int, eventfd, (unsigned int, int))
REAL(int, memfd_create, (const char *, unsigned int))
REAL(int, close_range, (unsigned int, unsigned int, int))
REAL(void, closefrom, (int))

/* The next definition of name (libc's), found once; a missing one aborts with the name (nothing can go on). */
static void *next_sym(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!p) {
        p = dlsym(RTLD_NEXT, name);
        if (!p) {
            static const char msg[] = "libminivmm-kvm.so: libc has no ";
            ssize_t r = write(2, msg, sizeof msg - 1);
            r = write(2, name, strlen(name));
            r = write(2, "\n", 1);
            (void)r;
            abort();
        }
        __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
    return p;
}
#define NEXT(name) ((name##_fn *)next_sym((void **)&real_##name, #name))

static int log_fd = -1;

static void fork_prepare(void)
{
    pthread_mutex_lock(&names_lock);
}

static void fork_done(void)
{
    pthread_mutex_unlock(&names_lock);
}

__attribute__((constructor)) static void preload_init(void)
{
    /* A fork while another thread updates the table must not leave the child a held lock. */
    pthread_atfork(fork_prepare, fork_done, fork_done);
    const char *path = getenv("MINIVMM_PRELOAD_LOG");
    if (path && *path)
        log_fd = NEXT(open)(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    if (log_fd < 0)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t r = write(log_fd, buf, (size_t)n); /* O_APPEND: one line per write, whole, from any process */
    (void)r;
}

/* True the first time (req, what, kind) is seen: the log names each refusal once, however often it recurs. */
static bool log_first(unsigned long req, unsigned long what, enum obj_kind kind)
{
    static struct {
        unsigned long req, what;
        enum obj_kind kind;
    } seen[256];
    static int nseen;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (log_fd < 0)
        return false;
    bool first = true;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nseen && first; i++)
        if (seen[i].req == req && seen[i].what == what && seen[i].kind == kind)
            first = false;
    if (first && nseen < (int)(sizeof seen / sizeof seen[0])) {
        seen[nseen].req = req;
        seen[nseen].what = what;
        seen[nseen].kind = kind;
        nseen++;
    }
    pthread_mutex_unlock(&lock);
    return first;
}

static struct obj *name_get(int fd)
{
    if (fd < 0 || fd >= PRELOAD_FD_MAX)
        return NULL;
    return atomic_load_explicit(&names[fd], memory_order_acquire);
}

static bool is_priv(int fd)
{
    return fd >= 0 && fd < PRELOAD_FD_MAX && atomic_load_explicit(&priv[fd], memory_order_relaxed);
}

/* fd becomes a name of o. */
static void name_add(int fd, struct obj *o)
{
    pthread_mutex_lock(&names_lock);
    o->names++;
    atomic_store_explicit(&names[fd], o, memory_order_release);
    pthread_mutex_unlock(&names_lock);
}

/* fd (already closed) no longer names its object; the last name closes the object in the backend. */
static void name_drop(int fd)
{
    pthread_mutex_lock(&names_lock);
    struct obj *o = atomic_exchange(&names[fd], NULL);
    bool last = o && --o->names == 0;
    pthread_mutex_unlock(&names_lock);
    if (!last)
        return;
    if (o->owner == getpid()) {
        in_backend++;
        int r = be->close(o->bfd);
        in_backend--;
        if (r < 0)
            log_line("close of %s fd (backend fd %d): %s", kind_name[o->kind], o->bfd, strerror(-r));
    } else {
        /* A child's copy: the parent's VM is not the child's to destroy. */
        NEXT(close)(o->bfd);
        atomic_store(&priv[o->bfd], false);
    }
    free(o);
}

/* The lowest free fd naming the backend's fd bfd (a new object of kind). The fd, or -errno. */
static int obj_publish(int bfd, enum obj_kind kind, bool cloexec)
{
    struct obj *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    *o = (struct obj){.bfd = bfd, .kind = kind, .owner = getpid()};
    int fd = NEXT(fcntl)(bfd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (fd >= PRELOAD_FD_MAX) {
        NEXT(close)(fd);
        fd = -1;
        errno = EMFILE;
    }
    if (fd < 0) {
        int e = errno;
        in_backend++;
        be->close(bfd);
        in_backend--;
        free(o);
        return -e;
    }
    name_add(fd, o);
    return fd;
}

/* A new backend fd moved above the floor, where the program's own fds do not reach. */
static int priv_move(int fd)
{
    if (fd < 0)
        return fd;
    struct rlimit rl;
    int floor = PRELOAD_PRIV_FLOOR;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < (rlim_t)floor)
        floor = (int)(rl.rlim_cur / 2);
    int hi = NEXT(fcntl)(fd, F_DUPFD_CLOEXEC, floor);
    if (hi < 0 || hi >= PRELOAD_FD_MAX) {
        if (hi >= 0)
            NEXT(close)(hi);
        hi = fd; /* no room up there: keep it where it is, still private */
    } else {
        NEXT(close)(fd);
    }
    atomic_store(&priv[hi], true);
    return hi;
}

EXPORT int eventfd(unsigned int count, int flags)
{
    int fd = NEXT(eventfd)(count, flags);
    return in_backend ? priv_move(fd) : fd;
}

EXPORT int memfd_create(const char *name, unsigned int flags)
{
    int fd = NEXT(memfd_create)(name, flags);
    return in_backend ? priv_move(fd) : fd;
}

/* Is path (relative to dirfd) /dev/kvm? Lexically, after . and .. and repeated slashes; no symlinks followed. */
static bool is_kvm_path(int dirfd, const char *path)
{
    if (!path)
        return false;
    const char *base = strrchr(path, '/');
    if (strcmp(base ? base + 1 : path, "kvm") != 0)
        return false;
    char full[PATH_MAX * 2];
    if (path[0] == '/') {
        snprintf(full, sizeof full, "%s", path);
    } else {
        char dir[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(dir, sizeof dir))
                return false;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, dir, sizeof dir - 1);
            if (n <= 0)
                return false;
            dir[n] = 0;
        }
        snprintf(full, sizeof full, "%s/%s", dir, path);
    }
    /* Normalise into out: components, with .. dropping the last one. */
    char out[sizeof full];
    size_t len = 0;
    for (char *save = NULL, *c = strtok_r(full, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..")) {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        len += (size_t)snprintf(out + len, sizeof out - len, "/%s", c);
    }
    out[len] = 0;
    return !strcmp(out, "/dev/kvm");
}

/* open of /dev/kvm: the backend's system fd. */
static int kvm_open(int flags)
{
    if (flags & O_DIRECTORY) {
        errno = ENOTDIR;
        return -1;
    }
    in_backend++;
    int bfd = be->open_dev();
    in_backend--;
    int fd = bfd < 0 ? bfd : obj_publish(bfd, OBJ_SYS, flags & O_CLOEXEC);
    if (fd < 0) {
        errno = -fd;
        return -1;
    }
    return fd;
}

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

#define OPEN_WRAPPER(name)                                                                                             \
    EXPORT int name(const char *path, int flags, ...)                                                                  \
    {                                                                                                                  \
        va_list ap;                                                                                                    \
        va_start(ap, flags);                                                                                           \
        mode_t mode = open_mode(flags, ap);                                                                            \
        va_end(ap);                                                                                                    \
        if (!in_backend && is_kvm_path(AT_FDCWD, path))                                                                \
            return kvm_open(flags);                                                                                    \
        return NEXT(name)(path, flags, mode);                                                                          \
    }
#define OPENAT_WRAPPER(name)                                                                                           \
    EXPORT int name(int dirfd, const char *path, int flags, ...)                                                       \
    {                                                                                                                  \
        va_list ap;                                                                                                    \
        va_start(ap, flags);                                                                                           \
        mode_t mode = open_mode(flags, ap);                                                                            \
        va_end(ap);                                                                                                    \
        if (!in_backend && is_kvm_path(dirfd, path))                                                                   \
            return kvm_open(flags);                                                                                    \
        return NEXT(name)(dirfd, path, flags, mode);                                                                   \
    }
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

/* The fortified variants (_FORTIFY_SOURCE): no mode argument. */
EXPORT int __open_2(const char *path, int flags)
{
    return !in_backend && is_kvm_path(AT_FDCWD, path) ? kvm_open(flags) : NEXT(__open_2)(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
    return !in_backend && is_kvm_path(AT_FDCWD, path) ? kvm_open(flags) : NEXT(__open64_2)(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return !in_backend && is_kvm_path(dirfd, path) ? kvm_open(flags) : NEXT(__openat_2)(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return !in_backend && is_kvm_path(dirfd, path) ? kvm_open(flags) : NEXT(__openat64_2)(dirfd, path, flags);
}

EXPORT int close(int fd)
{
    if (in_backend) {
        if (is_priv(fd))
            atomic_store(&priv[fd], false);
        return NEXT(close)(fd);
    }
    if (is_priv(fd)) {
        errno = EBADF; /* not a descriptor of the program's */
        return -1;
    }
    if (!name_get(fd))
        return NEXT(close)(fd);
    int r = NEXT(close)(fd);
    int e = errno;
    name_drop(fd);
    errno = e;
    return r;
}

/* A KVM ioctl's name, for the log (the ones the selftests and VMMs use). */
static const char *ioctl_name(unsigned long req)
{
#define N(x)                                                                                                           \
    {                                                                                                                  \
        x, #x                                                                                                          \
    }
    static const struct {
        unsigned long req;
        const char *name;
    } tab[] = {
        N(KVM_GET_API_VERSION),
        N(KVM_CREATE_VM),
        N(KVM_GET_MSR_INDEX_LIST),
        N(KVM_CHECK_EXTENSION),
        N(KVM_GET_VCPU_MMAP_SIZE),
        N(KVM_GET_SUPPORTED_CPUID),
        N(KVM_GET_EMULATED_CPUID),
        N(KVM_GET_MSR_FEATURE_INDEX_LIST),
        N(KVM_SET_USER_MEMORY_REGION),
        N(KVM_SET_TSS_ADDR),
        N(KVM_SET_IDENTITY_MAP_ADDR),
        N(KVM_CREATE_VCPU),
        N(KVM_GET_DIRTY_LOG),
        N(KVM_CREATE_IRQCHIP),
        N(KVM_IRQ_LINE),
        N(KVM_IRQ_LINE_STATUS),
        N(KVM_GET_IRQCHIP),
        N(KVM_SET_IRQCHIP),
        N(KVM_CREATE_PIT2),
        N(KVM_GET_PIT2),
        N(KVM_SET_PIT2),
        N(KVM_SET_GSI_ROUTING),
        N(KVM_IRQFD),
        N(KVM_IOEVENTFD),
        N(KVM_SET_CLOCK),
        N(KVM_GET_CLOCK),
        N(KVM_ENABLE_CAP),
        N(KVM_SET_BOOT_CPU_ID),
        N(KVM_CREATE_DEVICE),
        N(KVM_SET_DEVICE_ATTR),
        N(KVM_GET_DEVICE_ATTR),
        N(KVM_HAS_DEVICE_ATTR),
        N(KVM_GET_STATS_FD),
        N(KVM_SET_PMU_EVENT_FILTER),
        N(KVM_X86_SET_MSR_FILTER),
        N(KVM_XEN_HVM_CONFIG),
        N(KVM_SET_TSC_KHZ),
        N(KVM_GET_TSC_KHZ),
        N(KVM_RUN),
        N(KVM_GET_REGS),
        N(KVM_SET_REGS),
        N(KVM_GET_SREGS),
        N(KVM_SET_SREGS),
        N(KVM_TRANSLATE),
        N(KVM_INTERRUPT),
        N(KVM_GET_MSRS),
        N(KVM_SET_MSRS),
        N(KVM_SET_CPUID),
        N(KVM_SET_CPUID2),
        N(KVM_GET_CPUID2),
        N(KVM_SET_SIGNAL_MASK),
        N(KVM_GET_FPU),
        N(KVM_SET_FPU),
        N(KVM_GET_LAPIC),
        N(KVM_SET_LAPIC),
        N(KVM_NMI),
        N(KVM_SMI),
        N(KVM_GET_VCPU_EVENTS),
        N(KVM_SET_VCPU_EVENTS),
        N(KVM_GET_DEBUGREGS),
        N(KVM_SET_DEBUGREGS),
        N(KVM_GET_XSAVE),
        N(KVM_SET_XSAVE),
        N(KVM_GET_XSAVE2),
        N(KVM_GET_XCRS),
        N(KVM_SET_XCRS),
        N(KVM_SET_GUEST_DEBUG),
        N(KVM_GET_MP_STATE),
        N(KVM_SET_MP_STATE),
        N(KVM_KVMCLOCK_CTRL),
        N(KVM_GET_NESTED_STATE),
        N(KVM_SET_NESTED_STATE),
        N(KVM_GET_SUPPORTED_HV_CPUID),
        N(KVM_X86_SETUP_MCE),
        N(KVM_X86_GET_MCE_CAP_SUPPORTED),
        N(KVM_X86_SET_MCE),
        N(KVM_MEMORY_ENCRYPT_OP),
        N(KVM_REINJECT_CONTROL),
        N(KVM_CLEAR_DIRTY_LOG),
        N(KVM_RESET_DIRTY_RINGS),
        N(KVM_TPR_ACCESS_REPORTING),
        N(KVM_SET_VAPIC_ADDR),
    };
#undef N
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].req == req)
            return tab[i].name;
    return "a KVM ioctl";
}

/* A KVM ioctl that returned the backend's fd r for a new object: the program's name for it. */
static int ioctl_new_fd(unsigned long req, int r)
{
    enum obj_kind kind = req == KVM_CREATE_VM ? OBJ_VM : req == KVM_CREATE_VCPU ? OBJ_VCPU : OBJ_OTHER;
    return obj_publish(r, kind, true); /* KVM's anon-inode fds are O_CLOEXEC */
}

static int kvm_ioctl(int fd, struct obj *o, unsigned long req, unsigned long arg)
{
    /* The VFS answers these before any driver: the program's fd, not the object. */
    if (req == FIOCLEX || req == FIONCLEX || req == FIONBIO || req == FIOASYNC)
        return NEXT(ioctl)(fd, req, arg);
    if (o->kind != OBJ_SYS && o->owner != getpid()) {
        errno = EIO; /* KVM: kvm->mm != current->mm */
        return -1;
    }
    in_backend++;
    int r = be->ioctl(o->bfd, req, arg);
    in_backend--;
    if (r >= 0 && req == KVM_CREATE_DEVICE) {
        struct kvm_create_device *cd = (struct kvm_create_device *)arg;
        if (!(cd->flags & KVM_CREATE_DEVICE_TEST)) {
            int nfd = ioctl_new_fd(req, (int)cd->fd);
            if (nfd < 0)
                r = nfd;
            else
                cd->fd = (uint32_t)nfd;
        }
    } else if (r >= 0 && (req == KVM_CREATE_VM || req == KVM_CREATE_VCPU || req == KVM_GET_STATS_FD)) {
        r = ioctl_new_fd(req, r);
    }
    if (r == 0 && req == KVM_CHECK_EXTENSION && log_first(req, arg, o->kind))
        log_line("KVM_CHECK_EXTENSION %lu on a %s fd: 0", arg, kind_name[o->kind]);
    if (r < 0) {
        if (r != -EINTR && log_first(req, (unsigned long)-r, o->kind)) /* EINTR: a signal or immediate_exit */
            log_line("%s (0x%lx) on a %s fd: %s (%s)", ioctl_name(req), req, kind_name[o->kind], strerror(-r),
                     be->last_error());
        errno = -r;
        return -1;
    }
    return r;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    struct obj *o;
    if (in_backend || !(o = name_get(fd)))
        return NEXT(ioctl)(fd, req, arg);
    return kvm_ioctl(fd, o, req, arg);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct obj *o;
    if (!in_backend && !(flags & MAP_ANONYMOUS) && (o = name_get(fd)) && o->kind != OBJ_VCPU) {
        errno = ENODEV; /* /dev/kvm and VM fds have no mmap */
        return MAP_FAILED;
    }
    return NEXT(mmap)(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct obj *o;
    if (!in_backend && !(flags & MAP_ANONYMOUS) && (o = name_get(fd)) && o->kind != OBJ_VCPU) {
        errno = ENODEV;
        return MAP_FAILED;
    }
    return NEXT(mmap64)(addr, len, prot, flags, fd, off);
}

/* After a successful dup of oldfd to newfd: newfd names oldfd's object, and no longer what it named before. */
static void dup_done(int newfd, struct obj *old_o, bool replaced)
{
    if (replaced)
        name_drop(newfd);
    if (old_o) {
        if (newfd >= PRELOAD_FD_MAX) {
            NEXT(close)(newfd); /* untracked, it would be a KVM fd the library cannot see */
            return;
        }
        name_add(newfd, old_o);
    }
}

EXPORT int dup(int fd)
{
    if (in_backend)
        return NEXT(dup)(fd);
    if (is_priv(fd)) {
        errno = EBADF;
        return -1;
    }
    struct obj *o = name_get(fd);
    int r = NEXT(dup)(fd);
    if (r >= 0 && o) {
        if (r >= PRELOAD_FD_MAX) {
            NEXT(close)(r);
            errno = EMFILE;
            return -1;
        }
        name_add(r, o);
    }
    return r;
}

static int dup23(int oldfd, int newfd, int flags, bool three)
{
    if (is_priv(oldfd)) {
        errno = EBADF;
        return -1;
    }
    if (is_priv(newfd)) {
        errno = EBUSY; /* taken by the library; Linux's dup2 says EBUSY when it cannot take newfd */
        return -1;
    }
    struct obj *o = name_get(oldfd), *n = name_get(newfd);
    int r = three ? NEXT(dup3)(oldfd, newfd, flags) : NEXT(dup2)(oldfd, newfd);
    if (r < 0 || oldfd == newfd || (!o && !n))
        return r;
    dup_done(newfd, o, n != NULL);
    if (o && newfd >= PRELOAD_FD_MAX) {
        errno = EMFILE;
        return -1;
    }
    return r;
}

EXPORT int dup2(int oldfd, int newfd)
{
    return in_backend ? NEXT(dup2)(oldfd, newfd) : dup23(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    return in_backend ? NEXT(dup3)(oldfd, newfd, flags) : dup23(oldfd, newfd, flags, true);
}

static int fcntl_any(fcntl_fn *next, int fd, int cmd, unsigned long arg)
{
    if (in_backend || (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC))
        return next(fd, cmd, arg);
    if (is_priv(fd)) {
        errno = EBADF;
        return -1;
    }
    struct obj *o = name_get(fd);
    int r = next(fd, cmd, arg);
    if (r >= 0 && o) {
        if (r >= PRELOAD_FD_MAX) {
            NEXT(close)(r);
            errno = EMFILE;
            return -1;
        }
        name_add(r, o);
    }
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return fcntl_any(NEXT(fcntl), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return fcntl_any(NEXT(fcntl64), fd, cmd, arg);
}

/* close_range: the program's fds in [first, last], never the library's private ones. */
EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    if (in_backend || (flags & CLOSE_RANGE_CLOEXEC) || first > last)
        return NEXT(close_range)(first, last, flags);
    unsigned int from = first;
    unsigned int top = last < PRELOAD_FD_MAX - 1 ? last : PRELOAD_FD_MAX - 1;
    for (unsigned int fd = first; fd <= top; fd++) {
        if (is_priv((int)fd)) {
            if (fd > from && NEXT(close_range)(from, fd - 1, flags) != 0)
                return -1;
            from = fd + 1;
        }
    }
    if (from <= last && NEXT(close_range)(from, last, flags) != 0)
        return -1;
    for (unsigned int fd = first; fd <= top; fd++)
        if (name_get((int)fd))
            name_drop((int)fd);
    return 0;
}

EXPORT void closefrom(int lowfd)
{
    if (in_backend) {
        NEXT(closefrom)(lowfd);
        return;
    }
    close_range(lowfd < 0 ? 0 : (unsigned int)lowfd, ~0u, 0);
}
