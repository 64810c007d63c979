/* The lab registry: labs register their ops; each new VM takes the composition (student over reference). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core_internal.h"
#include "kvm_api.h"
#include "lab.h"

#define MAX_LABS 32

static const struct mvm_lab_ops *labs[MAX_LABS];
static int nlabs;

int mvm_lab_register(const struct mvm_lab_ops *ops)
{
    if (!ops || ops->lab <= 0 || !ops->name)
        return mvm_fail(EINVAL, "mvm_lab_register: a lab needs a number > 0 and a name");
    for (int i = 0; i < nlabs; i++) {
        if (labs[i]->lab == ops->lab && labs[i]->reference == ops->reference) {
            labs[i] = ops;
            return 0;
        }
    }
    if (nlabs == MAX_LABS)
        return mvm_fail(ENOSPC, "mvm_lab_register: more than %d lab versions", MAX_LABS);
    labs[nlabs++] = ops;
    return 0;
}

const struct mvm_lab_ops *mvm_lab_get(int lab)
{
    const struct mvm_lab_ops *ref = NULL;

    for (int i = 0; i < nlabs; i++) {
        if (labs[i]->lab != lab)
            continue;
        if (!labs[i]->reference)
            return labs[i];
        ref = labs[i];
    }
    return ref;
}

#define TAKE(member)                                                                                                   \
    do {                                                                                                               \
        if (l->member)                                                                                                 \
            out->member = l->member;                                                                                   \
    } while (0)

/* The part under test (mvm_lab_part): lab, byte range in struct mvm_lab_ops; lab 0 when none. */
static struct {
    int lab;
    size_t offset, size;
} part;

int mvm_lab_part(int lab, size_t offset, size_t size)
{
    if (lab < 0 || offset > sizeof(struct mvm_lab_ops) || size > sizeof(struct mvm_lab_ops) - offset ||
        (lab > 0 && size == 0))
        return mvm_fail(EINVAL, "mvm_lab_part: lab %d, bytes %zu+%zu of struct mvm_lab_ops", lab, offset, size);
    part.lab = lab;
    part.offset = offset;
    part.size = size;
    return 0;
}

/* The reference's version of lab n, NULL if none. */
static const struct mvm_lab_ops *lab_reference(int n)
{
    for (int i = 0; i < nlabs; i++)
        if (labs[i]->lab == n && labs[i]->reference)
            return labs[i];
    return NULL;
}

/* Lab n as mvm_lab_part wants it: the kit's version (reference, core KVM calls) with the one member under test. */
static const struct mvm_lab_ops *lab_with_part(int n, struct mvm_lab_ops *buf)
{
    const struct mvm_lab_ops *mine = mvm_lab_get(n), *ref = lab_reference(n);

    if (part.lab != n || !mine)
        return mine;
    *buf = ref ? *ref : *mine;
    memset(&buf->kvm, 0, sizeof(buf->kvm));
    memcpy((char *)buf + part.offset, (const char *)mine + part.offset, part.size);
    return buf;
}

void mvm_labs_compose(struct mvm_lab_ops *out)
{
    int max = 0;

    memset(out, 0, sizeof(*out));
    out->name = "composed";
    for (int i = 0; i < nlabs; i++)
        if (labs[i]->lab > max)
            max = labs[i]->lab;
    /* Lab by lab in ascending order, so a later lab overrides what an earlier one provides. */
    for (int n = 1; n <= max; n++) {
        struct mvm_lab_ops buf;
        const struct mvm_lab_ops *l = lab_with_part(n, &buf);

        if (!l)
            continue;
        /* A lab with its own exit switch calls its handlers itself: its table entries are not the core's. */
        for (int r = 0; r < MVM_EXIT_REASONS && !l->kvm.exit_switch; r++)
            TAKE(exit[r]);
        TAKE(kvm.vm_open);
        TAKE(kvm.mem_region_set);
        TAKE(kvm.vcpu_open);
        TAKE(kvm.vcpu_enter);
        TAKE(kvm.exit_switch);
        for (int m = 0; m < MVM_MODES; m++)
            TAKE(vcpu_setup[m]);
        TAKE(gva_to_gpa);
        TAKE(cpuid_adjust);
        /* vm_init hooks add up rather than override: each lab brings its own devices. */
    }
}

void mvm_labs_describe(char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int n = 1; n < 100 && used < len; n++) {
        const struct mvm_lab_ops *l = mvm_lab_get(n);

        if (l)
            used += (size_t)snprintf(buf + used, len - used, "%s%s: %s", used ? ", " : "", l->name,
                                     l->reference ? "reference" : "yours");
    }
}

int mvm_labs_vm_init(struct mvm_vm *vm)
{
    for (int n = 1; n < 100; n++) {
        const struct mvm_lab_ops *l = mvm_lab_get(n);
        int rc = l && l->vm_init ? l->vm_init(vm) : 0;

        if (rc < 0)
            return rc;
    }
    return 0;
}

const struct mvm_lab_ops *vm_lab_ops(const struct mvm_vm *vm)
{
    return &vm->lab;
}

static const char *const mode_names[MVM_MODES] = {
    [MVM_MODE_REAL] = "real",
    [MVM_MODE_PROTECTED] = "protected",
    [MVM_MODE_LONG] = "long",
};

const char *mvm_mode_name(enum mvm_mode mode)
{
    return (unsigned)mode < MVM_MODES ? mode_names[mode] : "unknown";
}

int vcpu_setup_mode(struct mvm_vcpu *vcpu, enum mvm_mode mode, uint64_t entry)
{
    if ((unsigned)mode >= MVM_MODES)
        return mvm_fail(EINVAL, "vcpu_setup_mode: no mode %d", (int)mode);
    if (!vcpu->vm->lab.vcpu_setup[mode])
        return mvm_fail(ENOSYS, "no lab provides the %s-mode vCPU set-up (is the lab that teaches it linked in?)",
                        mode_names[mode]);
    {
        const struct mvm_backend *old = mvm_kvm_api_bind(vcpu->vm->be);
        int rc = vcpu->vm->lab.vcpu_setup[mode](vcpu, entry);

        mvm_kvm_api_bind(old);
        return rc;
    }
}
