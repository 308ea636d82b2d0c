/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Register accesses under the layer, for the virtual board (../../board/).
 *
 * The layer's ioremap() (compat35.h) maps a range that covers registers
 * the model has (a bank, several, a whole 4 KiB GPIO block, a platform
 * device's resource) to the model's copy of that block. A block's other
 * registers live in the same page, and the model does not have them: the
 * board would, and QEMU never sees an access to the copy. So every
 * __raw_read/__raw_write (under readl, writel, ioread32, their _relaxed
 * forms, …) looks first whether its address is in the model's copies and
 * is not a register the model has at that alignment; such an access goes
 * to the model, which reports it with the module's line, and the verdict
 * says the module needs the board. Any other access is the kernel's own,
 * unchanged. (A plain volatile pointer's write to such a register is
 * found by the model when it next looks at its copy, without a line; its
 * read is not seen.)
 *
 * request_mem_region() of a range the model covers is the model's: on
 * 3.5's board nothing held the GPIO blocks (its GPIO driver used fixed
 * mappings), while 6.12's pin controller holds them.
 *
 * Not marked: these are the kernel's own calls, with 3.5's meaning.
 */
#ifndef COMPAT35_MMIO_H
#define COMPAT35_MMIO_H

#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/device.h>
#include <compat35/board.h>

#ifndef __FILE_NAME__
#define __FILE_NAME__ __FILE__
#endif

/* The model's window, asked for once per file (the board is loaded
 * before a module's steps, and stays). */
static const struct tiny4412_board_window *compat35_window_p __maybe_unused;
static bool compat35_window_asked __maybe_unused;

static inline const struct tiny4412_board_window *compat35_window(void)
{
	if (unlikely(!READ_ONCE(compat35_window_asked))) {
		const struct tiny4412_board_window *w = symbol_get(tiny4412_board_window);

		if (w)
			symbol_put(tiny4412_board_window);
		WRITE_ONCE(compat35_window_p, w);
		WRITE_ONCE(compat35_window_asked, true);
	}
	return READ_ONCE(compat35_window_p);
}

/* True: a plain access (not the model's copy, or a register it has). */
static __always_inline bool compat35_plain_access(const volatile void __iomem *a, unsigned int size)
{
	const struct tiny4412_board_window *w = compat35_window();
	unsigned long p = (unsigned long)a;

	if (!w || p < w->start || p >= w->end)
		return true;
	return !(p & (size - 1)) && !(size < 4 && (p & 3)) && test_bit((p - w->start) / 4, w->modelled);
}

static noinline __maybe_unused u32 compat35_model_access(const volatile void __iomem *a, unsigned int size, bool write, u32 v,
					  const char *file, int line)
{
	u32 (*model)(const volatile void __iomem *, unsigned int, bool, u32, const char *, int) =
		symbol_get(tiny4412_board_access);
	u32 r = 0;

	if (model) {
		r = model(a, size, write, v, file, line);
		symbol_put(tiny4412_board_access);
	}
	return r;
}

static __always_inline u32 compat35_raw_read(const volatile void __iomem *a, unsigned int size, const char *file, int line)
{
	if (unlikely(!compat35_plain_access(a, size)))
		return compat35_model_access(a, size, false, 0, file, line);
	if (size == 1)
		return (__raw_readb)(a);
	if (size == 2)
		return (__raw_readw)(a);
	return (__raw_readl)(a);
}

static __always_inline void compat35_raw_write(u32 v, volatile void __iomem *a, unsigned int size, const char *file, int line)
{
	if (unlikely(!compat35_plain_access(a, size)))
		compat35_model_access(a, size, true, v, file, line);
	else if (size == 1)
		(__raw_writeb)(v, a);
	else if (size == 2)
		(__raw_writew)(v, a);
	else
		(__raw_writel)(v, a);
}

