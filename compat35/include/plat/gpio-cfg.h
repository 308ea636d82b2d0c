/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/gpio-cfg.h> of Linux 3.5 (arch/arm/plat-samsung): the values as 3.5
 * had them, and the calls on gpiolib, which newer kernels reach a pin by.
 *
 * s3c_gpio_cfgpin(): S3C_GPIO_INPUT and S3C_GPIO_OUTPUT set the direction
 * (output keeps the pin's level, as writing GPxCON did); any other function
 * (S3C_GPIO_SFN(0xf), the EINT function) is left to whoever maps the
 * interrupt. s3c_gpio_setpull() has no gpiolib call for a legacy number
 * and does nothing here. What the pins do is the virtual board's part.
 */
#ifndef COMPAT35_PLAT_GPIO_CFG_H
#define COMPAT35_PLAT_GPIO_CFG_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#include <linux/gpio.h>
#include <linux/types.h>

typedef unsigned int __bitwise samsung_gpio_pull_t;
typedef unsigned int __bitwise s5p_gpio_drvstr_t;

#define S3C_GPIO_SPECIAL_MARK	(0xfffffff0)
#define S3C_GPIO_SPECIAL(x)	(S3C_GPIO_SPECIAL_MARK | (x))
#define S3C_GPIO_INPUT		(S3C_GPIO_SPECIAL(0))
#define S3C_GPIO_OUTPUT		(S3C_GPIO_SPECIAL(1))
#define S3C_GPIO_SFN(x)		(S3C_GPIO_SPECIAL(x))
#define samsung_gpio_is_cfg_special(_cfg) (((_cfg) & S3C_GPIO_SPECIAL_MARK) == S3C_GPIO_SPECIAL_MARK)

#define S3C_GPIO_PULL_NONE	((__force samsung_gpio_pull_t)0x00)
#define S3C_GPIO_PULL_DOWN	((__force samsung_gpio_pull_t)0x01)
#define S3C_GPIO_PULL_UP	((__force samsung_gpio_pull_t)0x02)

/* Not in order in 3.5 either. */
#define S5P_GPIO_DRVSTR_LV1	((__force s5p_gpio_drvstr_t)0x0)
#define S5P_GPIO_DRVSTR_LV2	((__force s5p_gpio_drvstr_t)0x2)
#define S5P_GPIO_DRVSTR_LV3	((__force s5p_gpio_drvstr_t)0x1)
#define S5P_GPIO_DRVSTR_LV4	((__force s5p_gpio_drvstr_t)0x3)

static inline int s3c_gpio_cfgpin(unsigned int pin, unsigned int to)
{
	if (to == S3C_GPIO_INPUT)
		return gpio_direction_input(pin);
	if (to == S3C_GPIO_OUTPUT) {
		/*
		 * The virtual board's pin an output first, so that the level
		 * read back is its DAT bit (what writing GPxCON drove on 3.5),
		 * not a read of an input that the model would report as the
		 * module's (a read of a pin nothing drives); without the model
		 * this does nothing, and the pin's level is read as before.
		 */
		compat35_gpio_cfg_special(pin, 1);
		return gpio_direction_output(pin, gpio_get_value(pin));
	}
	return compat35_gpio_cfg_special(pin, to & 0xf);
}

static inline int s3c_gpio_cfgpin_range(unsigned int start, unsigned int nr, unsigned int cfg)
{
	int ret = 0;

	for (; nr > 0 && !ret; nr--, start++)
		ret = s3c_gpio_cfgpin(start, cfg);
	return ret;
}

static inline int s3c_gpio_setpull(unsigned int pin, samsung_gpio_pull_t pull)
{
	return 0;
}

static inline int s3c_gpio_cfgall_range(unsigned int start, unsigned int nr, unsigned int cfg, samsung_gpio_pull_t pull)
{
	return s3c_gpio_cfgpin_range(start, nr, cfg);
}

static inline int s5p_gpio_set_drvstr(unsigned int pin, s5p_gpio_drvstr_t drvstr)
{
	return 0;
}

#endif /* COMPAT35_PLAT_GPIO_CFG_H */
