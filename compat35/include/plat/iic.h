/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/iic.h> of the Tiny4412's Linux 3.5: the I2C controller's platform data as 3.5 declared it
 * (a board file's; a lesson includes it beside <linux/i2c.h>). 3.5's
 * s3c_i2cN_set_platdata() and cfg_gpio helpers were the board file's and
 * are not given: the stand-in kernel has no such functions.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_IIC_H
#define COMPAT35_PLAT_IIC_H

#include <linux/types.h>
#include <linux/i2c.h>

struct platform_device;

#define S3C_IICFLG_FILTER (1 << 0)

struct s3c2410_platform_i2c {
	int bus_num;
	unsigned int flags;
	unsigned int slave_addr;
	unsigned long frequency;
	unsigned int sda_delay;
	void (*cfg_gpio)(struct platform_device *dev);
};

#endif /* COMPAT35_PLAT_IIC_H */
