/* The vCPU's system state in words: segment registers with their hidden parts, descriptor tables, CRs, EFER. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mvm.h"
#include "x86.h"

/* A code/data segment's type (S = 1) or a system segment's (S = 0), as the SDM's tables 3-1 and 3-2 name them. */
static void seg_type_name(const struct kvm_segment *s, char *buf, size_t len)
{
    static const char *const sys[16] = {
        [1] = "16-bit TSS (available)", [2] = "LDT",         [3] = "16-bit TSS (busy)",
        [9] = "TSS (available)",        [11] = "TSS (busy)", [12] = "call gate",
        [14] = "interrupt gate",        [15] = "trap gate",
    };

    if (!s->s) {
        snprintf(buf, len, "system: %s", sys[s->type & 15] ? sys[s->type & 15] : "reserved");
        return;
    }
    if (s->type & 8)
        snprintf(buf, len, "code, %s%s%s", s->type & 2 ? "execute/read" : "execute-only",
                 s->type & 4 ? ", conforming" : "", s->type & 1 ? ", accessed" : "");
    else
        snprintf(buf, len, "data, %s%s%s", s->type & 2 ? "read/write" : "read-only", s->type & 4 ? ", expand-down" : "",
                 s->type & 1 ? ", accessed" : "");
}

static size_t put(char *buf, size_t len, size_t used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static size_t put(char *buf, size_t len, size_t used, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (used >= len)
        return used;
    va_start(ap, fmt);
    n = vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    return n < 0 ? used : used + (size_t)n;
}

size_t mvm_sregs_format(const struct kvm_sregs *s, char *buf, size_t len)
{
    const struct {
        const char *name;
        const struct kvm_segment *seg;
    } segs[] = {
        {"cs", &s->cs}, {"ds", &s->ds}, {"es", &s->es}, {"fs", &s->fs},
        {"gs", &s->gs}, {"ss", &s->ss}, {"tr", &s->tr}, {"ldt", &s->ldt},
    };
    size_t used = 0;
    char type[48];

    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        const struct kvm_segment *g = segs[i].seg;

        seg_type_name(g, type, sizeof(type));
        used = put(buf, len, used,
                   "%-3s %04x base=%016llx limit=%08x type=%x (%s) s=%u dpl=%u p=%u db=%u l=%u g=%u avl=%u%s\n",
                   segs[i].name, g->selector, (unsigned long long)g->base, g->limit, g->type, type, g->s, g->dpl,
                   g->present, g->db, g->l, g->g, g->avl, g->unusable ? " unusable" : "");
    }
    used = put(buf, len, used, "gdt base=%016llx limit=%04x  idt base=%016llx limit=%04x\n",
               (unsigned long long)s->gdt.base, s->gdt.limit, (unsigned long long)s->idt.base, s->idt.limit);
    used =
        put(buf, len, used, "cr0=%08llx (%s%s%s%s) cr2=%llx cr3=%llx cr4=%llx (%s%s) efer=%llx (%s%s%s)\n",
            (unsigned long long)s->cr0, s->cr0 & X86_CR0_PE ? "PE" : "real mode", s->cr0 & X86_CR0_PG ? " PG" : "",
            s->cr0 & X86_CR0_WP ? " WP" : "", s->cr0 & X86_CR0_CD ? " CD" : "", (unsigned long long)s->cr2,
            (unsigned long long)s->cr3, (unsigned long long)s->cr4, s->cr4 & X86_CR4_PAE ? "PAE" : "no PAE",
            s->cr4 & X86_CR4_PSE ? " PSE" : "", (unsigned long long)s->efer, s->efer & X86_EFER_LME ? "LME" : "no LME",
            s->efer & X86_EFER_LMA ? " LMA" : "", s->efer & X86_EFER_NXE ? " NXE" : "");
    return used;
}
