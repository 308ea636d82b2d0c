/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Linux 3.5 module API on newer kernels (6.12 here).
 *
 * Forced into every compilation unit of a module built with `--api 3.5`
 * (kbuild's `-include`, see ../../kbuild.mk), before the module's own
 * first line. It gives back what a module written for the Tiny4412's 3.5
 * kernel used and the newer kernel lacks, with 3.5's meaning, and marks
 * each use as a warning (mark.h) so that the harness can list what a port
 * must change.
 *
 * What it does not cover, and why, is in configs/kernel-changes.toml
 * (`covered = false`) and in ../../docs/api-3.5.md.
 *
 * Everything here is static inline or a macro: a module built with the
 * layer needs no other module loaded, in QEMU or on a board.
 */
#ifndef COMPAT35_H
#define COMPAT35_H

#include <compat35/mark.h>

/*
 * 1. Headers that 3.5 pulled in through others, which 6.12 no longer does:
 *    a module that called kmalloc() after only <linux/module.h>, used
 *    `current->comm` after <linux/init.h>, called copy_to_user() after
 *    <asm/uaccess.h> or signal_pending() after <linux/sched.h> built on
 *    3.5. The definitions are the kernel's own; nothing is redefined.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>	/* signal_pending(): <linux/sched.h> until 4.11 */
#include <linux/uaccess.h>		/* copy_*_user(): <asm/uaccess.h> until 4.12 */
#include <linux/atomic.h>		/* <asm/atomic.h> on 3.5 */
#include <linux/fs.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/platform_device.h>
#include <linux/mod_devicetable.h>	/* struct platform_device_id: via <linux/platform_device.h> until 3.x */
#include <linux/interrupt.h>
#include <linux/jiffies.h>
#include <linux/timer.h>
#include <linux/delay.h>
#include <linux/wait.h>
#include <linux/io.h>
#include <linux/gpio.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/ktime.h>
#include <linux/timekeeping.h>
#include <linux/spinlock.h>
#include <linux/list.h>
#include <linux/string.h>
#include <linux/err.h>

/*
 * 2. __devinit and friends: no-ops since 3.8 (CONFIG_HOTPLUG always on).
 *    On 3.5 with hotplug on, which the Tiny4412's config has, they were
 *    no-ops too, so this is 3.5's meaning exactly.
 */
#define __devinit        COMPAT35_USED_devinit
#define __devinitdata    COMPAT35_USED_devinit
#define __devinitconst   COMPAT35_USED_devinit
#define __devexit        COMPAT35_USED_devinit
#define __devexitdata    COMPAT35_USED_devinit
#define __devexitconst   COMPAT35_USED_devinit
#define __devexit_p(x)   COMPAT35_USED_devinit x

/*
 * 3. ioremap_nocache(): removed in 5.6. On ARM it always was ioremap()
 *    (device memory, uncached), on 3.5 as now.
 */
#define ioremap_nocache(phys, size) ({ COMPAT35_USED_ioremap_nocache ioremap((phys), (size)); })

/*
 * 4. class_create(owner, name): the owner went in 6.4, unused since 3.x
 *    (the class's module reference came from the driver core). Both forms
 *    compile in one build: the macro picks by the number of arguments, and
 *    the one-argument form is the kernel's own function, unmarked.
 */
#define COMPAT35_PICK2(_1, _2, f, ...) f
#define class_create(...) COMPAT35_PICK2(__VA_ARGS__, compat35_class_create2, compat35_class_create1)(__VA_ARGS__)
#define compat35_class_create1(name) (class_create)(name)
#define compat35_class_create2(owner, name) ({ COMPAT35_USED_class_create (void)(owner); (class_create)(name); })

/*
 * 5. Time: struct timeval and do_gettimeofday() (removed in 5.0), struct
 *    timespec, getnstimeofday() and current_kernel_time() (removed in 5.6
 *    and 4.20). On 3.5's 32-bit ARM the fields are longs (time_t is long),
 *    as here; the clocks are the same: do_gettimeofday() and
 *    getnstimeofday() read CLOCK_REALTIME, current_kernel_time() its
 *    coarse (tick-resolution) value. Like 3.5's, the seconds run out in
 *    2038.
 */
struct compat35_timeval {
	__kernel_old_time_t tv_sec;
	__kernel_suseconds_t tv_usec;
};
struct compat35_timespec {
	__kernel_old_time_t tv_sec;
	long tv_nsec;
};

static inline void compat35_do_gettimeofday(struct compat35_timeval *tv)
{
	struct timespec64 now;

	ktime_get_real_ts64(&now);
	tv->tv_sec = (__kernel_old_time_t)now.tv_sec;
	tv->tv_usec = now.tv_nsec / NSEC_PER_USEC;
}

static inline void compat35_getnstimeofday(struct compat35_timespec *ts)
{
	struct timespec64 now;

	ktime_get_real_ts64(&now);
	ts->tv_sec = (__kernel_old_time_t)now.tv_sec;
	ts->tv_nsec = now.tv_nsec;
}

static inline struct compat35_timespec compat35_current_kernel_time(void)
{
	struct timespec64 now;
	struct compat35_timespec ts;

	ktime_get_coarse_real_ts64(&now);
	ts.tv_sec = (__kernel_old_time_t)now.tv_sec;
	ts.tv_nsec = now.tv_nsec;
	return ts;
}

/* `struct timeval` in the module names the layer's type; the mark names the line. */
#define timeval COMPAT35_USED_do_gettimeofday compat35_timeval
#define timespec COMPAT35_USED_timespec compat35_timespec
#define do_gettimeofday(tv) ({ COMPAT35_USED_do_gettimeofday compat35_do_gettimeofday(tv); })
#define getnstimeofday(ts) ({ COMPAT35_USED_timespec compat35_getnstimeofday(ts); })
#define current_kernel_time() ({ COMPAT35_USED_timespec compat35_current_kernel_time(); })
#define timeval_to_ns(tv) ((s64)(tv)->tv_sec * NSEC_PER_SEC + (tv)->tv_usec * NSEC_PER_USEC)
#define timespec_to_ns(ts) ((s64)(ts)->tv_sec * NSEC_PER_SEC + (ts)->tv_nsec)

/*
 * 6. Interrupt flags: IRQF_DISABLED (a no-op since 2.6.35, removed in 4.1)
 *    and IRQF_SAMPLE_RANDOM (removed in 3.6: every interrupt feeds the
 *    entropy pool now). Their values are 3.5's, which a module may print
 *    or compare (IRQF_DISABLED | IRQF_SAMPLE_RANDOM | IRQF_SHARED is 0xe0
 *    on the board); 6.12 gives bits 5 and 6 no meaning (IRQF_TRIGGER_PROBE
 *    is 0x10, IRQF_SHARED 0x80), so request_irq() ignores them, as 3.5 did.
 */
#define IRQF_DISABLED (COMPAT35_USED_irqf_disabled 0x00000020)
#define IRQF_SAMPLE_RANDOM (COMPAT35_USED_irqf_disabled 0x00000040)

/*
 * 7. access_ok(VERIFY_READ or VERIFY_WRITE, addr, size): the type went in
 *    5.0; on ARM it never changed the check (3.5's __range_ok ignored it).
 *    Both forms compile, by the number of arguments.
 */
#define VERIFY_READ 0
#define VERIFY_WRITE 1
#define COMPAT35_PICK3(_1, _2, _3, f, ...) f
#define compat35_access_ok2(addr, size) likely(__access_ok(addr, size))
#define compat35_access_ok3(type, addr, size) ({ COMPAT35_USED_access_ok_type (void)(type); likely(__access_ok(addr, size)); })
/* The kernel's own definition (asm-generic/access_ok.h), by either name. */
#undef access_ok
#define access_ok(...) COMPAT35_PICK3(__VA_ARGS__, compat35_access_ok3, compat35_access_ok2, unused)(__VA_ARGS__)

/*
 * 8. DECLARE_TASKLET(name, func, data) with void func(unsigned long): the
 *    name now takes a callback of struct tasklet_struct * and no data (5.9).
 *    The kernel still runs a tasklet's .func with .data when .use_callback
 *    is false (tasklet_action_common), so the three-argument form is 3.5's
 *    tasklet exactly; the two-argument form is the kernel's own.
 */
#define compat35_declare_tasklet3(name, _func, _data) \
	COMPAT35_USED_declare_tasklet struct tasklet_struct name = { .count = ATOMIC_INIT(0), .func = _func, .data = _data }
#define compat35_declare_tasklet_disabled3(name, _func, _data) \
	COMPAT35_USED_declare_tasklet struct tasklet_struct name = { .count = ATOMIC_INIT(1), .func = _func, .data = _data }
#define compat35_declare_tasklet2(name, cb) \
	struct tasklet_struct name = { .count = ATOMIC_INIT(0), .callback = cb, .use_callback = true }
#define compat35_declare_tasklet_disabled2(name, cb) \
	struct tasklet_struct name = { .count = ATOMIC_INIT(1), .callback = cb, .use_callback = true }
#undef DECLARE_TASKLET
#undef DECLARE_TASKLET_DISABLED
#define DECLARE_TASKLET(...) COMPAT35_PICK3(__VA_ARGS__, compat35_declare_tasklet3, compat35_declare_tasklet2, unused)(__VA_ARGS__)
#define DECLARE_TASKLET_DISABLED(...) \
	COMPAT35_PICK3(__VA_ARGS__, compat35_declare_tasklet_disabled3, compat35_declare_tasklet_disabled2, unused)(__VA_ARGS__)

/*
 * 9. interruptible_sleep_on(), sleep_on() and their _timeout forms (removed
 *    in 3.15 for their race: a wake-up between the caller's test and the
 *    sleep is lost). Given back with the same race, as 3.5 had them
 *    (kernel/sched/core.c sleep_on_common): on the queue, one schedule().
 */
static inline long compat35_sleep_on_common(wait_queue_head_t *q, int state, long timeout)
{
	DEFINE_WAIT(wait);

	prepare_to_wait(q, &wait, state);
	timeout = schedule_timeout(timeout);
	finish_wait(q, &wait);
	return timeout;
}
#define interruptible_sleep_on(q) \
	({ COMPAT35_USED_sleep_on (void)compat35_sleep_on_common((q), TASK_INTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT); })
#define interruptible_sleep_on_timeout(q, t) \
	({ COMPAT35_USED_sleep_on compat35_sleep_on_common((q), TASK_INTERRUPTIBLE, (t)); })
#define sleep_on(q) ({ COMPAT35_USED_sleep_on (void)compat35_sleep_on_common((q), TASK_UNINTERRUPTIBLE, MAX_SCHEDULE_TIMEOUT); })
#define sleep_on_timeout(q, t) ({ COMPAT35_USED_sleep_on compat35_sleep_on_common((q), TASK_UNINTERRUPTIBLE, (t)); })

/*
 * 10. file->f_dentry and file->f_vfsmnt: 3.5's <linux/fs.h> defined them as
 *     f_path.dentry and f_path.mnt (removed in 3.19); the same macros here.
 */
#define f_dentry COMPAT35_USED_f_dentry f_path.dentry
#define f_vfsmnt COMPAT35_USED_f_dentry f_path.mnt

/*
 * 11. no_llseek (removed in 6.12): a NULL .llseek now gives -ESPIPE, which
 *     is what no_llseek returned.
 */
#define no_llseek (COMPAT35_USED_no_llseek NULL)

/*
 * 12. ACCESS_ONCE() (removed in 4.15; READ_ONCE/WRITE_ONCE since 3.19):
 *     3.5's definition, a volatile access, works as an lvalue too.
 */
#define ACCESS_ONCE(x) (COMPAT35_USED_access_once (*(volatile typeof(x) *)&(x)))

/*
 * 13. GFP_TEMPORARY (removed in 4.14): 3.5's meaning, a reclaimable
 *     GFP_KERNEL allocation.
 */
#define GFP_TEMPORARY (COMPAT35_USED_gfp_temporary (GFP_KERNEL | __GFP_RECLAIMABLE))

/*
 * 14. The virtual board (../../board/): in the QEMU guest, the Tiny4412's
 *     GPIO banks, ADC and watchdog are a module's copy of their registers.
 *     ioremap() of a range within them maps that copy when the model is
 *     loaded, and the real registers otherwise (a board). Not a 3.5 API
 *     change, so not marked. symbol_get() keeps this header's promise: a
 *     module built with it needs no other module loaded. (symbol_get finds
 *     GPL symbols for GPL modules only, as the board's tutorials are.)
 */
void __iomem *tiny4412_board_ioremap(phys_addr_t phys, size_t size);
bool tiny4412_board_iounmap(volatile void __iomem *addr);

static inline void __iomem *compat35_ioremap(phys_addr_t phys, size_t size)
{
	void __iomem *(*model)(phys_addr_t, size_t) = symbol_get(tiny4412_board_ioremap);
	void __iomem *p = NULL;

	if (model) {
		p = model(phys, size);
		symbol_put(tiny4412_board_ioremap);
	}
	return p ? p : ioremap(phys, size);
}

static inline void compat35_iounmap(volatile void __iomem *addr)
{
	bool (*model)(volatile void __iomem *) = symbol_get(tiny4412_board_iounmap);
	bool ours = false;

	if (model) {
		ours = model(addr);
		symbol_put(tiny4412_board_iounmap);
	}
	if (!ours)
		iounmap(addr);
}
#undef ioremap
#define ioremap(phys, size) compat35_ioremap((phys), (size))
#undef iounmap
#define iounmap(addr) compat35_iounmap(addr)

/*
 * 15. What 3.5's ARM headers included for the module: <linux/gpio.h>
 *     brought <mach/gpio.h> (asm/gpio.h), and <linux/interrupt.h> brought
 *     <mach/irqs.h> (asm/hardirq.h, asm/irq.h), so a lesson used
 *     EXYNOS4_GPX3(2) or IRQ_EINT(26) after only those. Both are included
 *     here without their mark (the port list cannot name a module that
 *     needed them; a module that includes them itself is marked there).
 */
#define COMPAT35_IMPLICIT
#include <mach/gpio.h>
#include <mach/irqs.h>
#undef COMPAT35_IMPLICIT

/*
 * 16. strict_strtoul() and friends: on 3.5 (include/linux/kernel.h) they
 *     were kstrtoul() and friends by another name; gone in 3.18.
 */
#define strict_strtoul(s, base, res)  ({ COMPAT35_USED_strict_strtoul kstrtoul((s), (base), (res)); })
#define strict_strtol(s, base, res)   ({ COMPAT35_USED_strict_strtoul kstrtol((s), (base), (res)); })
#define strict_strtoull(s, base, res) ({ COMPAT35_USED_strict_strtoul kstrtoull((s), (base), (res)); })
#define strict_strtoll(s, base, res)  ({ COMPAT35_USED_strict_strtoul kstrtoll((s), (base), (res)); })

#include <compat35/vm_flags.h>

#include <compat35/timer.h>
#include <compat35/proc.h>
#include <compat35/drivers.h>
#include <compat35/hardware.h>

/* Last: no kernel header may be read after it before the module's own lines. */
#include <compat35/timer-rename.h>

#endif /* COMPAT35_H */
