/* The soft backend's exception rules: which vectors push an error code, which faults make a double fault. Pure. */
#ifndef MINIVMM_SOFT_EVENT_H
#define MINIVMM_SOFT_EVENT_H

#include <stdbool.h>

/* True when the CPU pushes an error code for exception vec (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX). */
bool soft_vector_has_error(int vec);
/*
 * True when a fault `second` raised while delivering `first` becomes a
 * double fault (SDM vol. 3, table 6-5): contributory then contributory, or a
 * page fault then a contributory fault or a page fault.
 */
bool soft_event_double_fault(int first, int second);

#endif
