/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm compat: the few kernel API differences between the versions cbm
 * builds against (6.1 now, 6.12 later). Kbuild defines a CBM_HAVE_* macro
 * for each newer API it finds in the kernel's headers; nothing else in
 * module/ cares which kernel it is.
 */
#ifndef _CBM_COMPAT_H
#define _CBM_COMPAT_H

#include <linux/mm.h>

/* 6.3 made vma->vm_flags read-only and added helpers to change it */
#ifndef CBM_HAVE_VM_FLAGS_SET
static inline void cbm_vm_flags_set(struct vm_area_struct *vma,
				    vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void cbm_vm_flags_clear(struct vm_area_struct *vma,
				      vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#else
static inline void cbm_vm_flags_set(struct vm_area_struct *vma,
				    vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}

static inline void cbm_vm_flags_clear(struct vm_area_struct *vma,
				      vm_flags_t flags)
{
	vm_flags_clear(vma, flags);
}
#endif

#endif /* _CBM_COMPAT_H */
