/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 3.5's /proc API for modules, on kernels where struct proc_dir_entry is
 * private (3.10 on) and proc files take a struct proc_ops (5.6 on):
 *
 *   - create_proc_entry(name, mode, parent) returning an entry whose
 *     ->read_proc, ->write_proc, ->data and ->proc_fops the module sets;
 *     create_proc_read_entry(name, mode, parent, read_proc, data);
 *   - proc_create()/proc_create_data() given a struct file_operations;
 *   - PDE(inode)->data, and PDE_DATA(inode) (3.10's name) for such entries;
 *   - remove_proc_entry() and proc_remove() of them.
 *
 * How: the entry the module sees is the layer's own object, laid out with
 * 3.5's public fields (this header completes `struct proc_dir_entry`, which
 * the newer kernel only declares, so `e->read_proc = f` compiles as it did).
 * Behind it is a real proc entry whose proc_ops dispatch to those fields at
 * each call: to the module's file_operations if ->proc_fops is set, else
 * through read_proc/write_proc with 3.5's protocol (fs/proc/generic.c,
 * __proc_file_read: the page buffer, *start and *eof, PROC_BLOCK_SIZE).
 *
 * Every proc function that takes a parent or an entry is wrapped to hand
 * the kernel the real entry behind one of the layer's; the kernel's own
 * entries (proc_mkdir()'s, a proc_create() with proc_ops) pass unchanged.
 * The layer's entries are on a list of this compilation unit, so an entry
 * made in one file of a module and removed in another is removed from
 * /proc but its small object is not freed (kmemleak may name it).
 */
#ifndef COMPAT35_PROC_H
#define COMPAT35_PROC_H

#include <linux/proc_fs.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/spinlock.h>
#include <linux/list.h>
#include <linux/uaccess.h>
#include <linux/gfp.h>

typedef int (read_proc_t)(char *page, char **start, off_t off, int count, int *eof, void *data);
typedef int (write_proc_t)(struct file *file, const char __user *buffer, unsigned long count, void *data);

/* 3.5's include/linux/proc_fs.h fields that modules set or read, then the layer's. */
struct proc_dir_entry {
	umode_t mode;
	loff_t size;
	const struct file_operations *proc_fops;
	void *data;
	read_proc_t *read_proc;
	write_proc_t *write_proc;
	struct proc_dir_entry *parent;
	struct proc_dir_entry *compat35_real;
	struct list_head compat35_node;
	char name[];
};

static __maybe_unused LIST_HEAD(compat35_pdes);
static __maybe_unused DEFINE_SPINLOCK(compat35_pde_lock);

/* Whether `p` is one of the layer's entries (by address: nothing is read through it). */
static inline bool compat35_pde_ours(const void *p)
{
	struct proc_dir_entry *e;
	bool found = false;

	if (!p)
		return false;
	spin_lock(&compat35_pde_lock);
	list_for_each_entry(e, &compat35_pdes, compat35_node) {
		if (e == p) {
			found = true;
			break;
		}
	}
	spin_unlock(&compat35_pde_lock);
	return found;
}

/* The kernel's entry for `p`: the one behind a layer entry, else `p` itself. */
static inline struct proc_dir_entry *compat35_pde_real(struct proc_dir_entry *p)
{
	return compat35_pde_ours(p) ? p->compat35_real : p;
}

/* 3.5's __proc_file_read block size: a page less 1 KiB. */
#define COMPAT35_PROC_BLOCK_SIZE (PAGE_SIZE - 1024)
#define COMPAT35_MAX_NON_LFS ((1UL << 31) - 1)

static inline struct proc_dir_entry *compat35_pde_of(struct file *file)
{
	return (struct proc_dir_entry *)(pde_data)(file_inode(file));
}

/* 3.5's __proc_file_read, for an entry with ->read_proc. */
static ssize_t __maybe_unused compat35_read_proc(struct proc_dir_entry *dp, char __user *buf, size_t nbytes, loff_t *ppos)
{
	unsigned long long pos = *ppos;
	ssize_t retval = 0, n, count;
	int eof = 0;
	char *page, *start;

	if (!dp->read_proc)
		return -EIO;
	if (pos > COMPAT35_MAX_NON_LFS)
		return 0;
	if (nbytes > COMPAT35_MAX_NON_LFS - pos)
		nbytes = COMPAT35_MAX_NON_LFS - pos;
	page = (char *)__get_free_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	while (nbytes > 0 && !eof) {
		count = min_t(size_t, COMPAT35_PROC_BLOCK_SIZE, nbytes);
		start = NULL;
		n = dp->read_proc(page, &start, (off_t)pos, count, &eof, dp->data);
		if (n == 0)
			break;
		if (n < 0) {
			if (retval == 0)
				retval = n;
			break;
		}
		if (start == NULL) {
			/* Way 0: the data at its offset in the page. */
			if (n > PAGE_SIZE) {
				pr_err("proc_file_read: Apparent buffer overflow!\n");
				n = PAGE_SIZE;
			}
			n -= pos;
			if (n <= 0)
				break;
			if (n > count)
				n = count;
			start = page + pos;
		} else if (start < page) {
			/* Way 1: *start is how far the offset moves. */
			if (n > PAGE_SIZE) {
				pr_err("proc_file_read: Apparent buffer overflow!\n");
				n = PAGE_SIZE;
			}
			if (n > count)
				pr_warn("proc_file_read: Read count exceeded\n");
		} else {
			/* Way 2: the data at *start. */
			unsigned long startoff = (unsigned long)(start - page);

			if (n > (ssize_t)(PAGE_SIZE - startoff)) {
				pr_err("proc_file_read: Apparent buffer overflow!\n");
				n = PAGE_SIZE - startoff;
			}
			if (n > count)
				n = count;
		}
		n -= copy_to_user(buf, start < page ? page : start, n);
		if (n == 0) {
			if (retval == 0)
				retval = -EFAULT;
			break;
		}
		pos += start < page ? (unsigned long)start : n;
		nbytes -= n;
		buf += n;
		retval += n;
	}
	free_page((unsigned long)page);
	*ppos = pos;
	return retval;
}

/* The proc_ops behind every layer entry: each call goes where the entry says now. */
static int __maybe_unused compat35_pde_open(struct inode *inode, struct file *file)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	return e->proc_fops && e->proc_fops->open ? e->proc_fops->open(inode, file) : 0;
}

