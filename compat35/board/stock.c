// SPDX-License-Identifier: GPL-2.0
/*
 * The stock image's drivers, on the virtual Tiny4412 (part of the
 * tiny4412_board module; Kbuild links it in). FriendlyARM's Linux 3.5
 * image builds its own drivers in (tiny4412_linux_defconfig), and they
 * hold some of the board's pins and interrupts: a module that asks for
 * one there gets -EBUSY. The facts, and the harness's copy of them, are
 * in configs/stock-image.toml (a unit test holds this table to it).
 *
 * Two things, both through the board's hooks in tiny4412_board.c:
 * - always: a module's request of a pin or an interrupt a stock driver
 *   holds is a change (`LED1 requested`, `XEINT26 requested`), which the
 *   harness turns into the verdict's note: what the image would do;
 * - "stock on" in the control file (the harness writes it for an
 *   expectations file's `[board] stock-drivers = true`; the emulated
 *   FriendlyARM board at its boot): the model holds them as the image's
 *   drivers do, so gpio_request and request_irq fail with -EBUSY here as
 *   there (`LED1 refused`), and registers their /dev names. "stock off"
 *   lets them go.
 *
 * A held pin or ADC interrupt is refused by the chip's request hook
 * (gpiolib and the IRQ core undo the request and return its -EBUSY)
 * rather than requested by the model: so the model sees each refusal and
 * the verdict names it. The difference from the image: debugfs and sysfs
 * show the pins free. The buttons' interrupts are requested for real,
 * as the stock driver does, while /dev/buttons is open.
 *
 * And, stock drivers off or on: a module whose init leaves a misc device
 * under one of their /dev names is a change (`/dev/buttons registered`),
 * since on the image its misc_register fails (3.5's device_create meets
 * the stock driver's sysfs entry: -EEXIST, after a `sysfs: cannot create
 * duplicate filename` dump). With them on, the module's own registration
 * fails here too, so nothing is said.
 *
 * What the drivers do once opened is not modelled, save /dev/leds's
 * ioctl (cmd 1 lights LED arg, 0 puts it out) and /dev/buttons's open,
 * which takes K1-K4's interrupts as the stock driver's open does.
 */
#include <linux/module.h>
#include <linux/gpio.h>
#include <linux/gpio/driver.h>
#include <linux/interrupt.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/namei.h>
#include <mach/gpio.h>
#include <mach/irqs.h>
#include "stock.h"

/* A pin a stock driver requests at its init and keeps. */
struct stock_pin {
	const char *part;
	unsigned int gpio;
	const char *label;
	const char *driver;
};

static const struct stock_pin pins[] = {
	{ "LED1", EXYNOS4X12_GPM4(0), "LED", "leds" },
	{ "LED2", EXYNOS4X12_GPM4(1), "LED", "leds" },
	{ "LED3", EXYNOS4X12_GPM4(2), "LED", "leds" },
	{ "LED4", EXYNOS4X12_GPM4(3), "LED", "leds" },
	{ "BUZZER", EXYNOS4_GPD0(0), "pwm", "pwm" },
};

/* The buttons' interrupts (XEINT26..29, K1-K4 on GPX3_2..5), held while
 * /dev/buttons is open, each named as the stock driver names it. */
struct stock_eint {
	const char *part;
	unsigned int eint;
	unsigned int gpio;
	const char *label;
};

static const struct stock_eint eints[] = {
	{ "XEINT26", 26, EXYNOS4_GPX3(2), "KEY0" },
	{ "XEINT27", 27, EXYNOS4_GPX3(3), "KEY1" },
	{ "XEINT28", 28, EXYNOS4_GPX3(4), "KEY2" },
	{ "XEINT29", 29, EXYNOS4_GPX3(5), "KEY3" },
};

/* The ADC's interrupt, held from boot by the Samsung ADC core (under
 * this name on the image). */
#define ADC_LABEL "samsung-adc-v4"

static bool on;
/* The model's own requests, which are no module's. */
static bool taking;
static DEFINE_MUTEX(buttons_lock);
static int buttons_open;

/* --- what a module asks for ---------------------------------------------- */

/* A module's request of what a stock driver holds: noted, and refused
 * when the stock drivers are on. */
static int asked(const char *part, const char *holder)
{
	board_change(part, on ? "refused" : "requested");
	if (!on)
		return 0;
	pr_info("tiny4412-board: %s is held by the stock image's driver (as \"%s\"): -EBUSY\n", part, holder);
	return -EBUSY;
}

int stock_gpio_request(struct gpio_chip *gc, unsigned int offset)
{
	unsigned int gpio = gc->base + offset;
	int i;

	for (i = 0; i < ARRAY_SIZE(pins); i++)
		if (pins[i].gpio == gpio)
			return asked(pins[i].part, pins[i].label);
	return 0;
}

int stock_eint_request(struct irq_data *d)
{
	int i;

	if (taking)
		return 0;
	for (i = 0; i < ARRAY_SIZE(eints); i++)
		if (eints[i].eint == d->hwirq)
			board_change(eints[i].part, "requested");
	return 0;
}

int stock_adc_request(struct irq_data *d)
{
	return asked("IRQ_ADC", ADC_LABEL);
}

/* --- the drivers' /dev files ---------------------------------------------- */

static long leds_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	/* As the stock driver: cmd 1 lights LED arg (active low), 0 puts it out. */
	if (cmd > 1 || arg >= 4)
		return -EINVAL;
	gpio_set_value(pins[arg].gpio, !cmd);
	return 0;
}

