// SPDX-License-Identifier: GPL-2.0
/*
 * mmc_byte (C reference): allocating memory by the byte.
 *
 * Same behaviour and output as the Rust module in ../ :
 *   insmod: "process:insmod", then kzalloc/vzalloc 100 bytes, check that
 *   they are zeroed, strcpy "123", free;  rmmod: "mmc exit!".
 * Uses only APIs that Linux 3.5 has (vzalloc: since 2.6.37).
 */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/string.h>

#define BUF_SIZE 100

static int all_zero(const char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (buf[i])
			return 0;
	return 1;
}

static int __init mmc_init(void)
{
	char *kbuf, *vbuf;

	printk(KERN_INFO "process:%s\n", current->comm);

	/* kmalloc family: physically contiguous, zeroed by kzalloc */
	kbuf = kzalloc(BUF_SIZE, GFP_KERNEL);
	if (!kbuf) {
		printk(KERN_ERR "mmc_byte: kzalloc(%d) failed\n", BUF_SIZE);
		return -ENOMEM;
	}
	if (!all_zero(kbuf, BUF_SIZE)) {
		printk(KERN_ERR "mmc_byte: kzalloc(%d) returned memory that is not zeroed\n",
		       BUF_SIZE);
		kfree(kbuf);
		return -EIO;
	}
	strcpy(kbuf, "123");
	kfree(kbuf);

	/* vmalloc family: virtually contiguous, zeroed by vzalloc */
	vbuf = vzalloc(BUF_SIZE);
	if (!vbuf) {
		printk(KERN_ERR "mmc_byte: vzalloc(%d) failed\n", BUF_SIZE);
		return -ENOMEM;
	}
	if (!all_zero(vbuf, BUF_SIZE)) {
		printk(KERN_ERR "mmc_byte: vzalloc(%d) returned memory that is not zeroed\n",
		       BUF_SIZE);
		vfree(vbuf);
		return -EIO;
	}
	strcpy(vbuf, "123");
	vfree(vbuf);

	return 0;
}

static void __exit mmc_exit(void)
{
	printk(KERN_INFO "mmc exit!\n");
}

module_init(mmc_init);
module_exit(mmc_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Allocating memory by the byte: kzalloc/vzalloc (C reference)");
MODULE_AUTHOR("mmc_byte authors");