static ssize_t __maybe_unused compat35_pde_read(struct file *file, char __user *buf, size_t n, loff_t *ppos)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	if (e->proc_fops)
		return e->proc_fops->read ? e->proc_fops->read(file, buf, n, ppos) : -EINVAL;
	return compat35_read_proc(e, buf, n, ppos);
}

static ssize_t __maybe_unused compat35_pde_write(struct file *file, const char __user *buf, size_t n, loff_t *ppos)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	if (e->proc_fops)
		return e->proc_fops->write ? e->proc_fops->write(file, buf, n, ppos) : -EINVAL;
	/* 3.5's proc_file_write: the offset is not looked at. */
	return e->write_proc ? e->write_proc(file, buf, n, e->data) : -EIO;
}

static loff_t __maybe_unused compat35_pde_lseek(struct file *file, loff_t offset, int whence)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	if (e->proc_fops)
		return e->proc_fops->llseek ? e->proc_fops->llseek(file, offset, whence) : default_llseek(file, offset, whence);
	/* 3.5's proc_file_lseek. */
	switch (whence) {
	case SEEK_CUR:
		offset += file->f_pos;
		fallthrough;
	case SEEK_SET:
		if (offset < 0 || offset > COMPAT35_MAX_NON_LFS)
			return -EINVAL;
		file->f_pos = offset;
		return offset;
	}
	return -EINVAL;
}

static int __maybe_unused compat35_pde_release(struct inode *inode, struct file *file)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	return e->proc_fops && e->proc_fops->release ? e->proc_fops->release(inode, file) : 0;
}