static irqreturn_t key_irq(int irq, void *dev)
{
	return IRQ_HANDLED;
}

static void free_keys(int n)
{
	while (n-- > 0)
		free_irq(gpio_to_irq(eints[n].gpio), (void *)&eints[n]);
}

/* As the stock driver's open: the four interrupts, both edges, not shared;
 * -EBUSY when one is taken. */
static int buttons_open_file(struct inode *inode, struct file *f)
{
	int i, ret = 0;

	mutex_lock(&buttons_lock);
	if (buttons_open++ == 0) {
		taking = true;
		for (i = 0; i < ARRAY_SIZE(eints) && !ret; i++)
			ret = request_irq(gpio_to_irq(eints[i].gpio), key_irq, IRQ_TYPE_EDGE_BOTH, eints[i].label, (void *)&eints[i]);
		taking = false;
		if (ret) {
			free_keys(i - 1);
			buttons_open--;
			ret = -EBUSY;
		}
	}
	mutex_unlock(&buttons_lock);
	return ret;
}

static int buttons_release(struct inode *inode, struct file *f)
{
	mutex_lock(&buttons_lock);
	if (--buttons_open == 0)
		free_keys(ARRAY_SIZE(eints));
	mutex_unlock(&buttons_lock);
	return 0;
}

/* What the other drivers do once opened is not modelled: said, not faked. */
static ssize_t not_modelled(struct file *f, char __user *buf, size_t len, loff_t *pos)
{
	pr_info_ratelimited("tiny4412-board: /dev/%s of the stock image: reading is not modelled\n", f->f_path.dentry->d_name.name);
	return -EOPNOTSUPP;
}

static long not_modelled_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	pr_info_ratelimited("tiny4412-board: /dev/%s of the stock image: its ioctls are not modelled\n", f->f_path.dentry->d_name.name);
	return -EOPNOTSUPP;
}

static const struct file_operations leds_fops = { .owner = THIS_MODULE, .unlocked_ioctl = leds_ioctl };
static const struct file_operations buttons_fops = {
	.owner = THIS_MODULE, .open = buttons_open_file, .release = buttons_release, .read = not_modelled,
};
static const struct file_operations other_fops = { .owner = THIS_MODULE, .read = not_modelled, .unlocked_ioctl = not_modelled_ioctl };

#define MISC(n, ops) { .minor = MISC_DYNAMIC_MINOR, .name = n, .fops = ops }
static struct miscdevice miscs[] = {
	MISC("leds", &leds_fops),
	MISC("buttons", &buttons_fops),
	MISC("pwm", &other_fops),
	MISC("adc", &other_fops),
	MISC("backlight", &other_fops),
};
static u32 held_miscs;

/* --- on and off ---------------------------------------------------------- */

static void stock_off(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(miscs); i++)
		if (held_miscs & BIT(i))
			misc_deregister(&miscs[i]);
	held_miscs = 0;
	on = false;
}

/* A /dev name already taken (by a module of an earlier unit that kept
 * it) is said, and the rest are registered. */
static void stock_on(void)
{
	int i, ret;

	/* The pins as the drivers' init leaves them: the LEDs' as outputs,
	 * the LEDs out (active low); the buzzer's an output, off. */
	for (i = 0; i < ARRAY_SIZE(pins); i++)
		gpio_direction_output(pins[i].gpio, strcmp(pins[i].driver, "leds") == 0);
	on = true;
	for (i = 0; i < ARRAY_SIZE(miscs); i++) {
		ret = misc_register(&miscs[i]);
		if (ret)
			pr_warn("tiny4412-board: stock: /dev/%s is taken already: %d\n", miscs[i].name, ret);
		else
			held_miscs |= BIT(i);
	}
	pr_info("tiny4412-board: the stock image's drivers hold LED1-4, the buzzer's pin and IRQ_ADC; /dev/leds, buttons, pwm, adc, backlight\n");
}

/* "stock on" or "stock off" from the control file: 1 if it was one, 0 if
 * the line is not about the stock drivers. */
int stock_control(const char *line)
{
	if (sysfs_streq(line, "stock on")) {
		if (!on)
			stock_on();
		return 1;
	}
	if (sysfs_streq(line, "stock off")) {
		if (on)
			stock_off();
		return 1;
	}
	return 0;
}

/* After a module's init has run (the notifier's MODULE_STATE_LIVE comes
 * after it): each stock /dev name now in /sys/class/misc is the module's,
 * since with the stock drivers off the model registers none. A name a
 * module of an earlier unit kept is said again: the notes are per name. */
static int stock_module_live(struct notifier_block *nb, unsigned long action, void *data)
{
	char path[48], part[16];
	struct path found;
	int i;

	if (action != MODULE_STATE_LIVE || on)
		return NOTIFY_DONE;
	for (i = 0; i < ARRAY_SIZE(miscs); i++) {
		snprintf(path, sizeof(path), "/sys/class/misc/%s", miscs[i].name);
		if (kern_path(path, 0, &found))
			continue;
		path_put(&found);
		snprintf(part, sizeof(part), "/dev/%s", miscs[i].name);
		board_change(part, "registered");
	}
	return NOTIFY_DONE;
}

static struct notifier_block stock_modules = { .notifier_call = stock_module_live };

int stock_init(void)
{
	return register_module_notifier(&stock_modules);
}

void stock_exit(void)
{
	unregister_module_notifier(&stock_modules);
	if (on)
		stock_off();
}
