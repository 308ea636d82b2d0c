/* SPDX-License-Identifier: GPL-2.0 */
/* The stock image's drivers (stock.c), as tiny4412_board.c calls them. */
#ifndef TINY4412_BOARD_STOCK_H
#define TINY4412_BOARD_STOCK_H

struct gpio_chip;
struct irq_data;

/* gpio_chip.request and irq_chip.irq_request_resources of the board's
 * banks, XEINTs and ADC: a module's request of what a stock driver holds. */
int stock_gpio_request(struct gpio_chip *gc, unsigned int offset);
int stock_eint_request(struct irq_data *d);
int stock_adc_request(struct irq_data *d);
/* A control file line: 1 if it was "stock on|off", else 0. */
int stock_control(const char *line);
/* Watches modules' misc devices under the stock drivers' /dev names. */
int stock_init(void);
void stock_exit(void);

/* tiny4412_board.c's: a change for the `changes` file. */
void board_change(const char *part, const char *state);

#endif
