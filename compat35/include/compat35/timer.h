/* SPDX-License-Identifier: GPL-2.0 */
/*
 * setup_timer(timer, fn, data) with 3.5's `void fn(unsigned long data)`,
 * on kernels whose timers (4.15 on) call `fn(struct timer_list *)` and
 * have no .data field.
 *
 * The timer is set up with timer_setup() and a trampoline; the trampoline
 * finds the 3.5 callback and its data in a table keyed by the timer's
 * address. The table is static, one per compilation unit, so it needs no
 * allocation (nothing for kmemleak to count against the module) and goes
 * away with the module. Setting the same timer up again replaces its entry,
 * as on 3.5. A unit that sets up more than COMPAT35_TIMERS distinct timers
 * gets a WARN (a kernel report the harness shows) and the timer is not set
 * up, rather than a callback with someone else's data.
 *
 * Not covered: the field form, `init_timer(&t); t.function = fn;
 * t.data = d;`. struct timer_list has no .data any more and its .function
 * takes a different argument; a macro cannot give a struct a field back,
 * and changing the struct would change every kernel structure that embeds
 * a timer. Such a module keeps the explanation (configs/kernel-changes.toml).
 */
#ifndef COMPAT35_TIMER_H
#define COMPAT35_TIMER_H

#include <linux/timer.h>
#include <linux/spinlock.h>
#include <linux/bug.h>

#define COMPAT35_TIMERS 64

struct compat35_timer_slot {
	struct timer_list *timer;
	void (*fn)(unsigned long);
	unsigned long data;
};

static struct compat35_timer_slot compat35_timer_slots[COMPAT35_TIMERS] __maybe_unused;
static __maybe_unused DEFINE_SPINLOCK(compat35_timer_lock);

static void __maybe_unused compat35_timer_trampoline(struct timer_list *t)
{
	void (*fn)(unsigned long) = NULL;
	unsigned long data = 0, flags;
	int i;

	spin_lock_irqsave(&compat35_timer_lock, flags);
	for (i = 0; i < COMPAT35_TIMERS; i++) {
		if (compat35_timer_slots[i].timer == t) {
			fn = compat35_timer_slots[i].fn;
			data = compat35_timer_slots[i].data;
			break;
		}
	}
	spin_unlock_irqrestore(&compat35_timer_lock, flags);
	if (fn)
		fn(data);
}

static inline void __maybe_unused compat35_setup_timer(struct timer_list *t, void (*fn)(unsigned long), unsigned long data)
{
	unsigned long flags;
	int i, free = -1;

	spin_lock_irqsave(&compat35_timer_lock, flags);
	for (i = 0; i < COMPAT35_TIMERS; i++) {
		if (compat35_timer_slots[i].timer == t)
			break;
		if (free < 0 && !compat35_timer_slots[i].timer)
			free = i;
	}
	if (i == COMPAT35_TIMERS)
		i = free;
	if (i >= 0) {
		compat35_timer_slots[i].timer = t;
		compat35_timer_slots[i].fn = fn;
		compat35_timer_slots[i].data = data;
	}
	spin_unlock_irqrestore(&compat35_timer_lock, flags);
	if (WARN(i < 0, "compat35: more than %d timers set up with setup_timer() in %s; timer %p is not set up\n",
		 COMPAT35_TIMERS, __FILE__, t))
		return;
	timer_setup(t, compat35_timer_trampoline, 0);
}

#define setup_timer(t, fn, data) \
	({ COMPAT35_USED_timer compat35_setup_timer((t), (fn), (unsigned long)(data)); })

#endif /* COMPAT35_TIMER_H */
