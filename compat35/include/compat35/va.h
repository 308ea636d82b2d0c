/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 3.5's fixed mappings of mach-exynos (common.c's exynos4_iodesc, names
 * from <plat/map-s5p.h> and <plat/map-base.h>): S5P_VA_GPIO2 was a virtual
 * address the kernel mapped at boot, and modules used it straight:
 * __raw_readl(S5P_VA_GPIO2 + 0x2E0). 6.12 has none of them. Here each is
 * the mapping of the same physical block (3.5's length): the virtual
 * board's copy where it models the block (in the QEMU guest), else the
 * kernel's ioremap(), made once per file and kept, as 3.5's were.
 * Each is an expression, not a constant: a static initializer cannot
 * use one (3.5's could).
 */
#ifndef COMPAT35_VA_H
#define COMPAT35_VA_H

#include <linux/io.h>
#include <linux/sizes.h>
#include <compat35/board.h>

enum {
	COMPAT35_VA_GPIO1,
	COMPAT35_VA_GPIO2,
	COMPAT35_VA_GPIO3,
	COMPAT35_VA_WATCHDOG,
	COMPAT35_VA_SYS,
	COMPAT35_VA_PMU,
	COMPAT35_VA_CMU,
	COMPAT35_VA_CHIPID,
	COMPAT35_VA_N
};

static void __iomem *compat35_va_mapped[COMPAT35_VA_N] __maybe_unused;

static inline void __iomem *compat35_va(int id, phys_addr_t phys, size_t size, const char *name)
{
	void __iomem *(*model)(phys_addr_t, size_t, const char *);
	void __iomem *p = READ_ONCE(compat35_va_mapped[id]);
	bool ours = false;

	if (likely(p))
		return p;
	model = symbol_get(tiny4412_board_va);
	if (model) {
		p = model(phys, size, name);
		symbol_put(tiny4412_board_va);
		ours = p != NULL;
	}
	if (!p)
		p = (ioremap)(phys, size);
	if (cmpxchg(&compat35_va_mapped[id], NULL, p) != NULL) {
		/* Another CPU mapped it first. */
		if (!ours && p)
			(iounmap)(p);
		p = compat35_va_mapped[id];
	}
	return p;
}

#define S5P_VA_GPIO		compat35_va(COMPAT35_VA_GPIO1, 0x11400000, SZ_4K, "S5P_VA_GPIO")
#define S5P_VA_GPIO1		compat35_va(COMPAT35_VA_GPIO1, 0x11400000, SZ_4K, "S5P_VA_GPIO1")
#define S5P_VA_GPIO2		compat35_va(COMPAT35_VA_GPIO2, 0x11000000, SZ_4K, "S5P_VA_GPIO2")
#define S5P_VA_GPIO3		compat35_va(COMPAT35_VA_GPIO3, 0x03860000, SZ_256, "S5P_VA_GPIO3")
#define S3C_VA_WATCHDOG		compat35_va(COMPAT35_VA_WATCHDOG, 0x10060000, SZ_4K, "S3C_VA_WATCHDOG")
#define S3C_VA_SYS		compat35_va(COMPAT35_VA_SYS, 0x10010000, SZ_64K, "S3C_VA_SYS")
#define S5P_VA_PMU		compat35_va(COMPAT35_VA_PMU, 0x10020000, SZ_64K, "S5P_VA_PMU")
#define S5P_VA_CMU		compat35_va(COMPAT35_VA_CMU, 0x10030000, SZ_128K, "S5P_VA_CMU")
#define S5P_VA_CHIPID		compat35_va(COMPAT35_VA_CHIPID, 0x10000000, SZ_4K, "S5P_VA_CHIPID")

#endif