static __poll_t __maybe_unused compat35_pde_poll(struct file *file, struct poll_table_struct *pt)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	return e->proc_fops && e->proc_fops->poll ? e->proc_fops->poll(file, pt) : DEFAULT_POLLMASK;
}

static long __maybe_unused compat35_pde_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	return e->proc_fops && e->proc_fops->unlocked_ioctl ? e->proc_fops->unlocked_ioctl(file, cmd, arg) : -ENOTTY;
}

static int __maybe_unused compat35_pde_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct proc_dir_entry *e = compat35_pde_of(file);

	/* 3.5's proc_reg_mmap: -EIO without one. */
	return e->proc_fops && e->proc_fops->mmap ? e->proc_fops->mmap(file, vma) : -EIO;
}

static const struct proc_ops compat35_pde_ops __maybe_unused = {
	.proc_open = compat35_pde_open,
	.proc_read = compat35_pde_read,
	.proc_write = compat35_pde_write,
	.proc_lseek = compat35_pde_lseek,
	.proc_release = compat35_pde_release,
	.proc_poll = compat35_pde_poll,
	.proc_ioctl = compat35_pde_ioctl,
	.proc_mmap = compat35_pde_mmap,
};

/* A layer entry with a real one behind it; NULL, as on 3.5, when it cannot be made. */
static inline struct proc_dir_entry *
compat35_new_pde(const char *name, umode_t mode, struct proc_dir_entry *parent, const struct file_operations *fops, void *data)
{
	struct proc_dir_entry *e;

	e = kzalloc(sizeof(*e) + strlen(name) + 1, GFP_KERNEL);
	if (!e)
		return NULL;
	strcpy(e->name, name);
	e->mode = mode;
	e->parent = parent;
	e->proc_fops = fops;
	e->data = data;
	/* Listed first, so that a parent check during creation already knows it. */
	spin_lock(&compat35_pde_lock);
	list_add(&e->compat35_node, &compat35_pdes);
	spin_unlock(&compat35_pde_lock);
	e->compat35_real = (proc_create_data)(name, mode, compat35_pde_real(parent), &compat35_pde_ops, e);
	if (!e->compat35_real) {
		spin_lock(&compat35_pde_lock);
		list_del(&e->compat35_node);
		spin_unlock(&compat35_pde_lock);
		kfree(e);
		return NULL;
	}
	return e;
}

/* 3.5's create_proc_entry(): a directory for S_IFDIR (the kernel's own), else a file. */
static inline struct proc_dir_entry *
compat35_create_proc_entry(const char *name, umode_t mode, struct proc_dir_entry *parent)
{
	if (S_ISDIR(mode))
		return (proc_mkdir_mode)(name, mode & S_IALLUGO, compat35_pde_real(parent));
	return compat35_new_pde(name, mode, parent, NULL, NULL);
}

static inline struct proc_dir_entry *
compat35_create_proc_read_entry(const char *name, umode_t mode, struct proc_dir_entry *parent, read_proc_t *read_proc, void *data)
{
	struct proc_dir_entry *e = compat35_create_proc_entry(name, mode, parent);

	if (e && compat35_pde_ours(e)) {
		e->read_proc = read_proc;
		e->data = data;
	}
	return e;
}

/* Takes the layer's entry `name` under `parent` off the list; NULL if there is none. */
static inline struct proc_dir_entry *compat35_pde_unlist(const char *name, struct proc_dir_entry *parent, struct proc_dir_entry *which)
{
	struct proc_dir_entry *e, *found = NULL;

	spin_lock(&compat35_pde_lock);
	list_for_each_entry(e, &compat35_pdes, compat35_node) {
		if (which ? e == which : e->parent == parent && !strcmp(e->name, name)) {
			list_del(&e->compat35_node);
			found = e;
			break;
		}
	}
	spin_unlock(&compat35_pde_lock);
	return found;
}

static inline void compat35_remove_proc_entry(const char *name, struct proc_dir_entry *parent)
{
	struct proc_dir_entry *e = compat35_pde_unlist(name, parent, NULL);

	/* The kernel's remove waits for readers and writers to leave, so the object can go. */
	(remove_proc_entry)(name, compat35_pde_real(parent));
	kfree(e);
}

