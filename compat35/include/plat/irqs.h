/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/irqs.h> of the Tiny4412's Linux 3.5: 3.5 kept IRQ_EINT() and the S5P numbering here, and
 * <mach/irqs.h> included it; both names give the same numbers.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_IRQS_H
#define COMPAT35_PLAT_IRQS_H

#include <mach/irqs.h>

#endif /* COMPAT35_PLAT_IRQS_H */
