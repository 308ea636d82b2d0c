/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `struct timer_list` in the module is the layer's 3.5-shaped timer
 * (timer.h). The last line of the forced header: every kernel header read
 * before this keeps the kernel's timer in its structures. This file
 * includes nothing, so that in a unit's dependency list (kbuild's .cmd,
 * in the order the compiler opened them) every header after it was first
 * read after the renaming; the harness checks those
 * (harness/build/src/timer_guard.rs).
 */
#ifndef COMPAT35_TIMER_RENAME_H
#define COMPAT35_TIMER_RENAME_H

#define timer_list compat35_timer_list

#endif /* COMPAT35_TIMER_RENAME_H */
