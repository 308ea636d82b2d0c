/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 3.5-shaped driver structures: struct i2c_driver and struct kobj_type.
 *
 * A 3.5 tutorial defines one of these statically, with 3.5's callback
 * types and fields, and hands it to its register function (i2c_add_driver,
 * module_i2c_driver, kobject_init_and_add). Here `struct i2c_driver` and
 * `struct kobj_type` in the module name the layer's structure, laid out as
 * 3.5's, with the kernel's structure inside it (`kernel`). The register
 * function fills the kernel's from the module's and registers that; where a
 * callback's type changed, the kernel's points to a trampoline here that
 * calls the module's with 3.5's arguments.
 *
 * Safety (configs/kernel-changes.toml, compat35/README.md): each callback
 * field's type names a typedef of the layer's, so a callback of another
 * type (a newer kernel's form) gives a warning that names it, and the harness
 * stops such a build; so does the layer's structure handed where the
 * kernel's is expected (a warning naming struct compat35_…). The layer
 * never converts a pointer.
 *
 * The renaming is a macro on the structure's tag: it must come after every
 * kernel header that declares something with it (<linux/i2c.h>,
 * <linux/kobject.h>, <linux/module.h>, <linux/of.h>), which compat35.h
 * includes first.
 */
#ifndef COMPAT35_DRIVERS_H
#define COMPAT35_DRIVERS_H

#include <linux/i2c.h>
#include <linux/kobject.h>
#include <linux/of.h>
#include <linux/sysfs.h>
#include <linux/seq_file.h>
#include <linux/bug.h>
#include <compat35/mark.h>

/* ------------------------------------------------------------------ */
/* struct i2c_driver: 3.5's probe(client, id), int remove, alert(client, data). */

/*
 * The callbacks' first parameter is spelt with a typedef of the layer's:
 * the same type, so 3.5's functions fit without a word, but a function of
 * another type gets a warning that names the layer (gcc prints the
 * parameter's typedef), and the harness stops that build.
 */
typedef struct i2c_client compat35_i2c_client;
typedef struct i2c_adapter compat35_i2c_adapter;
typedef struct i2c_driver compat35_kernel_i2c_driver;
typedef int (*compat35_i2c_probe_t)(compat35_i2c_client *, const struct i2c_device_id *);
typedef int (*compat35_i2c_remove_t)(compat35_i2c_client *);
typedef void (*compat35_i2c_shutdown_t)(compat35_i2c_client *);
typedef int (*compat35_i2c_suspend_t)(compat35_i2c_client *, pm_message_t);
typedef int (*compat35_i2c_resume_t)(compat35_i2c_client *);
typedef void (*compat35_i2c_alert_t)(compat35_i2c_client *, unsigned int);
typedef int (*compat35_i2c_command_t)(compat35_i2c_client *, unsigned int, void *);
typedef int (*compat35_i2c_detect_t)(compat35_i2c_client *, struct i2c_board_info *);
typedef int (*compat35_i2c_adapter_t)(compat35_i2c_adapter *);

/* 3.5's include/linux/i2c.h, field for field, then the kernel's. */
struct compat35_i2c_driver {
	unsigned int class;
	compat35_i2c_adapter_t attach_adapter;	/* deprecated on 3.5; never called here */
	compat35_i2c_adapter_t detach_adapter;
	compat35_i2c_probe_t probe;
	compat35_i2c_remove_t remove;
	compat35_i2c_shutdown_t shutdown;
	compat35_i2c_suspend_t suspend;		/* legacy PM: the kernel has no such call */
	compat35_i2c_resume_t resume;
	compat35_i2c_alert_t alert;
	compat35_i2c_command_t command;
	struct device_driver driver;
	const struct i2c_device_id *id_table;
	compat35_i2c_detect_t detect;
	const unsigned short *address_list;
	struct list_head clients;
	compat35_kernel_i2c_driver kernel;
};

static inline struct compat35_i2c_driver *compat35_i2c_of(struct device_driver *drv)
{
	return container_of(container_of(drv, compat35_kernel_i2c_driver, driver), struct compat35_i2c_driver, kernel);
}

/* 3.5's i2c_device_probe: the id is the driver's table's entry for the client. */
static int __maybe_unused compat35_i2c_probe(struct i2c_client *client)
{
	struct compat35_i2c_driver *d = compat35_i2c_of(client->dev.driver);

	return d->probe(client, i2c_match_id(d->kernel.id_table, client));
}

/* 3.5's i2c_device_remove returned the int, which the driver core ignored. */
static void __maybe_unused compat35_i2c_remove(struct i2c_client *client)
{
	struct compat35_i2c_driver *d = compat35_i2c_of(client->dev.driver);

	(void)d->remove(client);
}

/* 3.5's alert had no protocol: it was the SMBus alert's. */
static void __maybe_unused compat35_i2c_alert(struct i2c_client *client, enum i2c_alert_protocol protocol,
					      unsigned int data)
{
	struct compat35_i2c_driver *d = compat35_i2c_of(client->dev.driver);

	if (protocol == I2C_PROTOCOL_SMBUS_ALERT)
		d->alert(client, data);
}

static inline int compat35_i2c_register_driver(struct module *owner, struct compat35_i2c_driver *d)
{
	compat35_kernel_i2c_driver *k = &d->kernel;

	k->class = d->class;
	k->probe = d->probe ? compat35_i2c_probe : NULL;
	k->remove = d->remove ? compat35_i2c_remove : NULL;
	k->shutdown = d->shutdown;
	k->alert = d->alert ? compat35_i2c_alert : NULL;
	k->command = d->command;
	k->driver = d->driver;
	k->id_table = d->id_table;
	k->detect = d->detect;
	k->address_list = d->address_list;
	return i2c_register_driver(owner, k);
}

#define i2c_driver compat35_i2c_driver
#undef i2c_add_driver
#define i2c_add_driver(d) ({ COMPAT35_USED_i2c_probe_id compat35_i2c_register_driver(THIS_MODULE, (d)); })
#define i2c_register_driver(owner, d) compat35_i2c_register_driver((owner), (d))
#define i2c_del_driver(d) (i2c_del_driver)(&(d)->kernel)
#undef to_i2c_driver
#define to_i2c_driver(drv) compat35_i2c_of(drv)

/* ------------------------------------------------------------------ */
/* struct kobj_type: 3.5's .default_attrs, as a group the kernel makes. */

typedef struct kobj_type compat35_kernel_kobj_type;
typedef struct kobject compat35_kobject;
typedef void (*compat35_kobj_release_t)(compat35_kobject *);

struct compat35_kobj_type {
	compat35_kobj_release_t release;
	const struct sysfs_ops *sysfs_ops;
	struct attribute **default_attrs;
	/* 4.20's, so that a module written for both kernels builds too. */
	const struct attribute_group **default_groups;
	compat35_kernel_kobj_type kernel;
	struct attribute_group group;
	const struct attribute_group *groups[2];
	bool ready;
};

/*
 * The kernel's kobj_type, filled from the module's at its first use:
 * 3.5 created default_attrs' files when a kobject was added and removed
 * them when it was deleted; a default group does exactly that now.
 */
static inline const compat35_kernel_kobj_type *compat35_kobj_type(struct compat35_kobj_type *t)
{
	if (!t)
		return NULL;
	if (!READ_ONCE(t->ready)) {
		t->kernel.release = t->release;
		t->kernel.sysfs_ops = t->sysfs_ops;
		WARN(t->default_attrs && t->default_groups,
		     "compat35: a kobj_type with both default_attrs and default_groups: the groups are left out\n");
		if (t->default_attrs) {
			t->group.attrs = t->default_attrs;
			t->groups[0] = &t->group;
			t->kernel.default_groups = t->groups;
		} else {
			t->kernel.default_groups = t->default_groups;
		}
		WRITE_ONCE(t->ready, true);
	}
	return &t->kernel;
}

#define kobj_type compat35_kobj_type
#define kobject_init(kobj, t) kobject_init((kobj), compat35_kobj_type(t))
#define kobject_init_and_add(kobj, t, parent, ...) kobject_init_and_add((kobj), compat35_kobj_type(t), (parent), __VA_ARGS__)
/* Marked where the module names the field, 3.5's API (default_groups is not). */
#define default_attrs COMPAT35_USED_kobj_default_attrs default_attrs

/* ------------------------------------------------------------------ */
/*
 * seq_printf() returned int on 3.5 (-1 when the buffer overflowed, else 0)
 * and returns void since 4.3. The value comes from seq_has_overflowed()
 * after the call. It is marked only where the module uses it: the helper
 * is pure, so a call whose value is dropped is removed before GCC checks
 * its `warning` attribute.
 */
static noinline __pure __maybe_unused int __attribute__((warning("linux-3.5 API: seq_printf-int")))
compat35_seq_printf_ret(struct seq_file *m)
{
	return seq_has_overflowed(m) ? -1 : 0;
}
#define seq_printf(m, ...) \
	({ struct seq_file *compat35_m = (m); (seq_printf)(compat35_m, __VA_ARGS__); compat35_seq_printf_ret(compat35_m); })

#endif /* COMPAT35_DRIVERS_H */
