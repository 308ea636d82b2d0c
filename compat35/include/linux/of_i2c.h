/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <linux/of_i2c.h>, removed in 3.12: of_i2c_register_devices() went away
 * because the I2C core registers an adapter's device-tree children itself
 * (i2c_register_adapter(), 3.12 on), and of_find_i2c_device_by_node() moved
 * to <linux/i2c.h>. So a call is a no-op here with 3.5's effect: the
 * children are registered.
 */
#ifndef COMPAT35_OF_I2C_H
#define COMPAT35_OF_I2C_H

#include <compat35/mark.h>
COMPAT35_USED_of_i2c

#include <linux/i2c.h>
#include <linux/of.h>

static inline void of_i2c_register_devices(struct i2c_adapter *adap)
{
}

#endif
