/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/regs-watchdog.h> of the Tiny4412's Linux 3.5: the watchdog's registers at S3C_WDOGREG(offset),
 * 3.5's S3C_VA_WATCHDOG + offset, and their bits (compat35/exynos4412-regs-watchdog.h).
 * S3C_VA_WATCHDOG, a fixed mapping, is the virtual board's.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_REGS_WATCHDOG_H
#define COMPAT35_PLAT_REGS_WATCHDOG_H

#include <mach/map.h>
#include <plat/map-base.h>
#include <compat35/exynos4412-regs-watchdog.h>
#ifndef S3C2410_WTCON_PRESCALE
#define S3C2410_WTCON_PRESCALE(x) ((x) << 8)
#endif

#endif /* COMPAT35_PLAT_REGS_WATCHDOG_H */
