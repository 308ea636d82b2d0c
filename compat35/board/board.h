/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the virtual board's files share (tiny4412_board.c, clocks.c,
 * pwm.c): the model's own, not the layer's (that is
 * ../include/compat35/board.h).
 */
#ifndef TINY4412_BOARD_H
#define TINY4412_BOARD_H

#include <linux/types.h>

/* A change of the board's state for the harness (`changes`); takes the
 * model's lock. */
__printf(2, 3) void board_note(const char *what, const char *fmt, ...);
/* The outputs (LEDs, buzzer) looked at again, their changes noted. */
void board_outputs_changed(void);

/* clocks.c: 3.5's clock lookups. */
int board_clocks_add(void);
void board_clocks_remove(void);

/* pwm.c: 3.5's PWM timers by number. PWM0's output, TOUT_0, is GPD0_0,
 * the buzzer's pin: -1 if no module has driven PWM0 through the legacy
 * API (its state is QEMU's timer's, which the model does not see), 0 if
 * it is stopped or its duty is 0, 1 if it toggles. */
int board_pwm0_output(void);

#endif
