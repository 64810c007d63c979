/* The core's error channel: a thread-local one-line message beside each -errno. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "mvm.h"

static _Thread_local char last_error[256];

const char *mvm_error(void)
{
    return last_error[0] ? last_error : "no error";
}

int mvm_fail(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return -err;
}
