/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <linux/input-polldev.h>, removed in 5.11 (polling became a mode of an
 * ordinary input device, input_setup_polling(), in 5.6). This is 3.5's
 * drivers/input/input-polldev.c itself, as static functions of the
 * module's file: the same struct input_polled_dev fields, the work on
 * system_freezable_wq, polling only while the device is open, the open and
 * close callbacks, a default poll_interval of 500 ms, the extra reference
 * that keeps the input device until input_free_polled_device().
 *
 * Not here: 3.5's sysfs attributes poll, max and min under the input
 * device (a user changing the interval at run time); the interval is the
 * one the module sets.
 */
#ifndef COMPAT35_INPUT_POLLDEV_H
#define COMPAT35_INPUT_POLLDEV_H

#include <compat35/mark.h>
COMPAT35_USED_input_polldev

#include <linux/input.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/timer.h>
#include <linux/workqueue.h>

/* 3.5's fields, in 3.5's order. */
struct input_polled_dev {
	void *private;

	void (*open)(struct input_polled_dev *dev);
	void (*close)(struct input_polled_dev *dev);
	void (*poll)(struct input_polled_dev *dev);
	unsigned int poll_interval; /* msec */
	unsigned int poll_interval_max; /* msec */
	unsigned int poll_interval_min; /* msec */

	struct input_dev *input;

/* private: */
	struct delayed_work work;
};

static inline void compat35_polldev_queue_work(struct input_polled_dev *dev)
{
	unsigned long delay;

	delay = msecs_to_jiffies(dev->poll_interval);
	if (delay >= HZ)
		delay = round_jiffies_relative(delay);

	queue_delayed_work(system_freezable_wq, &dev->work, delay);
}

static inline void compat35_polled_device_work(struct work_struct *work)
{
	struct input_polled_dev *dev = container_of(work, struct input_polled_dev, work.work);

	dev->poll(dev);
	compat35_polldev_queue_work(dev);
}

static inline int compat35_open_polled_device(struct input_dev *input)
{
	struct input_polled_dev *dev = input_get_drvdata(input);

	if (dev->open)
		dev->open(dev);

	/* Only start polling if polling is enabled */
	if (dev->poll_interval > 0)
		queue_delayed_work(system_freezable_wq, &dev->work, 0);

	return 0;
}

static inline void compat35_close_polled_device(struct input_dev *input)
{
	struct input_polled_dev *dev = input_get_drvdata(input);

	cancel_delayed_work_sync(&dev->work);

	if (dev->close)
		dev->close(dev);
}

static inline struct input_polled_dev *input_allocate_polled_device(void)
{
	struct input_polled_dev *dev;

	dev = kzalloc(sizeof(struct input_polled_dev), GFP_KERNEL);
	if (!dev)
		return NULL;

	dev->input = input_allocate_device();
	if (!dev->input) {
		kfree(dev);
		return NULL;
	}

	return dev;
}

static inline void input_free_polled_device(struct input_polled_dev *dev)
{
	if (dev) {
		input_free_device(dev->input);
		kfree(dev);
	}
}

static inline int input_register_polled_device(struct input_polled_dev *dev)
{
	struct input_dev *input = dev->input;
	int error;

	input_set_drvdata(input, dev);
	INIT_DELAYED_WORK(&dev->work, compat35_polled_device_work);

	if (!dev->poll_interval)
		dev->poll_interval = 500;
	if (!dev->poll_interval_max)
		dev->poll_interval_max = dev->poll_interval;

	input->open = compat35_open_polled_device;
	input->close = compat35_close_polled_device;

	error = input_register_device(input);
	if (error)
		return error;

	/*
	 * Take extra reference to the underlying input device so
	 * that it survives call to input_unregister_polled_device()
	 * and is deleted only after input_free_polled_device()
	 * has been invoked. This is needed to ease task of freeing
	 * sparse keymaps.
	 */
	input_get_device(input);

	return 0;
}

static inline void input_unregister_polled_device(struct input_polled_dev *dev)
{
	input_unregister_device(dev->input);
}

#endif
