/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/cpu.h> of the Tiny4412's Linux 3.5: which SoC the kernel runs on.
 * 3.5 read the chip's id at boot; the Tiny4412 is an Exynos4412, so the
 * answers are constants here, 3.5's on that board.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_CPU_H
#define COMPAT35_PLAT_CPU_H

#define EXYNOS4210_CPU_ID	0x43210000
#define EXYNOS4212_CPU_ID	0x43220000
#define EXYNOS4412_CPU_ID	0xE4412200
#define EXYNOS4_CPU_MASK	0xFFFE0000

#define soc_is_exynos4210()	0
#define soc_is_exynos4212()	0
#define soc_is_exynos4412()	1
#define soc_is_exynos5250()	0

#endif /* COMPAT35_PLAT_CPU_H */
