/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 3.5's timers on kernels whose timers (4.15 on) call `fn(struct timer_list *)`
 * and have no .data field:
 *
 *   init_timer(&t); t.function = fn; t.data = d; t.expires = jiffies + HZ;
 *   add_timer(&t);                     (void fn(unsigned long data))
 *   setup_timer(&t, fn, d); mod_timer(&t, jiffies + HZ);
 *   DEFINE_TIMER(t, fn, expires, data), TIMER_INITIALIZER(fn, expires, data)
 *
 * `struct timer_list` in a module is the layer's 3.5-shaped timer
 * (struct compat35_timer_list): the kernel's timer inside (`kernel`), whose
 * `expires` is 3.5's `expires` (the same word, a union: what the module
 * sets is what the kernel arms, and mod_timer()'s value reads back), then
 * 3.5's `function(unsigned long)` and `data`. The kernel's timer calls a
 * trampoline here that calls `function(data)` as 3.5's call_timer_fn did,
 * reading both when the timer fires, so they may be set before or after
 * init_timer(), as on 3.5.
 *
 * add_timer(), mod_timer(), del_timer(_sync)(), timer_pending(), … choose by
 * the pointer's type (_Generic): the layer's timer goes to the kernel's
 * inside it; anything else (a kernel structure's own timer, e.g.
 * `del_timer_sync(&dev->timer)` of a kernel struct) to the kernel's
 * function unchanged. The newer API works on the layer's timer too:
 * timer_setup(&t, cb, flags) with `void cb(struct timer_list *)` and
 * from_timer(), for a module written for both kernels.
 *
 * Safety: the layer never converts a pointer. Its timer handed to a kernel
 * function the layer does not wrap, or a newer callback put in 3.5's
 * `.function`, is a warning that names struct compat35_timer_list, which
 * the harness makes an error.
 *
 * The renaming (compat35/timer-rename.h) is the forced header's last line.
 * A kernel header whose structures embed a struct timer_list (struct
 * delayed_work, struct input_dev, …: 86 in 6.12) must not see it, or those
 * structures would hold the layer's timer: each is read through a shadow
 * of the same name (../../shadow/, first in the include path, written by
 * scripts/timer-shadows) that suspends the renaming around the kernel's
 * header. The harness reads each unit's dependency list (kbuild's .cmd)
 * and stops a build that read one without its shadow, naming the header
 * (harness/build/src/timer_guard.rs).
 */
#ifndef COMPAT35_TIMER_H
#define COMPAT35_TIMER_H

#include <linux/timer.h>
#include <linux/stddef.h>
#include <linux/build_bug.h>
#include <compat35/mark.h>

typedef struct timer_list compat35_kernel_timer_list;
struct compat35_timer_list;
/* 3.5's callback, and the newer one (timer_setup) spelt with the layer's type. */
typedef void (*compat35_timer_fn_t)(unsigned long);
typedef void (*compat35_timer_cb_t)(struct compat35_timer_list *);

struct compat35_timer_list {
	union {
		compat35_kernel_timer_list kernel;
		struct {
			struct hlist_node compat35_entry;
			unsigned long expires;	/* the kernel's own */
		};
	};
	compat35_timer_fn_t function;
	unsigned long data;
	compat35_timer_cb_t compat35_callback;	/* set by timer_setup() only */
};
static_assert(offsetof(struct compat35_timer_list, expires) == offsetof(compat35_kernel_timer_list, expires),
	      "3.5's expires must be the kernel's");

/* 3.5's call_timer_fn: fn(data), read as the timer fires (no check: 3.5 had none). */
static void __maybe_unused compat35_timer_trampoline(compat35_kernel_timer_list *k)
{
	struct compat35_timer_list *t = container_of(k, struct compat35_timer_list, kernel);

	if (t->compat35_callback)
		t->compat35_callback(t);
	else
		t->function(t->data);
}

/* init_timer(): the kernel's timer with the trampoline; function and data untouched, as on 3.5. */
#define compat35_init_timer_flags(t, fl, init) do {				\
		struct compat35_timer_list *__compat35_t = (t);			\
		init(&__compat35_t->kernel, compat35_timer_trampoline, (fl));	\
		__compat35_t->compat35_callback = NULL;				\
	} while (0)

#define init_timer(t) \
	do { COMPAT35_USED_init_timer compat35_init_timer_flags((t), 0, __init_timer); } while (0)
#define init_timer_deferrable(t) \
	do { COMPAT35_USED_init_timer compat35_init_timer_flags((t), TIMER_DEFERRABLE, __init_timer); } while (0)
