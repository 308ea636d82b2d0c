/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <mach/regs-gpio.h> of Linux 3.5's mach-exynos: the EINT register offsets.
 * 3.5 added them to S5P_VA_GPIO2, a fixed mapping newer kernels do not
 * have; here they are offsets to add to an ioremap() of EXYNOS4_PA_GPIO2.
 */
#ifndef COMPAT35_MACH_REGS_GPIO_H
#define COMPAT35_MACH_REGS_GPIO_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#include <mach/map.h>
#include <mach/irqs.h>

#define EXYNOS4_EINT40CON	0xE00
#define EXYNOS4_EINT40FLTCON0	0xE80
#define EXYNOS4_EINT40MASK	0xF00
#define EXYNOS4_EINT40PEND	0xF40
#define EINT_REG_NR(x)		(EINT_OFFSET(x) >> 3)
#define EINT_OFFSET_BIT(x)	(1 << (EINT_OFFSET(x) & 0x7))

#endif /* COMPAT35_MACH_REGS_GPIO_H */
