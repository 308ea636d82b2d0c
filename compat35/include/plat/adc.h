/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/adc.h> of the Tiny4412's Linux 3.5: the ADC client API's types. 3.5's s3c_adc_register(),
 * s3c_adc_start() and s3c_adc_read() were plat-samsung's adc.c, which the
 * stand-in kernel does not have: they are not declared, so a call names
 * itself. A lesson that maps the ADC's registers (<plat/regs-adc.h>) needs
 * none of them.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_ADC_H
#define COMPAT35_PLAT_ADC_H

struct s3c_adc_client;

struct s3c_adc_platdata {
	void (*phy_init)(void);
	void (*phy_exit)(void);
};

#endif /* COMPAT35_PLAT_ADC_H */