#define init_timer_on_stack(t) \
	do { COMPAT35_USED_init_timer compat35_init_timer_flags((t), 0, __init_timer_on_stack); } while (0)

#define compat35_setup_timer_flags(t, fn, d, fl, init) do {			\
		struct compat35_timer_list *__compat35_s = (t);			\
		compat35_init_timer_flags(__compat35_s, (fl), init);		\
		__compat35_s->function = (fn);					\
		__compat35_s->data = (unsigned long)(d);			\
	} while (0)

#define setup_timer(t, fn, d) \
	do { COMPAT35_USED_timer compat35_setup_timer_flags((t), (fn), (d), 0, __init_timer); } while (0)
#define setup_timer_on_stack(t, fn, d) \
	do { COMPAT35_USED_timer compat35_setup_timer_flags((t), (fn), (d), 0, __init_timer_on_stack); } while (0)
#define setup_deferrable_timer_on_stack(t, fn, d) \
	do { COMPAT35_USED_timer compat35_setup_timer_flags((t), (fn), (d), TIMER_DEFERRABLE, __init_timer_on_stack); } while (0)

/* 3.5's static forms, TIMER_INITIALIZER(fn, expires, data) and DEFINE_TIMER(name, fn, expires, data). */
#define COMPAT35_TIMER_KERNEL_INIT(_expires) {					\
		.entry = { .next = TIMER_ENTRY_STATIC },			\
		.expires = (_expires),						\
		.function = compat35_timer_trampoline,				\
		.flags = 0,							\
		__TIMER_LOCKDEP_MAP_INITIALIZER(FILE_LINE)			\
	}
#define TIMER_INITIALIZER(_function, _expires, _data) \
	{ COMPAT35_USED_init_timer .kernel = COMPAT35_TIMER_KERNEL_INIT(_expires), .function = (_function), .data = (_data) }
#define compat35_define_timer4(_name, _function, _expires, _data) \
	struct compat35_timer_list _name = TIMER_INITIALIZER(_function, _expires, _data)
/* The newer DEFINE_TIMER(name, fn), fn taking the timer. */
#define compat35_define_timer2(_name, _callback) \
	struct compat35_timer_list _name = { .kernel = COMPAT35_TIMER_KERNEL_INIT(0), .compat35_callback = (_callback) }
#define COMPAT35_PICK4(_1, _2, _3, _4, f, ...) f
#undef DEFINE_TIMER
#define DEFINE_TIMER(...) \
	COMPAT35_PICK4(__VA_ARGS__, compat35_define_timer4, unused3, compat35_define_timer2, unused1)(__VA_ARGS__)

/*
 * The newer timer_setup(t, cb, flags) on the layer's timer (cb takes the
 * timer, from_timer() finds its container); on a kernel timer, the
 * kernel's own. The lockdep key is per call, as the kernel's macro makes it.
 */
static inline void __maybe_unused compat35_timer_setup(struct compat35_timer_list *t, compat35_timer_cb_t cb,
						       unsigned int flags, const char *name, struct lock_class_key *key)
{
	init_timer_key(&t->kernel, compat35_timer_trampoline, flags, name, key);
	t->compat35_callback = cb;
	t->function = NULL;
	t->data = 0;
}

static inline void __maybe_unused compat35_kernel_timer_setup(compat35_kernel_timer_list *t,
							      void (*cb)(compat35_kernel_timer_list *),
							      unsigned int flags, const char *name,
							      struct lock_class_key *key)
{
	init_timer_key(t, cb, flags, name, key);
}

#undef timer_setup
#define timer_setup(t, cb, fl) do {							\
		static struct lock_class_key __compat35_key __maybe_unused;		\
		_Generic((t),								\
			 struct compat35_timer_list *: compat35_timer_setup,		\
			 default: compat35_kernel_timer_setup)((t), (cb), (fl),		\
			 IS_ENABLED(CONFIG_LOCKDEP) ? #t : NULL,			\
			 IS_ENABLED(CONFIG_LOCKDEP) ? &__compat35_key : NULL);		\
	} while (0)

/*
 * The calls, by the pointer's type: the layer's timer to the kernel's
 * inside it, anything else to the kernel's function as it stands.
 */
