/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the 3.5 layer asks of the virtual board (../../board/), in the QEMU
 * guest; each through symbol_get(), so that a module built with the layer
 * needs nothing loaded on a real board (there, each falls back to the
 * kernel's own call). symbol_get() finds GPL symbols for GPL modules only,
 * as the board's tutorials are.
 */
#ifndef COMPAT35_BOARD_H
#define COMPAT35_BOARD_H

#include <linux/types.h>
#include <linux/ioport.h>

/* The model's copies of the register blocks it has: two pages a block,
 * together. A bit per 32-bit word says the model has that register. */
struct tiny4412_board_window {
	unsigned long start, end;
	const unsigned long *modelled;
};
extern struct tiny4412_board_window tiny4412_board_window;

/* ioremap() and iounmap() of a range the model covers (compat35.h). */
void __iomem *tiny4412_board_ioremap(phys_addr_t phys, size_t size);
bool tiny4412_board_iounmap(volatile void __iomem *addr);
/* An access the model does not have, or not at that alignment: done on
 * the copy and reported (the register, the mapping, the module's line). */
u32 tiny4412_board_access(const volatile void __iomem *addr, unsigned int size, bool write, u32 value,
			  const char *file, int line);
/* 3.5's fixed mappings (S5P_VA_GPIO2, …): the copy, mapped for good. */
void __iomem *tiny4412_board_va(phys_addr_t phys, size_t size, const char *name);
/* request_mem_region() of a range the model covers: the model's own
 * resources, which nothing of the kernel's holds, as on 3.5's board. */
struct resource *tiny4412_board_request_region(resource_size_t start, resource_size_t n, const char *name);
bool tiny4412_board_release_region(resource_size_t start, resource_size_t n);

/* A pin's function in its GPxCON (s3c_gpio_cfgpin(pin, S3C_GPIO_SFN(n))). */
int tiny4412_board_cfgpin(unsigned int gpio, unsigned int fn);

/* 3.5's PWM timers by number (plat-samsung/pwm.c's API). */
struct pwm_device;
enum { TINY4412_PWM_CONFIG, TINY4412_PWM_ENABLE, TINY4412_PWM_DISABLE, TINY4412_PWM_FREE };
struct pwm_device *tiny4412_board_pwm_request(int id, const char *label);
/* -ENOTTY: not one of the model's. */
int tiny4412_board_pwm(struct pwm_device *pwm, int op, int duty_ns, int period_ns);

#endif
