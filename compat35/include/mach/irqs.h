/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <mach/irqs.h> of the Tiny4412's Linux 3.5 (FriendlyARM's tree, Exynos4412
 * on): the interrupt numbers 3.5 gave the external interrupts and the ADC.
 *
 *   IRQ_EINT(x): plat-samsung/include/plat/irqs.h, S5P_EINT_BASE1 = 416
 *   (COMBINER_IRQ(MAX_COMBINER_NR = 32, 0)), S5P_EINT_BASE2 = 432, so
 *   IRQ_EINT(26), K1's XEINT26, is 442;
 *   IRQ_ADC: EXYNOS4_IRQ_ADC0 = COMBINER_IRQ(10, 3) = 243 on the 4412.
 *
 * Newer kernels number interrupts as they map them (virtual IRQs), so these
 * are only numbers: request_irq() of one succeeds only where something has
 * mapped an interrupt there (the virtual board's support module does, for
 * the EINTs and the ADC). A module that takes its IRQ from gpio_to_irq() or
 * platform_get_irq() needs no such number.
 */
/*
 * Marked at each include of the module's. compat35.h includes it too,
 * unmarked (COMPAT35_IMPLICIT), as 3.5's <linux/gpio.h> brought <mach/gpio.h>
 * and <linux/interrupt.h> brought <mach/irqs.h> through <asm/…>.
 */
#include <compat35/mark.h>
#ifndef COMPAT35_IMPLICIT
COMPAT35_USED_mach_headers
#endif

#ifndef COMPAT35_MACH_IRQS_H
#define COMPAT35_MACH_IRQS_H

#define IRQ_SPI(x)		((x) + 32)
#define MAX_IRQ_IN_COMBINER	8
#define COMBINER_GROUP(x)	((x) * MAX_IRQ_IN_COMBINER + IRQ_SPI(128))
#define COMBINER_IRQ(x, y)	(COMBINER_GROUP(x) + (y))
#define EXYNOS4_MAX_COMBINER_NR	20
#define EXYNOS5_MAX_COMBINER_NR	32
#define MAX_COMBINER_NR		EXYNOS5_MAX_COMBINER_NR

#define S5P_EINT_BASE1		COMBINER_IRQ(MAX_COMBINER_NR, 0)
#define S5P_EINT_BASE2		(S5P_EINT_BASE1 + 16)
#define S5P_GPIOINT_COUNT	(4 * 8)
#define S5P_GPIOINT_BASE	(S5P_EINT_BASE1 + 32)
#define IRQ_GPIO_END		(S5P_GPIOINT_BASE + S5P_GPIOINT_COUNT)
#define IRQ_EINT(x)		((x) < 16 ? ((x) + S5P_EINT_BASE1) : ((x) - 16 + S5P_EINT_BASE2))
#define EINT_OFFSET(irq)	((irq) < S5P_EINT_BASE2 ? ((irq) - S5P_EINT_BASE1) : ((irq) + 16 - S5P_EINT_BASE2))

#define EXYNOS4_IRQ_ADC0	COMBINER_IRQ(10, 3)
#define IRQ_ADC			EXYNOS4_IRQ_ADC0

/* Every other name of 3.5's <mach/irqs.h>, as numbers. */
#include <compat35/exynos4412-irqs.h>

#endif /* COMPAT35_MACH_IRQS_H */
