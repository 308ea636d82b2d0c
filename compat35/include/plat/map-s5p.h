/* SPDX-License-Identifier: GPL-2.0 */
/* <plat/map-s5p.h> of Linux 3.5: the fixed mappings (S5P_VA_GPIO2, …). */
#ifndef COMPAT35_PLAT_MAP_S5P_H
#define COMPAT35_PLAT_MAP_S5P_H

#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#include <compat35/va.h>

#endif
