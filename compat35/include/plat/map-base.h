/* SPDX-License-Identifier: GPL-2.0 */
/* <plat/map-base.h> of Linux 3.5: S3C_VA_WATCHDOG, S3C_VA_SYS. */
#ifndef COMPAT35_PLAT_MAP_BASE_H
#define COMPAT35_PLAT_MAP_BASE_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#include <compat35/va.h>

#endif
