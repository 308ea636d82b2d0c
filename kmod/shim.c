// SPDX-License-Identifier: GPL-2.0
/*
 * mmc_byte: C shim for the Rust part (src/lib.rs).
 *
 * The module's logic is in Rust. This file holds only what Rust cannot call
 * directly, because the kernel provides it as an inline function or a macro,
 * plus the module boilerplate (module_init/module_exit, MODULE_*).
 *
 * Kernel APIs used, all present in Linux 3.5 (the board vendor's kernel) as
 * well as in current kernels:
 *   printk via pr_info/pr_err (KERN_INFO/KERN_ERR), with %s, %.*s, %zu, %u
 *   kzalloc(size, GFP_KERNEL) (inline around kmalloc/__kmalloc), kfree
 *   vzalloc (since 2.6.37), vfree
 *   current->comm (TASK_COMM_LEN char array in task_struct)
 *   BUG()
 *   module_init, module_exit, __init, __exit,
 *   MODULE_LICENSE, MODULE_DESCRIPTION, MODULE_AUTHOR
 *
 * No pr_fmt prefix: the output lines must be exactly "process:insmod" and
 * "mmc exit!", as in the tutorial's C module (c-twin/mmc_byte.c).
 */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/bug.h>

/* Implemented in Rust (src/lib.rs). */
int mmc_byte_rust_init(void);
void mmc_byte_rust_exit(void);

/*
 * Called from Rust; the declarations in src/lib.rs (mod ffi) must match.
 * Not static (Rust links against them) and not exported (no EXPORT_SYMBOL):
 * they are private to this module.
 */
void *mmc_shim_kzalloc(size_t size);
void mmc_shim_kfree(void *p);
void *mmc_shim_vzalloc(size_t size);
void mmc_shim_vfree(void *p);
void mmc_shim_print_process(void);
void mmc_shim_pr_info(const char *line);
void mmc_shim_alloc_error(const char *allocator, size_t size,
			  const char *problem);
void mmc_shim_report_panic(const char *file, size_t file_len, u32 line,
			   u32 column, const char *msg, size_t msg_len);
void mmc_shim_bug(void) __attribute__((noreturn));

void *mmc_shim_kzalloc(size_t size)
{
	return kzalloc(size, GFP_KERNEL);
}

void mmc_shim_kfree(void *p)
{
	kfree(p);
}

void *mmc_shim_vzalloc(size_t size)
{
	return vzalloc(size);
}

void mmc_shim_vfree(void *p)
{
	vfree(p);
}

void mmc_shim_print_process(void)
{
	pr_info("process:%s\n", current->comm);
}

void mmc_shim_pr_info(const char *line)
{
	pr_info("%s\n", line);
}

void mmc_shim_alloc_error(const char *allocator, size_t size,
			  const char *problem)
{
	pr_err("mmc_byte: %s(%zu) %s\n", allocator, size, problem);
}

/* Rust strings are not NUL-terminated: print them with "%.*s". */
void mmc_shim_report_panic(const char *file, size_t file_len, u32 line,
			   u32 column, const char *msg, size_t msg_len)
{
	pr_err("mmc_byte: Rust panic at %.*s:%u:%u: %.*s\n",
	       (int)file_len, file, line, column, (int)msg_len, msg);
}

void mmc_shim_bug(void)
{
	BUG();
	/* BUG() is empty when CONFIG_BUG=n; Rust relies on "never returns". */
	for (;;)
		;
}

static int __init mmc_byte_init(void)
{
	return mmc_byte_rust_init();
}

static void __exit mmc_byte_exit(void)
{
	mmc_byte_rust_exit();
}

module_init(mmc_byte_init);
module_exit(mmc_byte_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Allocating memory by the byte: kzalloc/vzalloc (Rust + C shim)");
MODULE_AUTHOR("mmc_byte authors");
