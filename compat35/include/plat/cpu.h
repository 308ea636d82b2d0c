/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/cpu.h> of the Tiny4412's Linux 3.5: which SoC the kernel runs on.
 * 3.5 read the chip's id into samsung_cpu_id at boot, and its
 * soc_is_exynos4212() and soc_is_exynos4412() (the board's defconfig has
 * those two SoCs, not CONFIG_CPU_EXYNOS4210 or EXYNOS5250) read that
 * variable, which 3.5 never exported: a module that asks cannot load on the
 * board ("Unknown symbol samsung_cpu_id"). So here: the same reference,
 * which no 6.12 kernel has either, and, as 3.5's modpost did, a warning at
 * build time (the harness gives a 3.5 module's build KBUILD_MODPOST_WARN).
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_CPU_H
#define COMPAT35_PLAT_CPU_H

#define EXYNOS4210_CPU_ID	0x43210000
#define EXYNOS4212_CPU_ID	0x43220000
#define EXYNOS4412_CPU_ID	0xE4412200
#define EXYNOS4_CPU_MASK	0xFFFE0000

extern unsigned long samsung_cpu_id;

#define COMPAT35_IS_SAMSUNG_CPU(id, mask) ((samsung_cpu_id & (mask)) == ((id) & (mask)))

#define soc_is_exynos4210()	0
#define soc_is_exynos4212()	COMPAT35_IS_SAMSUNG_CPU(EXYNOS4212_CPU_ID, EXYNOS4_CPU_MASK)
#define soc_is_exynos4412()	COMPAT35_IS_SAMSUNG_CPU(EXYNOS4412_CPU_ID, EXYNOS4_CPU_MASK)
#define soc_is_exynos5250()	0

#endif /* COMPAT35_PLAT_CPU_H */