#define COMPAT35_TIMER_OP(ret, name, ...)							\
	static inline ret __maybe_unused compat35_##name(struct compat35_timer_list *t COMPAT35_TIMER_PARAMS_##name) \
	{ return (name)(&t->kernel COMPAT35_TIMER_ARGS_##name); }
#define COMPAT35_TIMER_PARAMS_add_timer
#define COMPAT35_TIMER_ARGS_add_timer
#define COMPAT35_TIMER_PARAMS_add_timer_on , int cpu
#define COMPAT35_TIMER_ARGS_add_timer_on , cpu
#define COMPAT35_TIMER_PARAMS_mod_timer , unsigned long expires
#define COMPAT35_TIMER_ARGS_mod_timer , expires
#define COMPAT35_TIMER_PARAMS_mod_timer_pending , unsigned long expires
#define COMPAT35_TIMER_ARGS_mod_timer_pending , expires
#define COMPAT35_TIMER_PARAMS_timer_reduce , unsigned long expires
#define COMPAT35_TIMER_ARGS_timer_reduce , expires
#define COMPAT35_TIMER_PARAMS_del_timer
#define COMPAT35_TIMER_ARGS_del_timer
#define COMPAT35_TIMER_PARAMS_del_timer_sync
#define COMPAT35_TIMER_ARGS_del_timer_sync
#define COMPAT35_TIMER_PARAMS_try_to_del_timer_sync
#define COMPAT35_TIMER_ARGS_try_to_del_timer_sync
#define COMPAT35_TIMER_PARAMS_timer_delete
#define COMPAT35_TIMER_ARGS_timer_delete
#define COMPAT35_TIMER_PARAMS_timer_delete_sync
#define COMPAT35_TIMER_ARGS_timer_delete_sync
#define COMPAT35_TIMER_PARAMS_timer_shutdown
#define COMPAT35_TIMER_ARGS_timer_shutdown
#define COMPAT35_TIMER_PARAMS_timer_shutdown_sync
#define COMPAT35_TIMER_ARGS_timer_shutdown_sync
#define COMPAT35_TIMER_PARAMS_destroy_timer_on_stack
#define COMPAT35_TIMER_ARGS_destroy_timer_on_stack

COMPAT35_TIMER_OP(void, add_timer)
COMPAT35_TIMER_OP(void, add_timer_on)
COMPAT35_TIMER_OP(int, mod_timer)
COMPAT35_TIMER_OP(int, mod_timer_pending)
COMPAT35_TIMER_OP(int, timer_reduce)
COMPAT35_TIMER_OP(int, del_timer)
COMPAT35_TIMER_OP(int, del_timer_sync)
COMPAT35_TIMER_OP(int, try_to_del_timer_sync)
COMPAT35_TIMER_OP(int, timer_delete)
COMPAT35_TIMER_OP(int, timer_delete_sync)
COMPAT35_TIMER_OP(int, timer_shutdown)
COMPAT35_TIMER_OP(int, timer_shutdown_sync)
COMPAT35_TIMER_OP(void, destroy_timer_on_stack)

static inline int __maybe_unused compat35_timer_pending(const struct compat35_timer_list *t)
{
	return timer_pending(&t->kernel);
}

#define COMPAT35_TIMER_PICK(name, t) \
	_Generic((t), struct compat35_timer_list *: compat35_##name, default: (name))

#define add_timer(t) COMPAT35_TIMER_PICK(add_timer, t)(t)
#define add_timer_on(t, cpu) COMPAT35_TIMER_PICK(add_timer_on, t)((t), (cpu))
#define mod_timer(t, e) COMPAT35_TIMER_PICK(mod_timer, t)((t), (e))
#define mod_timer_pending(t, e) COMPAT35_TIMER_PICK(mod_timer_pending, t)((t), (e))
#define timer_reduce(t, e) COMPAT35_TIMER_PICK(timer_reduce, t)((t), (e))
#define del_timer(t) COMPAT35_TIMER_PICK(del_timer, t)(t)
#define del_timer_sync(t) COMPAT35_TIMER_PICK(del_timer_sync, t)(t)
#define try_to_del_timer_sync(t) COMPAT35_TIMER_PICK(try_to_del_timer_sync, t)(t)
#define timer_delete(t) COMPAT35_TIMER_PICK(timer_delete, t)(t)
#define timer_delete_sync(t) COMPAT35_TIMER_PICK(timer_delete_sync, t)(t)
#define timer_shutdown(t) COMPAT35_TIMER_PICK(timer_shutdown, t)(t)
#define timer_shutdown_sync(t) COMPAT35_TIMER_PICK(timer_shutdown_sync, t)(t)
#define destroy_timer_on_stack(t) COMPAT35_TIMER_PICK(destroy_timer_on_stack, t)(t)
#define timer_pending(t)							\
	_Generic((t),								\
		 struct compat35_timer_list *: compat35_timer_pending,		\
		 const struct compat35_timer_list *: compat35_timer_pending,	\
		 default: (timer_pending))(t)

#endif /* COMPAT35_TIMER_H */
