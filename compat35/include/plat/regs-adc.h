/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/regs-adc.h> of the Tiny4412's Linux 3.5: the ADC's register offsets and bits, as
 * numbers to add to an ioremap() of SAMSUNG_PA_ADC (3.5's S3C2410_ADCREG(x)
 * was x; compat35/exynos4412-regs-adc.h).
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_REGS_ADC_H
#define COMPAT35_PLAT_REGS_ADC_H

#include <compat35/exynos4412-regs-adc.h>

#endif /* COMPAT35_PLAT_REGS_ADC_H */
