/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <mach/map.h> of the Tiny4412's Linux 3.5: the physical addresses modules
 * ioremap(), and (through <plat/map-s5p.h>, as on 3.5) the fixed mappings.
 */
#ifndef COMPAT35_MACH_MAP_H
#define COMPAT35_MACH_MAP_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#include <plat/map-s5p.h>

#define EXYNOS4_PA_GPIO1	0x11400000
#define EXYNOS4_PA_GPIO2	0x11000000
#define EXYNOS4_PA_GPIO3	0x03860000
#define EXYNOS4_PA_WATCHDOG	0x10060000
#define EXYNOS4412_PA_ADC	0x126C0000
#define SAMSUNG_PA_ADC		EXYNOS4412_PA_ADC

/* Every other name of 3.5's <mach/map.h>, as numbers. */
#include <compat35/exynos4412-map.h>

#endif /* COMPAT35_MACH_MAP_H */