/* Every read and write macro of <asm/io.h> ends in these. */
#undef __raw_readb
#undef __raw_readw
#undef __raw_readl
#undef __raw_writeb
#undef __raw_writew
#undef __raw_writel
#define __raw_readb(a) ((u8)compat35_raw_read((a), 1, __FILE_NAME__, __LINE__))
#define __raw_readw(a) ((u16)compat35_raw_read((a), 2, __FILE_NAME__, __LINE__))
#define __raw_readl(a) compat35_raw_read((a), 4, __FILE_NAME__, __LINE__)
#define __raw_writeb(v, a) compat35_raw_write((u8)(v), (a), 1, __FILE_NAME__, __LINE__)
#define __raw_writew(v, a) compat35_raw_write((u16)(v), (a), 2, __FILE_NAME__, __LINE__)
#define __raw_writel(v, a) compat35_raw_write((u32)(v), (a), 4, __FILE_NAME__, __LINE__)
/* ioread/iowrite are functions of lib/iomap.c on ARM: the same accesses
 * as readl/writel for a mapping of memory. */
#undef ioread8
#undef ioread16
#undef ioread32
#undef iowrite8
#undef iowrite16
#undef iowrite32
#define ioread8(a) readb(a)
#define ioread16(a) readw(a)
#define ioread32(a) readl(a)
#define iowrite8(v, a) writeb((v), (a))
#define iowrite16(v, a) writew((v), (a))
#define iowrite32(v, a) writel((v), (a))

static inline struct resource *compat35_request_mem_region(resource_size_t start, resource_size_t n, const char *name)
{
	struct resource *(*model)(resource_size_t, resource_size_t, const char *) = symbol_get(tiny4412_board_request_region);
	struct resource *r = NULL;

	if (model) {
		r = model(start, n, name);
		symbol_put(tiny4412_board_request_region);
		if (!IS_ERR(r))
			return r;
		/* ERR_PTR(-ENOENT): not the model's range. */
	}
	return __request_region(&iomem_resource, start, n, name, 0);
}

static inline void compat35_release_mem_region(resource_size_t start, resource_size_t n)
{
	bool (*model)(resource_size_t, resource_size_t) = symbol_get(tiny4412_board_release_region);
	bool ours = false;

	if (model) {
		ours = model(start, n);
		symbol_put(tiny4412_board_release_region);
	}
	if (!ours)
		__release_region(&iomem_resource, start, n);
}
#undef request_mem_region
#undef release_mem_region
#define request_mem_region(start, n, name) compat35_request_mem_region((start), (n), (name))
#define release_mem_region(start, n) compat35_release_mem_region((start), (n))

static void __maybe_unused compat35_devm_release_region(void *r)
{
	struct resource *res = r;

	compat35_release_mem_region(res->start, resource_size(res));
}

/* devm_request_mem_region(): the model's region as request_mem_region()
 * gives it, released when the device goes. */
static inline struct resource *compat35_devm_request_mem_region(struct device *dev, resource_size_t start,
								 resource_size_t n, const char *name)
{
	struct resource *(*model)(resource_size_t, resource_size_t, const char *) = symbol_get(tiny4412_board_request_region);
	struct resource *r = ERR_PTR(-ENOENT);

	if (model) {
		r = model(start, n, name);
		symbol_put(tiny4412_board_request_region);
	}
	if (IS_ERR(r))
		return __devm_request_region(dev, &iomem_resource, start, n, name);
	if (r && devm_add_action_or_reset(dev, compat35_devm_release_region, r))
		return NULL;
	return r;
}
#undef devm_request_mem_region
#define devm_request_mem_region(dev, start, n, name) compat35_devm_request_mem_region((dev), (start), (n), (name))

/* devm_ioremap(): the layer's ioremap(), undone when the device goes. */
static void __maybe_unused compat35_devm_iounmap(void *addr)
{
	iounmap((void __iomem *)addr);
}

static inline void __iomem *compat35_devm_ioremap(struct device *dev, resource_size_t phys, resource_size_t size)
{
	void __iomem *p = ioremap(phys, size);

	if (p && devm_add_action_or_reset(dev, compat35_devm_iounmap, (void __force *)p))
		return NULL;
	return p;
}
#undef devm_ioremap
#define devm_ioremap(dev, phys, size) compat35_devm_ioremap((dev), (phys), (size))

#endif
