// SPDX-License-Identifier: GPL-2.0
/*
 * The Tiny4412's clocks by Linux 3.5's names, for the modules that ask for
 * them: clk_get(NULL, "watchdog"), clk_get(&pdev->dev, "adc"), … On 3.5
 * (plat-samsung's clocks, mach-exynos/clock-exynos4.c) each clock was a
 * clkdev lookup of a name and, for some, a device name; 6.12's kernel for
 * this board takes its clocks from the device tree, so those names find
 * nothing (-ENOENT, and clk_enable() of that error pointer oopses). Here
 * each is a fixed-rate clock with 3.5's rate, registered under 3.5's
 * (device, name) pair: clkdev matches on 6.12 as it did on 3.5 (a lookup
 * with a device name matches only that device; one without matches any),
 * so a name 3.5 did not have, or had only for another device (`i2c`),
 * still gives 3.5's -ENOENT.
 *
 * Rates: 3.5 read them from the PLLs and dividers U-Boot set. FriendlyARM's
 * U-Boot for the Tiny4412 runs MPLL at 800 MHz, ACLK_100 (the peripherals'
 * bus, PCLK) at 100 MHz, ACLK_133 at 133 MHz, ACLK_160 at 160 MHz,
 * ACLK_200 at 200 MHz, the UARTs' SCLK at 100 MHz; the crystal is 24 MHz.
 * A gate of 3.5's with no parent in clock-exynos4.c (`adc`, `rtc`,
 * `keypad`, …) had a rate of 0 there, and has here.
 *
 * 3.5's clocks needed no clk_prepare(); 6.12's do. The layer's clk_enable()
 * prepares and enables (compat35/include/compat35/clk.h).
 */
#include <linux/module.h>
#include <linux/clk-provider.h>
#include <linux/clkdev.h>
#include <linux/slab.h>
#include "board.h"

#define MHZ 1000000UL

struct clock35 {
	const char *name;	/* 3.5's con_id */
	const char *dev;	/* 3.5's devname, or NULL: any device */
	unsigned long rate;
};

/* From clock-exynos4.c and clock-exynos4212.c (the 4412 registers both)
 * and plat-samsung's clock.c / s5p-clock.c: the names a module can ask
 * for, with the rate of the parent 3.5 gave each. */
static const struct clock35 clocks35[] = {
	{ "xtal", NULL, 24 * MHZ },
	{ "ext_xtal", NULL, 24 * MHZ },
	{ "xusbxti", NULL, 24 * MHZ },
	{ "fout_mpll", NULL, 800 * MHZ },
	{ "aclk_100", NULL, 100 * MHZ },
	{ "aclk_133", NULL, 133333333 },
	{ "aclk_160", NULL, 160 * MHZ },
	{ "aclk_200", NULL, 200 * MHZ },
	{ "pclk", NULL, 100 * MHZ },
	/* Gates whose parent is ACLK_100. */
	{ "watchdog", NULL, 100 * MHZ },
	{ "timers", NULL, 100 * MHZ },
	{ "tmu_apbif", NULL, 100 * MHZ },
	{ "i2c", "s3c2440-i2c.0", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.1", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.2", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.3", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.4", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.5", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.6", 100 * MHZ },
	{ "i2c", "s3c2440-i2c.7", 100 * MHZ },
	{ "i2c", "s3c2440-hdmiphy-i2c", 100 * MHZ },
	/* Gates whose parent is ACLK_133. */
	{ "hsmmc", "exynos4-sdhci.0", 133333333 },
	{ "hsmmc", "exynos4-sdhci.1", 133333333 },
	{ "hsmmc", "exynos4-sdhci.2", 133333333 },
	{ "hsmmc", "exynos4-sdhci.3", 133333333 },
	{ "dwmci", NULL, 133333333 },
	/* Gates with no parent: a rate of 0 on 3.5. */
	{ "adc", NULL, 0 },
	{ "adcphy", NULL, 0 },
	{ "fsys_adc", NULL, 0 },
	{ "rtc", NULL, 0 },
	{ "keypad", NULL, 0 },
	{ "usbhost", NULL, 0 },
	{ "otg", NULL, 0 },
	{ "hdmi_cec", NULL, 0 },
	{ "uart", "s5pv210-uart.0", 0 },
	{ "uart", "s5pv210-uart.1", 0 },
	{ "uart", "s5pv210-uart.2", 0 },
	{ "uart", "s5pv210-uart.3", 0 },
	{ "spi", "exynos4210-spi.0", 0 },
	{ "spi", "exynos4210-spi.1", 0 },
	{ "spi", "exynos4210-spi.2", 0 },
	/* The UARTs' baud clocks (SCLK_UART, MPLL / 8). */
	{ "uclk1", "exynos4210-uart.0", 100 * MHZ },
	{ "uclk1", "exynos4210-uart.1", 100 * MHZ },
	{ "uclk1", "exynos4210-uart.2", 100 * MHZ },
	{ "uclk1", "exynos4210-uart.3", 100 * MHZ },
	{ "clk_uart_baud0", "exynos4210-uart.0", 100 * MHZ },
	{ "clk_uart_baud0", "exynos4210-uart.1", 100 * MHZ },
	{ "clk_uart_baud0", "exynos4210-uart.2", 100 * MHZ },
	{ "clk_uart_baud0", "exynos4210-uart.3", 100 * MHZ },
};

struct clock_reg {
	struct clk_hw *hw;
	struct clk_lookup *lookup;
};

static struct clock_reg regs[ARRAY_SIZE(clocks35)];

void board_clocks_remove(void)
{
	int i;

	for (i = ARRAY_SIZE(clocks35) - 1; i >= 0; i--) {
		if (regs[i].lookup)
			clkdev_drop(regs[i].lookup);
		if (regs[i].hw)
			clk_hw_unregister_fixed_rate(regs[i].hw);
		regs[i].lookup = NULL;
		regs[i].hw = NULL;
	}
}

int board_clocks_add(void)
{
	char name[64];
	int i;

	for (i = 0; i < ARRAY_SIZE(clocks35); i++) {
		const struct clock35 *c = &clocks35[i];
		struct clk_hw *hw;

		/* The common clock framework's names are global (the kernel's
		 * own "watchdog" is the 4210's gate): ours say whose they are. */
		snprintf(name, sizeof(name), "tiny4412-3.5:%s%s%s", c->name, c->dev ? ":" : "", c->dev ?: "");
		hw = clk_hw_register_fixed_rate(NULL, name, NULL, 0, c->rate);
		if (IS_ERR(hw))
			goto fail;
		regs[i].hw = hw;
		regs[i].lookup = c->dev ? clkdev_hw_create(hw, c->name, "%s", c->dev) : clkdev_hw_create(hw, c->name, NULL);
		if (!regs[i].lookup)
			goto fail;
	}
	return 0;
fail:
	pr_err("tiny4412-board: clock %s (%s) could not be registered\n", clocks35[i].name, clocks35[i].dev ?: "any device");
	board_clocks_remove();
	return -ENOMEM;
}