static inline void compat35_proc_remove(struct proc_dir_entry *p)
{
	struct proc_dir_entry *e = compat35_pde_ours(p) ? compat35_pde_unlist(NULL, NULL, p) : NULL;

	(proc_remove)(e ? e->compat35_real : p);
	kfree(e);
}

static inline void *compat35_pde_data(const struct inode *inode)
{
	void *d = (pde_data)(inode);

	return compat35_pde_ours(d) ? ((struct proc_dir_entry *)d)->data : d;
}

static inline struct proc_dir_entry *compat35_PDE(const struct inode *inode)
{
	void *d = (pde_data)(inode);

	/* Only the layer's entries have 3.5's fields to show. */
	WARN_ONCE(!compat35_pde_ours(d), "compat35: PDE() of a proc entry not made by create_proc_entry() or proc_create() with file_operations\n");
	return compat35_pde_ours(d) ? d : NULL;
}

/*
 * proc_create(_data) given file_operations (3.5) or proc_ops (5.6 on).
 *
 * The mark is GCC's `warning` attribute, which fires at a call that is
 * still there after optimisation, so only where _Generic chose this
 * helper: `deprecated` (or a _Pragma) would fire in the association that
 * was not chosen too, marking modules that pass proc_ops. noinline keeps
 * the call there to be seen.
 */
static noinline __maybe_unused __attribute__((warning("linux-3.5 API: proc-fops"))) struct proc_dir_entry *
compat35_proc_create_fops(const char *name, umode_t mode, struct proc_dir_entry *parent, const struct file_operations *fops, void *data)
{
	return compat35_new_pde(name, mode, parent, fops, data);
}

static inline struct proc_dir_entry *
compat35_proc_create_ops(const char *name, umode_t mode, struct proc_dir_entry *parent, const struct proc_ops *ops, void *data)
{
	return (proc_create_data)(name, mode, compat35_pde_real(parent), ops, data);
}

#define proc_create_data(name, mode, parent, ops, data)                           \
	_Generic((ops),                                                           \
		 const struct file_operations *: compat35_proc_create_fops,       \
		 struct file_operations *: compat35_proc_create_fops,             \
		 default: compat35_proc_create_ops)((name), (mode), (parent), (ops), (data))
#define proc_create(name, mode, parent, ops) proc_create_data(name, mode, parent, ops, NULL)

#define create_proc_entry(name, mode, parent) \
	({ COMPAT35_USED_create_proc_entry compat35_create_proc_entry((name), (mode), (parent)); })
#define create_proc_read_entry(name, mode, parent, read, data) \
	({ COMPAT35_USED_create_proc_entry compat35_create_proc_read_entry((name), (mode), (parent), (read), (data)); })
#define PDE(inode) ({ COMPAT35_USED_create_proc_entry compat35_PDE(inode); })
#define PDE_DATA(inode) compat35_pde_data(inode)
#define pde_data(inode) compat35_pde_data(inode)
#define remove_proc_entry(name, parent) compat35_remove_proc_entry((name), (parent))
#define proc_remove(p) compat35_proc_remove(p)
#define proc_mkdir(name, parent) (proc_mkdir)((name), compat35_pde_real(parent))
#define proc_mkdir_mode(name, mode, parent) (proc_mkdir_mode)((name), (mode), compat35_pde_real(parent))
#define proc_mkdir_data(name, mode, parent, data) (proc_mkdir_data)((name), (mode), compat35_pde_real(parent), (data))
#define proc_symlink(name, parent, dest) (proc_symlink)((name), compat35_pde_real(parent), (dest))
#define remove_proc_subtree(name, parent) (remove_proc_subtree)((name), compat35_pde_real(parent))
#define proc_set_size(p, size) (proc_set_size)(compat35_pde_real(p), (size))
#define proc_set_user(p, uid, gid) (proc_set_user)(compat35_pde_real(p), (uid), (gid))

#endif /* COMPAT35_PROC_H */
