/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm memory caps: bytes held by conversations, in total and per owner
 * uid, against the max_total_bytes and max_user_bytes module parameters.
 */
#ifndef _CBM_ACCT_H
#define _CBM_ACCT_H

#include <linux/types.h>
#include <linux/uidgid.h>

int cbm_acct_charge(kuid_t uid, u64 bytes);
void cbm_acct_uncharge(kuid_t uid, u64 bytes);
void cbm_acct_teardown(void);

#endif /* _CBM_ACCT_H */
