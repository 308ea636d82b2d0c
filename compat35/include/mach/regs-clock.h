/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <mach/regs-clock.h> of the Tiny4412's Linux 3.5: the clock controller's registers, each at
 * EXYNOS_CLKREG(offset), 3.5's S5P_VA_CMU + offset (numbers from FriendlyARM's
 * tree: compat35/exynos4412-regs-clock.h). S5P_VA_CMU, a fixed mapping, is
 * the virtual board's; without it a use names that base as undeclared.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_MACH_REGS_CLOCK_H
#define COMPAT35_MACH_REGS_CLOCK_H

#include <mach/map.h>
#include <compat35/exynos4412-regs-clock.h>

#endif /* COMPAT35_MACH_REGS_CLOCK_H */
