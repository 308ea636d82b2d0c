/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <mach/hardware.h> of the Tiny4412's Linux 3.5: mach-exynos's defined
 * nothing a module uses; lessons include it out of habit.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers
