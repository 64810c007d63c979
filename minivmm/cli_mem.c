/* `minivmm run --mem-at GPA:SIZE`: RAM slots besides the one at 0 (above 4 GiB too, and large ones). */
#include "cli_mem.h"

#include <string.h>

#include "cli_files.h"

int cli_mem_at_parse(struct cli_mem_at *m, const char *arg)
{
    char gpa_text[32];
    const char *colon = strchr(arg, ':');
    uint64_t gpa, size;

    if (m->n == CLI_MEM_AT_MAX)
        return cli_usage_error("run", "--mem-at: at most %d extra slots", CLI_MEM_AT_MAX);
    if (!colon || (size_t)(colon - arg) >= sizeof(gpa_text))
        return cli_usage_error("run", "--mem-at '%s': expected GPA:SIZE, e.g. 0x100000000:64G", arg);
    memcpy(gpa_text, arg, (size_t)(colon - arg));
    gpa_text[colon - arg] = '\0';
    if (!cli_parse_size(gpa_text, &gpa, true) || !cli_parse_size(colon + 1, &size, true))
        return cli_usage_error("run", "--mem-at '%s': GPA and SIZE must be numbers (SIZE with K/M/G)", arg);
    if (size == 0 || ((gpa | size) & 0xfff) || gpa + size < gpa)
        return cli_usage_error("run", "--mem-at '%s': GPA and SIZE must be multiples of 4 KiB, SIZE non-zero, no wrap",
                               arg);
    m->gpa[m->n] = gpa;
    m->size[m->n] = size;
    m->n++;
    return 0;
}

int cli_mem_at_add(struct mvm_vm *vm, const struct cli_mem_at *m)
{
    for (int i = 0; i < m->n; i++) {
        int rc = vm_mem_add(vm, m->gpa[i], m->size[i], 0);

        if (rc < 0)
            return rc; /* vm_mem_add named the slot and why (the backend's message with it) */
    }
    return 0;
}
