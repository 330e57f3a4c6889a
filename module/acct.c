// SPDX-License-Identifier: GPL-2.0
/*
 * cbm memory caps, as RLIMIT_MSGQUEUE counts POSIX message queue bytes per
 * user: every conversation charges its ring capacity and pinned copies to
 * its owner's uid and to a global total before allocating them.
 */
#include <linux/hashtable.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>

#include "acct.h"
#include "conv.h"

#define CBM_ACCT_BITS	6

/**
 * struct cbm_acct_user - bytes charged to one uid
 * @hnode: entry in cbm_acct_users
 * @uid: the owner
 * @bytes: bytes charged, never 0 while the entry exists
 */
struct cbm_acct_user {
	struct hlist_node hnode;
	kuid_t uid;
	u64 bytes;
};

/* Protects cbm_acct_users and cbm_acct_total */
static DEFINE_MUTEX(cbm_acct_lock);
static DEFINE_HASHTABLE(cbm_acct_users, CBM_ACCT_BITS);
static u64 cbm_acct_total;

static struct cbm_acct_user *cbm_acct_find(kuid_t uid)
{
	struct cbm_acct_user *u;

	lockdep_assert_held(&cbm_acct_lock);
	hash_for_each_possible(cbm_acct_users, u, hnode, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/* A cap lowered below what is held admits nothing more, evicts nothing */
static bool cbm_acct_fits(u64 held, u64 bytes, u64 cap)
{
	return held <= cap && bytes <= cap - held;
}

/**
 * cbm_acct_charge() - count bytes against the memory caps
 * @uid: the conversation's owner
 * @bytes: bytes about to be allocated
 *
 * Return: 0, -ENOSPC if a cap would be passed, or -ENOMEM.
 */
int cbm_acct_charge(kuid_t uid, u64 bytes)
{
	struct cbm_acct_user *u, *new;
	int err = 0;

	/* Allocated up front so that no allocation happens under the lock */
	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);
	if (!new)
		return -ENOMEM;

	mutex_lock(&cbm_acct_lock);
	u = cbm_acct_find(uid);
	if (!cbm_acct_fits(cbm_acct_total, bytes,
			   READ_ONCE(cbm_limits.max_total_bytes)) ||
	    !cbm_acct_fits(u ? u->bytes : 0, bytes,
			   READ_ONCE(cbm_limits.max_user_bytes))) {
		err = -ENOSPC;
	} else {
		if (!u) {
			u = new;
			new = NULL;
			u->uid = uid;
			hash_add(cbm_acct_users, &u->hnode, __kuid_val(uid));
		}
		u->bytes += bytes;
		cbm_acct_total += bytes;
	}
	mutex_unlock(&cbm_acct_lock);
	kfree(new);
	return err;
}

/**
 * cbm_acct_uncharge() - give back bytes charged by cbm_acct_charge()
 * @uid: the owner they were charged to
 * @bytes: bytes freed
 */
void cbm_acct_uncharge(kuid_t uid, u64 bytes)
{
	struct cbm_acct_user *u;

	mutex_lock(&cbm_acct_lock);
	u = cbm_acct_find(uid);
	if (!WARN_ON_ONCE(!u || u->bytes < bytes)) {
		u->bytes -= bytes;
		cbm_acct_total -= bytes;
		if (!u->bytes) {
			hash_del(&u->hnode);
			kfree(u);
		}
	}
	mutex_unlock(&cbm_acct_lock);
}

/**
 * cbm_acct_teardown() - check at module unload that everything was given
 * back
 */
void cbm_acct_teardown(void)
{
	mutex_lock(&cbm_acct_lock);
	WARN_ON(cbm_acct_total || !hash_empty(cbm_acct_users));
	mutex_unlock(&cbm_acct_lock);
}
