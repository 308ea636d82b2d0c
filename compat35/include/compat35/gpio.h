/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gpio_free() of a pin nobody requested: on 3.5 a no-op (gpiolib.c checked
 * FLAG_REQUESTED; the board's lessons call it first, to take a pin from the
 * stock driver, whether it holds it or not). 6.12's gpiod_free() drops the
 * chip owner's module reference and the device's whatever the pin's state:
 * the virtual board's count goes to -1, and its gpio_request()s and
 * request_irq()s fail from then on. Here the kernel's gpio_free() runs only
 * for a pin that is requested, by anyone, as on 3.5. Not marked: the call
 * is the same on both kernels.
 */
#ifndef COMPAT35_GPIO_H
#define COMPAT35_GPIO_H

#include <linux/gpio.h>
#include <linux/gpio/consumer.h>
#include <linux/gpio/driver.h>
#include <linux/slab.h>
#include <compat35/board.h>

static inline void compat35_gpio_free(unsigned int gpio)
{
	struct gpio_desc *desc = gpio_to_desc(gpio);
	struct gpio_device *gdev = desc ? gpiod_to_gpio_device(desc) : NULL;
	struct gpio_chip *gc = desc ? gpiod_to_chip(desc) : NULL;
	char *label;

	if (!gdev || !gc)
		return;
	label = gpiochip_dup_line_label(gc, gpio - gpio_device_get_base(gdev));
	if (IS_ERR_OR_NULL(label))
		return;
	kfree(label);
	(gpio_free)(gpio);
}
#define gpio_free(gpio) compat35_gpio_free(gpio)

/*
 * s3c_gpio_cfgpin(pin, S3C_GPIO_SFN(n)) for n other than input and output
 * (<plat/gpio-cfg.h>): the pin's function in the virtual board's GPxCON,
 * which is what makes GPD0_0 the PWM's TOUT_0 (the buzzer). No gpiolib
 * call sets a pin's function by its legacy number: without the model,
 * nothing is done, as before.
 */
static inline int compat35_gpio_cfg_special(unsigned int pin, unsigned int fn)
{
	int (*model)(unsigned int, unsigned int) = symbol_get(tiny4412_board_cfgpin);

	if (model) {
		model(pin, fn);
		symbol_put(tiny4412_board_cfgpin);
	}
	return 0;
}

#endif
