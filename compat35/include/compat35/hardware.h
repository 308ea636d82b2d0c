/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The board's hardware as 3.5 modules reach it, answered in the QEMU guest
 * by the virtual board (../../board/): registers (mmio.h), clocks by 3.5's
 * names (clk.h), PWM timers by number (pwm.h), gpio_free() of a pin nobody
 * holds (gpio.h). 3.5's fixed mappings (S5P_VA_GPIO2, …) are in va.h,
 * through <mach/map.h> and <plat/map-s5p.h> as on 3.5.
 */
#ifndef COMPAT35_HARDWARE_H
#define COMPAT35_HARDWARE_H

#include <compat35/mmio.h>
#include <compat35/clk.h>
#include <compat35/pwm.h>
#include <compat35/gpio.h>

#endif
