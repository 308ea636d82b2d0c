/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/regs-watchdog.h> of Linux 3.5: the watchdog's registers at its
 * fixed mapping, S3C_VA_WATCHDOG (compat35/va.h: the virtual board's copy
 * in the QEMU guest), and WTCON's bits (Exynos 4412 UM, ch. 26).
 */
#ifndef COMPAT35_PLAT_REGS_WATCHDOG_H
#define COMPAT35_PLAT_REGS_WATCHDOG_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#include <plat/map-base.h>

#define S3C_WDOGREG(x)		((x) + S3C_VA_WATCHDOG)
#define S3C2410_WTCON		S3C_WDOGREG(0x00)
#define S3C2410_WTDAT		S3C_WDOGREG(0x04)
#define S3C2410_WTCNT		S3C_WDOGREG(0x08)

#define S3C2410_WTCON_RSTEN	(1 << 0)
#define S3C2410_WTCON_INTEN	(1 << 2)
#define S3C2410_WTCON_ENABLE	(1 << 5)
#define S3C2410_WTCON_DIV16	(0 << 3)
#define S3C2410_WTCON_DIV32	(1 << 3)
#define S3C2410_WTCON_DIV64	(2 << 3)
#define S3C2410_WTCON_DIV128	(3 << 3)
#define S3C2410_WTCON_PRESCALE(x)	((x) << 8)
#define S3C2410_WTCON_PRESCALE_MASK	(0xff00)

#endif
