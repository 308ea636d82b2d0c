/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A driver's mmap() as 3.5 wrote it: `vma->vm_flags |= VM_IO | VM_RESERVED`.
 *
 * - VM_RESERVED went in 3.7 ("mm: kill vma flag VM_RESERVED"); its uses
 *   became VM_DONTEXPAND | VM_DONTDUMP, which is its value here.
 * - vma->vm_flags became a const member in 6.3 (written only through
 *   vm_flags_set() and friends); it shares a union with the writable
 *   __vm_flags. The module's `vm_flags` is that member: a write reaches
 *   the same word, as on 3.5 (a driver's mmap runs with the mmap lock
 *   held for writing, before the VMA is in the tree, as vm_flags_set()
 *   requires).
 *
 * The renaming is a macro on the word, so every kernel header that names
 * `vm_flags` is read first, with the kernel's meaning (later includes of
 * them are no-ops); a kernel header read later that named it would see
 * the renamed word, as the module does. Each use in the module is marked,
 * a read too (a read still builds on 6.12; a write must become
 * vm_flags_set()).
 */
#ifndef COMPAT35_VM_FLAGS_H
#define COMPAT35_VM_FLAGS_H

#include <linux/mm.h>
#include <linux/mm_types.h>
#include <linux/mm_inline.h>
#include <linux/mman.h>
#include <linux/vmalloc.h>
#include <linux/pgtable.h>
#include <linux/sched/mm.h>
#include <linux/huge_mm.h>
#include <linux/hugetlb.h>
#include <linux/hugetlb_inline.h>
#include <linux/khugepaged.h>
#include <linux/ksm.h>
#include <linux/rmap.h>
#include <linux/userfaultfd_k.h>
#include <linux/dax.h>
#include <asm/cacheflush.h>

#define VM_RESERVED (COMPAT35_USED_vm_flags (VM_DONTEXPAND | VM_DONTDUMP))
#define vm_flags COMPAT35_USED_vm_flags __vm_flags

#endif
