/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 3.5's clocks (plat-samsung/clock.c): clk_enable() alone turned a clock
 * on, and every call took an error pointer without harm (clk_enable()
 * returned -EINVAL, clk_get_rate() 0, clk_disable() and clk_put() nothing).
 * 6.12's common clock framework needs clk_prepare() first (else a WARN and
 * -ESHUTDOWN) and oopses on an error pointer. The clocks themselves, by
 * 3.5's names and rates, are the virtual board's (../../board/clocks.c).
 *
 * clk_enable() prepares too, and clk_disable() unprepares: balanced for a
 * module that calls clk_prepare() itself as well. Like 3.5's, both may be
 * called where a module may sleep (6.12's prepare takes a mutex; 3.5's
 * clk_enable() took a spinlock, so a 3.5 module calling it with a lock held
 * gets 6.12's "sleeping function called from invalid context").
 */
#ifndef COMPAT35_CLK_H
#define COMPAT35_CLK_H

#include <linux/clk.h>
#include <linux/err.h>
#include <compat35/mark.h>

static inline int compat35_clk_enable(struct clk *clk)
{
	int ret;

	if (IS_ERR_OR_NULL(clk))
		return -EINVAL;
	ret = clk_prepare(clk);
	if (ret)
		return ret;
	ret = (clk_enable)(clk);
	if (ret)
		clk_unprepare(clk);
	return ret;
}

static inline void compat35_clk_disable(struct clk *clk)
{
	if (IS_ERR_OR_NULL(clk))
		return;
	(clk_disable)(clk);
	clk_unprepare(clk);
}

static inline int compat35_clk_prepare_enable(struct clk *clk)
{
	return IS_ERR_OR_NULL(clk) ? -EINVAL : (clk_prepare_enable)(clk);
}

static inline unsigned long compat35_clk_get_rate(struct clk *clk)
{
	return IS_ERR(clk) ? 0 : (clk_get_rate)(clk);
}

#define clk_enable(clk) ({ COMPAT35_USED_clk_prepare compat35_clk_enable(clk); })
#define clk_disable(clk) ({ COMPAT35_USED_clk_prepare compat35_clk_disable(clk); })
#define clk_prepare_enable(clk) compat35_clk_prepare_enable(clk)
#define clk_get_rate(clk) compat35_clk_get_rate(clk)

#endif
