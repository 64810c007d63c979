/*
 * For a lab's plug-in file (labs/LAB/LAB_plugin.c): MVM_LAB_DEFINE registers the
 * lab's ops when the program starts. The build compiles each plug-in file twice:
 * with MVM_LAB_REF against the reference solution (whose lab functions it renames
 * ref_*), and plainly against a student's file; and once more with
 * MVM_LAB_FALLBACK, for the weak labN_* forwarders to ref_labN_* that stand in
 * for a lab no student file provides (so lab 3's code can call lab 2's).
 */
#ifndef MINIVMM_LAB_PLUGIN_H
#define MINIVMM_LAB_PLUGIN_H

#include "lab.h"
#include "lab_parts.h"

#ifdef MVM_LAB_REF
#define MVM_LAB_IS_REF true
#else
#define MVM_LAB_IS_REF false
#endif

#ifndef MVM_LAB_FALLBACK
/* Defines and registers the lab's ops: MVM_LAB_DEFINE(1, "lab1-realmode", .exit[KVM_EXIT_IO] = ..., ...) */
#define MVM_LAB_DEFINE(number, folder, ...)                                                                            \
    static const struct mvm_lab_ops lab_ops = {                                                                        \
        .lab = (number), .name = (folder), .reference = MVM_LAB_IS_REF, __VA_ARGS__};                                  \
    __attribute__((constructor)) static void lab_ops_register(void)                                                    \
    {                                                                                                                  \
        mvm_lab_register(&lab_ops);                                                                                    \
    }
#define MVM_LAB_FORWARD(ret, name, params, args)
#else
#define MVM_LAB_DEFINE(number, folder, ...)
/* A weak labN_x that calls the reference's ref_labN_x; a student's strong labN_x replaces it. */
#define MVM_LAB_FORWARD(ret, name, params, args)                                                                       \
    ret ref_##name params;                                                                                             \
    __attribute__((weak)) ret name params                                                                              \
    {                                                                                                                  \
        return ref_##name args;                                                                                        \
    }
#endif

#endif
