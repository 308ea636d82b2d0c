/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <mach/map.h> of the Tiny4412's Linux 3.5: the physical addresses modules
 * ioremap(). (3.5's S5P_VA_* fixed virtual mappings do not exist on newer
 * kernels and are not given: a module must ioremap() these.)
 */
#ifndef COMPAT35_MACH_MAP_H
#define COMPAT35_MACH_MAP_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#define EXYNOS4_PA_GPIO1	0x11400000
#define EXYNOS4_PA_GPIO2	0x11000000
#define EXYNOS4_PA_GPIO3	0x03860000
#define EXYNOS4_PA_WATCHDOG	0x10060000
#define EXYNOS4412_PA_ADC	0x126C0000
#define SAMSUNG_PA_ADC		EXYNOS4412_PA_ADC

/* Every other name of 3.5's <mach/map.h>, as numbers. */
#include <compat35/exynos4412-map.h>

#endif /* COMPAT35_MACH_MAP_H */
