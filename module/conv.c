// SPDX-License-Identifier: GPL-2.0
/*
 * cbm conversations: the name table, ownership and permissions, readers,
 * overflow policy (lossy eviction or lossless back-pressure), windows and
 * pinned messages, resizing, restoring saved messages, and waiting.
 *
 * The ring numbers its records consecutively; the only holes in a
 * conversation are below the ring, between pinned copies. A restore keeps
 * it so: it lets the numbering jump only when every record in the ring is
 * pinned (cbm_conv_skip_to()).
 *
 * Lock order: cbm_ns_lock, then a conversation's lock, then the memory
 * caps' lock (acct.c). A conversation's lock is held across user copies,
 * which may take mmap_lock, so mmap() (under mmap_lock) takes only the
 * conversation's map_lock, which nests inside both.
 *
 * Events (events.h) are sent with a conversation's lock held, or with no
 * lock: netlink.c then takes only its cbm_nl_lock and netlink's own locks,
 * which never wrap a cbm lock, so they nest inside ours. No event is sent
 * under cbm_ns_lock, which every lookup needs: it stays held briefly.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/log2.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/stringhash.h>
#include <linux/timekeeping.h>
#include <linux/user_namespace.h>

#include "acct.h"
#include "conv.h"
#include "events.h"

#define CBM_NS_BITS	8
#define CBM_RING_SIZE_MAX	(1UL << (BITS_PER_LONG - 1))
/* Memory a user can make us allocate: charged, and failing without OOM */
#define CBM_GFP			(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL)

/* The work re-arms itself at least this often, keeping jiffies sane */
#define CBM_ARM_MAX_NS		(3600ULL * NSEC_PER_SEC)
#define CBM_EVICT_INTERVAL_NS	(CBM_NL_EVICT_INTERVAL_MS * NSEC_PER_MSEC)

/* What cbm_conv_wake() wakes, after the conversation's lock is dropped */
#define CBM_WAKE_READERS	0x1U
#define CBM_WAKE_WRITERS	0x2U
#define CBM_WAKE_CONFIG		0x4U

/* Named conversations, by name; protected by cbm_ns_lock */
static DEFINE_HASHTABLE(cbm_ns, CBM_NS_BITS);
static DEFINE_MUTEX(cbm_ns_lock);
/* Conversations alive, named or not, against max_conversations */
static atomic_t cbm_nr_convs = ATOMIC_INIT(0);
/* Never unlinked, so valid from cbm_conv_setup() to cbm_conv_teardown() */
static struct cbm_conv *cbm_default;

static u32 cbm_name_hash(const char *name)
{
	return full_name_hash(NULL, name, strlen(name));
}

static bool cbm_name_char_valid(char c)
{
	/* ASCII only: the kernel's isalnum() also accepts Latin-1 letters */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/**
 * cbm_conv_name_valid() - check a conversation name
 * @name: a buffer of CBM_NAME_MAX bytes
 *
 * Return: true if @name is NUL-terminated within CBM_NAME_MAX bytes, not
 * empty, does not start with '.' or '-', and uses only [A-Za-z0-9_.-].
 */
bool cbm_conv_name_valid(const char *name)
{
	size_t len = strnlen(name, CBM_NAME_MAX);
	size_t i;

	if (!len || len == CBM_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < len; i++)
		if (!cbm_name_char_valid(name[i]))
			return false;
	return true;
}

/* Largest payload a message may have now */
static u32 cbm_conv_max_payload(const struct cbm_conv *conv)
{
	return min_t(u64, READ_ONCE(cbm_limits.max_msg_size),
		     conv->ring.size - sizeof(struct cbm_record));
}

/* Round a requested capacity as a ring needs it; 0 selects the default */
static int cbm_conv_round_capacity(u64 *capacity)
{
	unsigned long max = READ_ONCE(cbm_limits.max_capacity);
	u64 size = *capacity;

	if (!size)
		size = READ_ONCE(cbm_limits.default_capacity);
	/* Whatever max_capacity says, the rounding must not overflow */
	if (size > max || size > CBM_RING_SIZE_MAX)
		return -E2BIG;
	size = roundup_pow_of_two(max_t(u64, size, PAGE_SIZE));
	if (size > max)
		return -E2BIG;
	*capacity = size;
	return 0;
}

/* Allocate ring memory, charging the creator's memory cgroup */
static int cbm_conv_ring_alloc(struct cbm_conv *conv, struct cbm_ring *ring,
			       u64 size)
{
	struct mem_cgroup *old = set_active_memcg(conv->memcg);
	int err = cbm_ring_init(ring, size, CBM_GFP);

	set_active_memcg(old);
	return err;
}

/* The header page mapped readers watch, charged as the ring is */
static int cbm_conv_map_alloc(struct cbm_conv *conv)
{
	struct mem_cgroup *old = set_active_memcg(conv->memcg);
	struct cbm_map_header *hdr;

	conv->map_page = alloc_page(CBM_GFP | __GFP_ZERO);
	set_active_memcg(old);
	if (!conv->map_page)
		return -ENOMEM;
	hdr = page_address(conv->map_page);
	hdr->hdr_size = sizeof(*hdr);
	cbm_ring_publish(&conv->ring, hdr);
	return 0;
}

static void cbm_conv_work(struct work_struct *work);

static struct cbm_conv *cbm_conv_create(const char *name,
					const struct cbm_create *args,
					u32 state_flags)
{
	struct cbm_conv *conv;
	u64 size = args->capacity;
	int err;

	err = cbm_conv_round_capacity(&size);
	if (err)
		return ERR_PTR(err);

	if (atomic_inc_return(&cbm_nr_convs) >
	    READ_ONCE(cbm_limits.max_conversations)) {
		err = -ENOSPC;
		goto err_uncount;
	}

	conv = kzalloc(sizeof(*conv), CBM_GFP);
	if (!conv) {
		err = -ENOMEM;
		goto err_uncount;
	}
	if (state_flags & CBM_CONV_DEFAULT) {
		conv->uid = GLOBAL_ROOT_UID;
		conv->gid = GLOBAL_ROOT_GID;
	} else {
		conv->uid = current_fsuid();
		conv->gid = current_fsgid();
	}
	err = cbm_acct_charge(conv->uid, size);
	if (err)
		goto err_free_conv;
	conv->charged = size;
	conv->memcg = get_mem_cgroup_from_mm(current->mm);
	err = cbm_conv_ring_alloc(conv, &conv->ring, size);
	if (err)
		goto err_uncharge;
	err = cbm_conv_map_alloc(conv);
	if (err)
		goto err_free_ring;

	kref_init(&conv->ref);
	mutex_init(&conv->lock);
	mutex_init(&conv->map_lock);
	INIT_LIST_HEAD(&conv->readers);
	INIT_LIST_HEAD(&conv->pins);
	INIT_DELAYED_WORK(&conv->work, cbm_conv_work);
	init_waitqueue_head(&conv->rd_wait);
	init_waitqueue_head(&conv->wr_wait);
	conv->flags = args->flags | state_flags;
	conv->mode = args->mode;
	strscpy(conv->name, name, sizeof(conv->name));
	return conv;

err_free_ring:
	cbm_ring_destroy(&conv->ring);
err_uncharge:
	mem_cgroup_put(conv->memcg);
	cbm_acct_uncharge(conv->uid, size);
err_free_conv:
	kfree(conv);
err_uncount:
	atomic_dec(&cbm_nr_convs);
	return ERR_PTR(err);
}

static void cbm_conv_release(struct kref *ref)
{
	struct cbm_conv *conv = container_of(ref, struct cbm_conv, ref);
	struct cbm_pinned *pin, *tmp;

	/* Nobody else can arm the work now: no file and no name is left */
	cancel_delayed_work_sync(&conv->work);
	list_for_each_entry_safe(pin, tmp, &conv->pins, node)
		kfree(pin);
	cbm_ring_destroy(&conv->ring);
	/* Mappings still holding the pages keep them: the put is theirs too */
	__free_page(conv->map_page);
	cbm_acct_uncharge(conv->uid, conv->charged);
	mem_cgroup_put(conv->memcg);
	mutex_destroy(&conv->map_lock);
	mutex_destroy(&conv->lock);
	kfree(conv);
	atomic_dec(&cbm_nr_convs);
}

/**
 * cbm_conv_put() - drop a reference to a conversation
 * @conv: the conversation; freed with its last reference
 */
void cbm_conv_put(struct cbm_conv *conv)
{
	kref_put(&conv->ref, cbm_conv_release);
}

/* Checked as mq_open() checks a queue: owner, then group, then others */
static int cbm_conv_permission(const struct cbm_conv *conv, int may)
{
	umode_t mode = conv->mode;

	if (uid_eq(current_fsuid(), conv->uid))
		mode >>= 6;
	else if (in_group_p(conv->gid))
		mode >>= 3;
	if (!(may & (MAY_READ | MAY_WRITE) & ~mode))
		return 0;
	if (capable(CAP_DAC_OVERRIDE))
		return 0;
	return -EACCES;
}

static struct cbm_conv *cbm_ns_find(const char *name)
{
	struct cbm_conv *conv;

	lockdep_assert_held(&cbm_ns_lock);
	hash_for_each_possible(cbm_ns, conv, hnode, cbm_name_hash(name))
		if (!strcmp(conv->name, name))
			return conv;
	return NULL;
}

/**
 * cbm_conv_open() - find or create a named conversation
 * @name: a name that passed cbm_conv_name_valid()
 * @create: create the conversation if it does not exist
 * @excl: with @create, fail if it exists
 * @args: settings for a conversation created here
 * @may: MAY_READ and/or MAY_WRITE, checked against an existing one
 * @convp: set to the conversation, with a reference for the caller
 *
 * Return: 0 or a negative errno (-ENOENT, -EEXIST, -EACCES, -E2BIG,
 * -ENOSPC, -ENOMEM).
 */
int cbm_conv_open(const char *name, bool create, bool excl,
		  const struct cbm_create *args, int may,
		  struct cbm_conv **convp)
{
	struct cbm_conv *conv;
	int err = 0;

	mutex_lock(&cbm_ns_lock);
	conv = cbm_ns_find(name);
	if (conv) {
		err = excl ? -EEXIST : cbm_conv_permission(conv, may);
		if (!err)
			kref_get(&conv->ref);
	} else if (!create) {
		err = -ENOENT;
	} else {
		conv = cbm_conv_create(name, args, 0);
		if (IS_ERR(conv)) {
			err = PTR_ERR(conv);
		} else {
			/* The initial reference belongs to the name */
			kref_get(&conv->ref);
			hash_add(cbm_ns, &conv->hnode, cbm_name_hash(name));
			/*
			 * Under cbm_ns_lock, so that listeners hear of a name
			 * being created and unlinked in the order it was
			 */
			cbm_event_created(conv);
		}
	}
	mutex_unlock(&cbm_ns_lock);

	if (err)
		return err;
	*convp = conv;
	return 0;
}

/**
 * cbm_conv_open_anon() - create an anonymous conversation
 * @args: its settings
 * @convp: set to the conversation, whose only reference is the caller's
 *
 * Return: 0 or a negative errno (-E2BIG, -ENOSPC, -ENOMEM).
 */
int cbm_conv_open_anon(const struct cbm_create *args, struct cbm_conv **convp)
{
	struct cbm_conv *conv = cbm_conv_create("", args, CBM_CONV_ANON);

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	*convp = conv;
	return 0;
}

/**
 * cbm_conv_open_default() - the ``default`` conversation
 * @may: MAY_READ and/or MAY_WRITE
 * @convp: set to the conversation, with a reference for the caller
 *
 * Return: 0 or -EACCES.
 */
int cbm_conv_open_default(int may, struct cbm_conv **convp)
{
	int err = cbm_conv_permission(cbm_default, may);

	if (err)
		return err;
	kref_get(&cbm_default->ref);
	*convp = cbm_default;
	return 0;
}

static struct cbm_map_header *cbm_conv_map_hdr(const struct cbm_conv *conv)
{
	return page_address(conv->map_page);
}

static void cbm_conv_flush_evicted(struct cbm_conv *conv);

/*
 * Remove @conv's name. The caller holds cbm_ns_lock and then drops the
 * name's reference. The unlink event goes out under cbm_ns_lock, as the
 * creation event does, so that listeners hear of a name's creation and
 * unlinking in the order they happened, even if it is reused at once.
 */
static void cbm_ns_unlink(struct cbm_conv *conv)
{
	struct cbm_map_header *hdr = cbm_conv_map_hdr(conv);

	lockdep_assert_held(&cbm_ns_lock);
	hash_del(&conv->hnode);
	mutex_lock(&conv->lock);
	/* Listeners get the last evictions before the unlink event */
	cbm_conv_flush_evicted(conv);
	WRITE_ONCE(conv->unlinked, true);
	WRITE_ONCE(hdr->flags, hdr->flags | CBM_MAP_UNLINKED);
	conv->room_gen++;
	mutex_unlock(&conv->lock);
	wake_up_interruptible_poll(&conv->rd_wait, EPOLLHUP);
	wake_up_interruptible_poll(&conv->wr_wait, EPOLLHUP);
	cbm_event_unlinked(conv);
}

/**
 * cbm_conv_unlink() - remove a name
 * @name: a name that passed cbm_conv_name_valid()
 *
 * Bound files keep the conversation; they see EPOLLHUP, writes fail with
 * -EPIPE and reads end once drained.
 *
 * Return: 0 or a negative errno (-ENOENT, -EBUSY for ``default``, -EACCES
 * unless the caller owns it or has CAP_SYS_ADMIN).
 */
int cbm_conv_unlink(const char *name)
{
	struct cbm_conv *conv = cbm_conv_find(name);
	int err;

	if (!conv)
		return -ENOENT;
	if (!uid_eq(current_fsuid(), conv->uid) && !capable(CAP_SYS_ADMIN) &&
	    conv != cbm_default)
		err = -EACCES;
	else
		err = cbm_conv_remove(conv);
	cbm_conv_put(conv);
	return err;
}

/**
 * cbm_conv_may_read() - whether the caller may read a conversation
 * @conv: the conversation
 *
 * Return: true for its owner and for whoever its mode lets read it.
 */
bool cbm_conv_may_read(const struct cbm_conv *conv)
{
	return uid_eq(current_fsuid(), conv->uid) ||
	       !cbm_conv_permission(conv, MAY_READ);
}

/**
 * cbm_conv_find() - look up a named conversation
 * @name: a name that passed cbm_conv_name_valid()
 *
 * Return: the conversation, with a reference for the caller, or NULL.
 */
struct cbm_conv *cbm_conv_find(const char *name)
{
	struct cbm_conv *conv;

	mutex_lock(&cbm_ns_lock);
	conv = cbm_ns_find(name);
	if (conv)
		kref_get(&conv->ref);
	mutex_unlock(&cbm_ns_lock);
	return conv;
}

/**
 * cbm_conv_remove() - unlink a conversation found by cbm_conv_find()
 * @conv: the conversation; the caller has checked it may change it
 *
 * Unlinks @conv itself, not whatever has its name now, so a permission
 * check made on @conv stays valid.
 *
 * Return: 0 or a negative errno (-ENOENT if @conv is no longer linked,
 * -EBUSY for ``default``).
 */
int cbm_conv_remove(struct cbm_conv *conv)
{
	int err = 0;

	mutex_lock(&cbm_ns_lock);
	if (cbm_ns_find(conv->name) != conv)
		err = -ENOENT;
	else if (conv == cbm_default)
		err = -EBUSY;
	else
		cbm_ns_unlink(conv);
	mutex_unlock(&cbm_ns_lock);
	if (err)
		return err;

	/* The name's reference; the caller still holds its own */
	cbm_conv_put(conv);
	return 0;
}

/**
 * cbm_conv_collect() - named conversations after a name, in name order
 * @after: only names that sort after this one (strcmp() order); "" for all
 * @convs: filled with the first @max of them, each with a reference
 * @max: room in @convs, at least 1
 *
 * A dump resumes from the last name it reported, so conversations created
 * or unlinked between its parts neither repeat nor shift the others. The
 * table is scanned whole each time, keeping the @max smallest names by
 * insertion: a few microseconds per thousand conversations.
 *
 * Return: the number of conversations in @convs.
 */
unsigned int cbm_conv_collect(const char *after, struct cbm_conv **convs,
			      unsigned int max)
{
	struct cbm_conv *conv;
	unsigned int n = 0, i;
	int bkt;

	mutex_lock(&cbm_ns_lock);
	hash_for_each(cbm_ns, bkt, conv, hnode) {
		if (strcmp(conv->name, after) <= 0 ||
		    (n == max && strcmp(conv->name, convs[n - 1]->name) >= 0))
			continue;
		/* When full, the largest so far drops out */
		i = n < max ? n++ : max - 1;
		for (; i && strcmp(convs[i - 1]->name, conv->name) > 0; i--)
			convs[i] = convs[i - 1];
		convs[i] = conv;
	}
	for (i = 0; i < n; i++)
		kref_get(&convs[i]->ref);
	mutex_unlock(&cbm_ns_lock);
	return n;
}

/**
 * cbm_conv_setup() - create the ``default`` conversation
 * @default_mode: its permission bits
 *
 * Return: 0 or a negative errno.
 */
int cbm_conv_setup(umode_t default_mode)
{
	struct cbm_create args = { .mode = default_mode };
	struct cbm_conv *conv;

	conv = cbm_conv_create(CBM_DEFAULT_NAME, &args, CBM_CONV_DEFAULT);
	if (IS_ERR(conv))
		return PTR_ERR(conv);

	mutex_lock(&cbm_ns_lock);
	hash_add(cbm_ns, &conv->hnode, cbm_name_hash(conv->name));
	mutex_unlock(&cbm_ns_lock);
	cbm_default = conv;
	return 0;
}

/**
 * cbm_conv_teardown() - free every named conversation at module unload
 *
 * Every open file holds a module reference, so no file is left and the
 * names hold the last references.
 */
void cbm_conv_teardown(void)
{
	struct cbm_conv *conv;
	struct hlist_node *tmp;
	int bkt;

	mutex_lock(&cbm_ns_lock);
	hash_for_each_safe(cbm_ns, bkt, tmp, conv, hnode) {
		hash_del(&conv->hnode);
		WARN_ON(kref_read(&conv->ref) != 1);
		cbm_conv_put(conv);
	}
	mutex_unlock(&cbm_ns_lock);
	cbm_default = NULL;
	WARN_ON(atomic_read(&cbm_nr_convs));
}

static void cbm_wake_queue(wait_queue_head_t *wq, __poll_t events)
{
	/* Pairs with the barrier in prepare_to_wait() of a sleeper */
	if (wq_has_sleeper(wq))
		wake_up_interruptible_poll(wq, events);
}

static void cbm_conv_wake(struct cbm_conv *conv, unsigned int what)
{
	__poll_t pri = what & CBM_WAKE_CONFIG ? EPOLLPRI : 0;

	if (what & (CBM_WAKE_READERS | CBM_WAKE_CONFIG))
		cbm_wake_queue(&conv->rd_wait, EPOLLIN | EPOLLRDNORM | pri);
	if (what & (CBM_WAKE_WRITERS | CBM_WAKE_CONFIG))
		cbm_wake_queue(&conv->wr_wait, EPOLLOUT | EPOLLWRNORM | pri);
}

/* Only the owner or an administrator changes a conversation for everybody */
static int cbm_conv_may_configure(const struct cbm_conv *conv)
{
	if (uid_eq(current_fsuid(), conv->uid) || capable(CAP_SYS_ADMIN))
		return 0;
	return -EPERM;
}

/*
 * The stored messages are the pinned copies older than the ring's first
 * record, then the ring's records. cbm_stored_next() walks them in
 * sequence order.
 */
struct cbm_stored_iter {
	const struct cbm_pinned *pin;
	u64 seq;
	u64 pos;
};

static const struct cbm_pinned *cbm_pin_next(const struct cbm_conv *conv,
					     const struct cbm_pinned *pin)
{
	if (list_is_last(&pin->node, &conv->pins))
		return NULL;
	return list_next_entry(pin, node);
}

static void cbm_stored_start(const struct cbm_conv *conv,
			     struct cbm_stored_iter *it)
{
	it->pin = list_empty(&conv->pins) ? NULL :
		  list_first_entry(&conv->pins, struct cbm_pinned, node);
	it->seq = conv->ring.first_seq;
	it->pos = conv->ring.tail;
}

static const struct cbm_record *cbm_stored_next(const struct cbm_conv *conv,
						struct cbm_stored_iter *it)
{
	const struct cbm_record *rec;

	if (it->pin && it->pin->rec.seq < conv->ring.first_seq) {
		rec = &it->pin->rec;
		it->pin = cbm_pin_next(conv, it->pin);
		return rec;
	}
	if (it->seq == conv->ring.next_seq)
		return NULL;
	rec = cbm_ring_rec(&conv->ring, it->pos);
	it->pos += CBM_RECORD_SPACE(rec->len);
	it->seq++;
	return rec;
}

/* The oldest pinned copy at or after @seq, or NULL */
static struct cbm_pinned *cbm_pin_find(const struct cbm_conv *conv, u64 seq)
{
	struct cbm_pinned *pin;

	list_for_each_entry(pin, &conv->pins, node)
		if (pin->rec.seq >= seq)
			return pin;
	return NULL;
}

/*
 * The oldest stored message at or after @seq, which is older than the
 * ring's first record: a pinned copy, or the ring's first record.
 */
static u64 cbm_conv_next_stored(const struct cbm_conv *conv, u64 seq)
{
	const struct cbm_pinned *pin = cbm_pin_find(conv, seq);

	if (pin && pin->rec.seq < conv->ring.first_seq)
		return pin->rec.seq;
	return conv->ring.first_seq;
}

/* Pinned copies from @seq up to the ring's first record */
static u64 cbm_conv_pins_below(const struct cbm_conv *conv, u64 seq)
{
	const struct cbm_pinned *pin;
	u64 n = 0;

	/* The list is in sequence order */
	list_for_each_entry(pin, &conv->pins, node) {
		if (pin->rec.seq >= conv->ring.first_seq)
			break;
		n += pin->rec.seq >= seq;
	}
	return n;
}

static u64 cbm_conv_stored(const struct cbm_conv *conv)
{
	return cbm_conv_pins_below(conv, 0) +
	       conv->ring.next_seq - conv->ring.first_seq;
}

/* Move a reader to @seq, a stored sequence number or the next one */
static void cbm_reader_set(struct cbm_conv *conv, struct cbm_reader *reader,
			   u64 seq)
{
	if (seq >= conv->ring.first_seq)
		reader->pos = cbm_ring_pos(&conv->ring, seq, reader->seq,
					   reader->pos);
	reader->seq = seq;
}

/*
 * Where a reader's next read starts: past the holes below its floor, which
 * were gone before it came and are not losses.
 */
static u64 cbm_reader_start(const struct cbm_conv *conv,
			    const struct cbm_reader *reader)
{
	u64 seq = reader->seq;
	u64 next;

	while (seq < reader->floor && seq < conv->ring.first_seq) {
		next = cbm_conv_next_stored(conv, seq);
		if (next == seq)
			break;
		seq = min(next, reader->floor);
	}
	return seq;
}

/*
 * Messages a reader whose next read starts at @seq has lost and not been
 * told of yet: the holes from its floor on (pinned copies are not lost).
 */
static u64 cbm_reader_gap(const struct cbm_conv *conv,
			  const struct cbm_reader *reader, u64 seq)
{
	u64 first = conv->ring.first_seq;
	u64 from = max(seq, reader->floor);

	if (seq >= first)
		return 0;
	return first - from - cbm_conv_pins_below(conv, from);
}

/* Move a reader past the holes below its floor */
static void cbm_reader_skip(struct cbm_conv *conv, struct cbm_reader *reader)
{
	u64 start = cbm_reader_start(conv, reader);

	if (start != reader->seq)
		cbm_reader_set(conv, reader, start);
}

/**
 * cbm_reader_attach() - add a reader at the oldest stored message
 * @conv: the conversation
 * @reader: the reader
 * @lossless: hold back eviction, if the conversation is lossless
 */
void cbm_reader_attach(struct cbm_conv *conv, struct cbm_reader *reader,
		       bool lossless)
{
	mutex_lock(&conv->lock);
	reader->seq = cbm_conv_next_stored(conv, 0);
	reader->pos = conv->ring.tail;
	reader->floor = conv->ring.first_seq;
	reader->lost = 0;
	reader->lossless = lossless && (conv->flags & CBM_CONV_LOSSLESS);
	reader->pid = get_pid(task_tgid(current));
	list_add_tail(&reader->node, &conv->readers);
	conv->nr_readers++;
	if (reader->lossless)
		conv->nr_lossless++;
	mutex_unlock(&conv->lock);
}

/* Oldest sequence number a lossless reader still needs, U64_MAX if none */
static u64 cbm_conv_held_seq(const struct cbm_conv *conv)
{
	const struct cbm_reader *reader;
	u64 held = U64_MAX;

	lockdep_assert_held(&conv->lock);
	if (!conv->nr_lossless)
		return U64_MAX;
	list_for_each_entry(reader, &conv->readers, node)
		if (reader->lossless && reader->seq < held)
			held = reader->seq;
	return held;
}

/* Have the work run in @delay ns, unless it is due earlier already */
static void cbm_conv_arm_in(struct cbm_conv *conv, u64 delay)
{
	unsigned long at;

	lockdep_assert_held(&conv->lock);
	/* Round up: a work that runs early finds nothing due and re-arms */
	at = jiffies + nsecs_to_jiffies(min(delay, CBM_ARM_MAX_NS)) + 1;
	if (delayed_work_pending(&conv->work) &&
	    time_before_eq(conv->work_at, at))
		return;
	conv->work_at = at;
	mod_delayed_work(system_wq, &conv->work, at - jiffies);
}

/* Send the eviction event held back by the rate limit, if any */
static void cbm_conv_flush_evicted(struct cbm_conv *conv)
{
	lockdep_assert_held(&conv->lock);
	if (!conv->ev_pending)
		return;
	cbm_event_evicted(conv, conv->ev_pending);
	conv->ev_pending = 0;
	conv->ev_last = ktime_get_ns();
}

/*
 * Tell listeners that @n more messages were evicted: at once if the last
 * eviction event is CBM_NL_EVICT_INTERVAL_MS old, else summed into one
 * event that the work sends when the interval is over. Nothing is counted
 * while nobody listens, nor for an anonymous conversation, which netlink
 * does not report, nor once unlinked: the unlink event was the last.
 */
static void cbm_conv_note_evicted(struct cbm_conv *conv, u64 n)
{
	u64 now;

	lockdep_assert_held(&conv->lock);
	if (!n || (conv->flags & CBM_CONV_ANON) || conv->unlinked ||
	    !cbm_events_wanted())
		return;
	conv->ev_pending += n;
	now = ktime_get_ns();
	if (now - conv->ev_last >= CBM_EVICT_INTERVAL_NS)
		cbm_conv_flush_evicted(conv);
	else
		cbm_conv_arm_in(conv, conv->ev_last + CBM_EVICT_INTERVAL_NS -
				now);
}

/*
 * Drop the ring's records up to @evict_to. A pinned record only leaves the
 * ring (its copy stays stored); the others are evicted.
 */
static u64 cbm_conv_evict_to(struct cbm_conv *conv, u64 evict_to)
{
	struct cbm_ring *ring = &conv->ring;
	const struct cbm_record *rec;
	u64 n = 0;

	while (ring->first_seq < evict_to) {
		rec = cbm_ring_rec(ring, ring->tail);
		if (!cbm_record_pinned(rec)) {
			cbm_window_sub(&conv->wcount, rec);
			n++;
		}
		cbm_ring_evict(ring);
	}
	conv->evicted += n;
	cbm_conv_note_evicted(conv, n);
	return n;
}

/*
 * Find how many of the oldest records must go for @need free bytes, not
 * touching any unpinned one a lossless reader still needs. On success
 * *@evict_to is the first sequence number to keep.
 */
static bool cbm_conv_find_room(const struct cbm_conv *conv, u64 need,
			       u64 *evict_to)
{
	const struct cbm_ring *ring = &conv->ring;
	u64 room = ring->size - cbm_ring_used(ring);
	u64 seq = ring->first_seq;
	u64 pos = ring->tail;
	const struct cbm_record *rec;
	u64 held;

	if (room >= need) {
		*evict_to = seq;
		return true;
	}
	/* Only now look at the readers: most appends find free room */
	held = cbm_conv_held_seq(conv);
	while (room < need) {
		if (seq == ring->next_seq)
			return false;
		rec = cbm_ring_rec(ring, pos);
		if (seq >= held && !cbm_record_pinned(rec))
			return false;
		room += CBM_RECORD_SPACE(rec->len);
		pos += CBM_RECORD_SPACE(rec->len);
		seq++;
	}
	*evict_to = seq;
	return true;
}

/* The oldest unpinned record in the ring, or NULL; *@seqp is its seq */
static const struct cbm_record *
cbm_conv_oldest_unpinned(const struct cbm_conv *conv, u64 *seqp)
{
	const struct cbm_ring *ring = &conv->ring;
	const struct cbm_record *rec;
	u64 seq = ring->first_seq;
	u64 pos = ring->tail;

	for (; seq != ring->next_seq; seq++) {
		rec = cbm_ring_rec(ring, pos);
		if (!cbm_record_pinned(rec)) {
			*seqp = seq;
			return rec;
		}
		pos += CBM_RECORD_SPACE(rec->len);
	}
	return NULL;
}

/*
 * Evict what the window no longer keeps, oldest first, stopping at a
 * message a lossless reader still needs.
 *
 * Return: the number of messages evicted.
 */
static u64 cbm_conv_trim(struct cbm_conv *conv)
{
	const struct cbm_record *oldest;
	u64 held = 0, now, seq, n = 0;
	enum cbm_trim why;

	lockdep_assert_held(&conv->lock);
	if (!cbm_window_active(&conv->win))
		return 0;
	now = ktime_get_real_ns();
	while ((oldest = cbm_conv_oldest_unpinned(conv, &seq))) {
		why = cbm_window_trim(&conv->win, &conv->wcount, oldest, now);
		if (why == CBM_TRIM_NONE)
			break;
		/* Only now look at the readers; evicting does not move them */
		if (!n)
			held = cbm_conv_held_seq(conv);
		if (seq >= held)
			break;
		n += cbm_conv_evict_to(conv, seq + 1);
		if (why == CBM_TRIM_EXPIRED)
			conv->expired++;
	}
	if (n)
		conv->room_gen++;
	return n;
}

/*
 * Replace the ring with one of @size bytes, evicting the oldest records if
 * they do not fit. Caps are charged before, and given back after, so a
 * failure changes nothing.
 */
static int cbm_conv_resize_locked(struct cbm_conv *conv, u64 size,
				  u64 *evicted)
{
	struct cbm_ring *ring = &conv->ring;
	struct cbm_ring new, replaced;
	u64 old = ring->size;
	u64 evict_to;
	int err;

	lockdep_assert_held(&conv->lock);
	*evicted = 0;
	if (size == old)
		return 0;
	evict_to = ring->first_seq;
	if (cbm_ring_used(ring) > size &&
	    !cbm_conv_find_room(conv, old - size, &evict_to))
		return -EBUSY;
	if (size > old) {
		err = cbm_acct_charge(conv->uid, size - old);
		if (err)
			return err;
	}
	err = cbm_conv_ring_alloc(conv, &new, size);
	if (err) {
		if (size > old)
			cbm_acct_uncharge(conv->uid, size - old);
		return err;
	}

	*evicted = cbm_conv_evict_to(conv, evict_to);
	cbm_ring_move(&new, ring);
	replaced = *ring;
	mutex_lock(&conv->map_lock);
	*ring = new;
	cbm_ring_publish(ring, cbm_conv_map_hdr(conv));
	mutex_unlock(&conv->map_lock);
	/* Only our references go: mappings of the old pages keep theirs */
	cbm_ring_destroy(&replaced);
	if (size < old)
		cbm_acct_uncharge(conv->uid, old - size);
	conv->charged += size - old;
	conv->resizes++;
	conv->room_gen++;
	WRITE_ONCE(conv->cfg_gen, conv->cfg_gen + 1);
	cbm_autoresize_resized(&conv->autoresize, size, cbm_ring_used(ring),
			       ktime_get_ns());
	cbm_event_resized(conv);
	return 0;
}

/*
 * Let auto-resize look at the ring's usage, and resize if it says so. A
 * failed attempt still counts against the rate limit, so that a cap or a
 * memory cgroup at its limit is not hammered.
 *
 * Return: true if the ring was resized.
 */
static bool cbm_conv_autoresize(struct cbm_conv *conv, bool writer_waits)
{
	struct cbm_autoresize_state *st = &conv->autoresize;
	u64 now, size, evicted;

	lockdep_assert_held(&conv->lock);
	if (!(st->cfg.flags & CBM_AUTORESIZE_ON))
		return false;
	now = ktime_get_ns();
	size = cbm_autoresize_target(st, conv->ring.size,
				     cbm_ring_used(&conv->ring), writer_waits,
				     now);
	if (!size)
		return false;
	/* max_capacity may have been lowered since the bounds were set */
	if ((size < conv->ring.size ||
	     size <= READ_ONCE(cbm_limits.max_capacity)) &&
	    !cbm_conv_resize_locked(conv, size, &evicted))
		return true;
	st->last_resize = now;
	return false;
}

/*
 * Arm the work for the next thing that must happen without a caller:
 * the oldest unpinned message expiring, or an auto-resize coming due. A
 * message a lossless reader holds expires when the reader moves on, which
 * trims anyway.
 */
static void cbm_conv_arm(struct cbm_conv *conv)
{
	const struct cbm_record *oldest;
	u64 delay = U64_MAX;
	u64 seq, due, now;

	lockdep_assert_held(&conv->lock);
	oldest = conv->win.max_age_ns ? cbm_conv_oldest_unpinned(conv, &seq) :
					NULL;
	if (oldest && seq < cbm_conv_held_seq(conv)) {
		due = cbm_window_expiry(&conv->win, oldest);
		now = ktime_get_real_ns();
		if (due != U64_MAX)
			delay = due > now ? due - now : 0;
	}
	due = cbm_autoresize_deadline(&conv->autoresize, conv->ring.size);
	if (conv->ev_pending)
		due = min(due, conv->ev_last + CBM_EVICT_INTERVAL_NS);
	if (due != U64_MAX) {
		now = ktime_get_ns();
		delay = min(delay, due > now ? due - now : 0);
	}
	if (delay != U64_MAX)
		cbm_conv_arm_in(conv, delay);
}

static void cbm_conv_work(struct work_struct *work)
{
	struct cbm_conv *conv = container_of(to_delayed_work(work),
					     struct cbm_conv, work);
	unsigned int wake = 0;

	mutex_lock(&conv->lock);
	if (cbm_conv_trim(conv))
		wake |= CBM_WAKE_READERS | CBM_WAKE_WRITERS;
	if (cbm_conv_autoresize(conv, false))
		wake |= CBM_WAKE_CONFIG;
	if (conv->ev_pending &&
	    ktime_get_ns() - conv->ev_last >= CBM_EVICT_INTERVAL_NS)
		cbm_conv_flush_evicted(conv);
	cbm_conv_arm(conv);
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
}

/*
 * Lossless readers hold back less than before: writers may find room, and
 * the window may now evict what they held.
 */
static unsigned int cbm_conv_released(struct cbm_conv *conv)
{
	lockdep_assert_held(&conv->lock);
	conv->room_gen++;
	cbm_conv_trim(conv);
	cbm_conv_arm(conv);
	return CBM_WAKE_WRITERS;
}

static unsigned int cbm_reader_moved(struct cbm_conv *conv,
				     const struct cbm_reader *reader)
{
	return reader->lossless ? cbm_conv_released(conv) : 0;
}

/**
 * cbm_reader_detach() - remove a reader, releasing what it held back
 * @conv: the conversation
 * @reader: a reader attached to @conv
 */
void cbm_reader_detach(struct cbm_conv *conv, struct cbm_reader *reader)
{
	unsigned int wake = 0;

	mutex_lock(&conv->lock);
	list_del(&reader->node);
	conv->nr_readers--;
	conv->lost_gone += reader->lost +
			   cbm_reader_gap(conv, reader,
					  cbm_reader_start(conv, reader));
	if (reader->lossless) {
		conv->nr_lossless--;
		reader->lossless = false;
		wake = cbm_conv_released(conv);
	}
	mutex_unlock(&conv->lock);
	put_pid(reader->pid);
	cbm_conv_wake(conv, wake);
}

/**
 * cbm_reader_set_lossless() - change whether a reader holds back eviction
 * @conv: the conversation
 * @reader: a reader attached to @conv
 * @lossless: hold back eviction, if the conversation is lossless
 */
void cbm_reader_set_lossless(struct cbm_conv *conv,
			     struct cbm_reader *reader, bool lossless)
{
	unsigned int wake = 0;

	lossless = lossless && (conv->flags & CBM_CONV_LOSSLESS);
	mutex_lock(&conv->lock);
	if (reader->lossless != lossless) {
		reader->lossless = lossless;
		if (lossless) {
			conv->nr_lossless++;
		} else {
			conv->nr_lossless--;
			wake = cbm_conv_released(conv);
		}
	}
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
}

/* Reserve budget and caps for a pinned copy of @space bytes */
/*
 * Whether @space more bytes of pinned copies fit in max_pinned. The limit
 * is read once: it may be lowered meanwhile, below @space.
 */
static bool cbm_conv_pin_fits(const struct cbm_conv *conv, u64 space)
{
	u64 max = READ_ONCE(cbm_limits.max_pinned);

	return space <= max && conv->pinned_bytes <= max - space;
}

static int cbm_conv_charge_pin(struct cbm_conv *conv, u64 space)
{
	int err;

	lockdep_assert_held(&conv->lock);
	if (!cbm_conv_pin_fits(conv, space))
		return -ENOSPC;
	err = cbm_acct_charge(conv->uid, space);
	if (err)
		return err;
	conv->pinned_bytes += space;
	conv->charged += space;
	return 0;
}

static void cbm_conv_uncharge_pin(struct cbm_conv *conv, u64 space)
{
	lockdep_assert_held(&conv->lock);
	conv->pinned_bytes -= space;
	conv->charged -= space;
	cbm_acct_uncharge(conv->uid, space);
}

/*
 * Whether room for @need bytes can be made now, growing the ring first if
 * auto-resize allows; with @evict, make it.
 *
 * Return: 0, -EAGAIN if the caller would have to wait for lossless
 * readers, or another negative errno.
 */
static int cbm_conv_room(struct cbm_conv *conv, u64 need, bool evict,
			 unsigned int *wake)
{
	u64 evict_to;

	lockdep_assert_held(&conv->lock);
	for (;;) {
		if (conv->unlinked)
			return -EPIPE;
		/* A resize may have left the ring too small for good */
		if (need > conv->ring.size)
			return -EMSGSIZE;
		if (cbm_conv_find_room(conv, need, &evict_to)) {
			if (evict)
				cbm_conv_evict_to(conv, evict_to);
			return 0;
		}
		if (!cbm_conv_autoresize(conv, true))
			return -EAGAIN;
		*wake |= CBM_WAKE_CONFIG;
	}
}

/*
 * Everything about a batch that can be checked before appending any of
 * it: sizes against the ring and the window, and the pinned budget.
 */
static int cbm_conv_check_batch(const struct cbm_conv *conv,
				const struct cbm_msg *msgs, unsigned int n)
{
	u32 max_len = cbm_conv_max_payload(conv);
	u64 pinned = 0;
	unsigned int i;
	size_t len;

	lockdep_assert_held(&conv->lock);
	for (i = 0; i < n; i++) {
		len = iov_iter_count(msgs[i].from);
		if (len > max_len)
			return -EMSGSIZE;
		if (msgs[i].flags & CBM_MSG_PINNED)
			pinned += CBM_RECORD_SPACE(len);
		else if (!cbm_window_admits(&conv->win, len, msgs[i].tokens))
			return -EMSGSIZE;
	}
	/* Lowering max_pinned below what is pinned only stops new pins */
	if (pinned && !cbm_conv_pin_fits(conv, pinned))
		return -ENOSPC;
	return 0;
}

static void cbm_conv_skip_to(struct cbm_conv *conv, u64 seq);

/*
 * Append one message of a checked batch, evicting for room but never
 * waiting. A restored message keeps its sequence number and timestamp;
 * the hole before it is made only once its payload is in, so that a
 * message that fails leaves the numbering as the last restored one did.
 */
static int cbm_conv_append_one(struct cbm_conv *conv,
			       const struct cbm_msg *msg, bool restore,
			       u64 now, unsigned int *wake, u64 *seqp)
{
	bool pinned = msg->flags & CBM_MSG_PINNED;
	size_t len = iov_iter_count(msg->from);
	u64 need = CBM_RECORD_SPACE(len);
	struct cbm_pinned *pin = NULL;
	struct mem_cgroup *old_memcg;
	struct cbm_record *rec;
	int err;

	lockdep_assert_held(&conv->lock);
	if (pinned) {
		old_memcg = set_active_memcg(conv->memcg);
		pin = kmalloc(struct_size(pin, payload, len), CBM_GFP);
		set_active_memcg(old_memcg);
		if (!pin)
			return -ENOMEM;
		err = cbm_conv_charge_pin(conv, need);
		if (err)
			goto err_free_pin;
	}
	err = cbm_conv_room(conv, need, true, wake);
	if (err)
		goto err_uncharge;

	rec = cbm_ring_reserve(&conv->ring, len);
	if (cbm_ring_copy_from_iter(&conv->ring,
				    conv->ring.head + sizeof(*rec), len,
				    msg->from) != len) {
		err = -EFAULT;
		goto err_uncharge;
	}
	/* Room was made in free space, which the skip's evictions leave alone */
	if (restore)
		cbm_conv_skip_to(conv, msg->seq);
	rec->type = CBM_RECORD_MSG;
	rec->ts_ns = restore ? msg->ts_ns : now;
	conv->newest_ts = rec->ts_ns;
	rec->pid = task_tgid_nr(current);
	/* The initial namespace's uid, what from_kuid(&init_user_ns) gives */
	rec->uid = __kuid_val(current_euid());
	rec->flags = msg->flags;
	rec->tokens = msg->tokens;
	rec->role = msg->role;
	memset(rec->__reserved, 0, sizeof(rec->__reserved));
	/* Zero the padding: whatever a ring byte held before must not leak */
	memset((void *)(rec + 1) + len, 0, need - sizeof(*rec) - len);
	cbm_ring_commit(&conv->ring, rec);
	conv->appended++;
	*seqp = rec->seq;
	if (pinned) {
		pin->rec = *rec;
		memcpy(pin->payload, rec + 1, len);
		list_add_tail(&pin->node, &conv->pins);
		conv->nr_pinned++;
	} else {
		cbm_window_add(&conv->wcount, rec);
	}
	if (cbm_conv_trim(conv))
		*wake |= CBM_WAKE_WRITERS;
	return 0;

err_uncharge:
	if (pinned)
		cbm_conv_uncharge_pin(conv, need);
err_free_pin:
	kfree(pin);
	return err;
}

/*
 * Fault the payloads in before evicting anything, so that a bad buffer
 * costs no message; a copy can still fail if another thread unmaps the
 * buffer meanwhile, and then the evicted messages are reported as lost
 * like any others. A message too large for any ring fails first, whatever
 * its buffer; the check is repeated under the lock.
 */
static int cbm_conv_prefault(const struct cbm_conv *conv,
			     const struct cbm_msg *msgs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (iov_iter_count(msgs[i].from) > cbm_conv_max_payload(conv))
			return -EMSGSIZE;
		if (fault_in_iov_iter_readable(msgs[i].from,
					       iov_iter_count(msgs[i].from)))
			return -EFAULT;
	}
	return 0;
}

/* Messages were appended: tell readers, let the ring grow, arm expiry */
static void cbm_conv_appended(struct cbm_conv *conv, unsigned int *wake)
{
	lockdep_assert_held(&conv->lock);
	*wake |= CBM_WAKE_READERS;
	if (cbm_conv_autoresize(conv, false))
		*wake |= CBM_WAKE_CONFIG;
	cbm_conv_arm(conv);
}

/**
 * cbm_conv_append() - append a batch of messages
 * @conv: the conversation
 * @msgs: the messages, flags and roles already validated
 * @n: number of messages, at least 1
 * @nonblock: fail with -EAGAIN instead of waiting for room
 * @first_seq: set to the first appended message's sequence number
 *
 * In a lossy conversation the oldest messages are evicted to make room; in
 * a lossless one the caller waits until lossless readers have read enough,
 * for the first message only: the batch ends at a later message that
 * would have to wait. The messages get consecutive sequence numbers. Then
 * the window drops what it no longer keeps.
 *
 * Return: the number of messages appended, or, if none was, a negative
 * errno (-EMSGSIZE, -EFAULT, -EPIPE once unlinked, -EAGAIN, -ERESTARTSYS,
 * -ENOSPC or -ENOMEM for a pinned message).
 */
int cbm_conv_append(struct cbm_conv *conv, const struct cbm_msg *msgs,
		    unsigned int n, bool nonblock, u64 *first_seq)
{
	u64 need = CBM_RECORD_SPACE(iov_iter_count(msgs[0].from));
	unsigned int wake = 0;
	unsigned int i;
	u64 gen, seq, now;
	int err;

	err = cbm_conv_prefault(conv, msgs, n);
	if (err)
		return err;

	mutex_lock(&conv->lock);
	for (;;) {
		/*
		 * Again after a wait: the window or the capacity may be new.
		 * Nothing is evicted before the first message is ready.
		 */
		err = cbm_conv_check_batch(conv, msgs, n);
		if (!err)
			err = cbm_conv_room(conv, need, false, &wake);
		if (err != -EAGAIN || nonblock)
			break;
		gen = conv->room_gen;
		mutex_unlock(&conv->lock);
		if (wait_event_interruptible(conv->wr_wait,
					     READ_ONCE(conv->room_gen) != gen)) {
			cbm_conv_wake(conv, wake);
			return -ERESTARTSYS;
		}
		mutex_lock(&conv->lock);
	}
	/* One clock read for the batch: its messages share a timestamp */
	now = ktime_get_real_ns();
	for (i = 0; !err && i < n; i++) {
		err = cbm_conv_append_one(conv, &msgs[i], false, now, &wake,
					  &seq);
		if (!err && !i)
			*first_seq = seq;
	}
	if (err && i)
		i--;
	if (i) {
		conv->written = true;
		cbm_conv_appended(conv, &wake);
	}
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return i ? i : err;
}

/*
 * Everything about a restore's history that can be checked before
 * restoring any of it:
 *
 * - sequence numbers go on from what is stored and stay below
 *   CBM_SEQ_LIMIT, so appends after them never wrap the numbering or make
 *   a negative lseek() offset;
 * - timestamps go on from the newest one ever stored (what is stored now
 *   may be nothing) and are not in the future: appends after them are
 *   stamped with the current time, which must not go back before them.
 *   Nor are they 0, which only gap records carry;
 * - a hole (numbers skipped before a message, or by @next_seq after the
 *   last one) comes only after pinned messages. The ring holds its
 *   records under consecutive numbers, so it must be empty of anything
 *   that cannot leave it before the numbering jumps; pinned records can,
 *   their copies stay. A saved conversation only ever has holes there:
 *   between pinned messages older than its ring, and before its ring.
 */
static int cbm_conv_check_restore(const struct cbm_conv *conv,
				  const struct cbm_msg *msgs, unsigned int n,
				  u64 next_seq)
{
	bool only_pinned = !conv->wcount.msgs;
	u64 now = ktime_get_real_ns();
	u64 seq = conv->ring.next_seq;
	u64 ts = conv->newest_ts;
	unsigned int i;

	lockdep_assert_held(&conv->lock);
	for (i = 0; i < n; i++) {
		if (msgs[i].seq < seq || msgs[i].seq >= CBM_SEQ_LIMIT ||
		    (msgs[i].seq > seq && !only_pinned) ||
		    !msgs[i].ts_ns || msgs[i].ts_ns < ts || msgs[i].ts_ns > now)
			return -EINVAL;
		seq = msgs[i].seq + 1;
		ts = msgs[i].ts_ns;
		only_pinned = only_pinned && (msgs[i].flags & CBM_MSG_PINNED);
	}
	if (next_seq && (next_seq < seq || next_seq >= CBM_SEQ_LIMIT ||
			 (next_seq > seq && !only_pinned)))
		return -EINVAL;
	return 0;
}

/*
 * Continue the numbering at @seq, leaving a hole of numbers that never
 * existed (a restore's). The ring holds only pinned records, checked by
 * cbm_conv_check_restore(): they leave it and their copies stay. No
 * reader is told of the hole as lost: every reader's floor goes up to
 * @seq, so it skips the hole as it skips holes older than itself, and one
 * at the end moves past it. Messages a reader had lost and not yet been
 * told of would be skipped too: they are counted as lost right away, as
 * cbm_conv_lose_below() does.
 */
static void cbm_conv_skip_to(struct cbm_conv *conv, u64 seq)
{
	struct cbm_ring *ring = &conv->ring;
	u64 old = ring->next_seq;
	struct cbm_reader *reader;
	u64 from;

	lockdep_assert_held(&conv->lock);
	if (seq == old)
		return;
	WARN_ON_ONCE(cbm_conv_evict_to(conv, old));
	list_for_each_entry(reader, &conv->readers, node) {
		from = max(cbm_reader_start(conv, reader), reader->floor);
		if (from < old)
			reader->lost += old - from -
					cbm_conv_pins_below(conv, from);
	}
	cbm_ring_skip(ring, seq);
	list_for_each_entry(reader, &conv->readers, node) {
		if (reader->seq == old)
			cbm_reader_set(conv, reader, seq);
		reader->floor = seq;
	}
}

/**
 * cbm_conv_restore() - append saved messages with their own history
 * @conv: the conversation
 * @msgs: the messages, flags and roles already validated, each with the
 *        sequence number and timestamp it had
 * @n: number of messages, 0 to apply @next_seq alone
 * @next_seq: 0, or the sequence number the next message gets after the
 *            last of @msgs, if all of them are restored
 *
 * The caller must own @conv or have CAP_SYS_ADMIN, and @conv must never
 * have had a message appended by cbm_conv_append(). Everything is checked
 * before anything is restored (see cbm_conv_check_restore()); then the
 * messages are appended as cbm_conv_append() does, evicting for room and
 * applying the window, but never waiting: a message that would have to
 * wait ends the call. They carry the caller's tgid and euid.
 *
 * Return: the number of messages restored, or, if none was, 0 for an
 * empty call or a negative errno (-EPERM, -EBUSY, -EINVAL, -EMSGSIZE,
 * -EFAULT, -EPIPE once unlinked, -EAGAIN, -ENOSPC or -ENOMEM).
 */
int cbm_conv_restore(struct cbm_conv *conv, const struct cbm_msg *msgs,
		     unsigned int n, u64 next_seq)
{
	unsigned int wake = 0;
	unsigned int i = 0;
	u64 seq;
	int err;

	err = cbm_conv_may_configure(conv);
	if (!err)
		err = cbm_conv_prefault(conv, msgs, n);
	if (err)
		return err;

	mutex_lock(&conv->lock);
	if (conv->written)
		err = -EBUSY;
	else
		err = cbm_conv_check_restore(conv, msgs, n, next_seq);
	if (!err && n)
		err = cbm_conv_check_batch(conv, msgs, n);
	/* The first message fails alone, before anything is evicted */
	if (!err && n)
		err = cbm_conv_room(conv,
				    CBM_RECORD_SPACE(iov_iter_count(msgs[0].from)),
				    false, &wake);
	for (; !err && i < n; i++)
		err = cbm_conv_append_one(conv, &msgs[i], true, 0, &wake, &seq);
	if (err && i)
		i--;
	if (!err && next_seq > conv->ring.next_seq)
		cbm_conv_skip_to(conv, next_seq);
	if (i)
		cbm_conv_appended(conv, &wake);
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return i ? i : err;
}

/*
 * The kernel records the sender's tgid in the initial pid namespace; a
 * reader elsewhere gets it translated while the sender is still alive.
 */
static u32 cbm_pid_for_reader(u32 nr)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	struct pid *pid;
	u32 vnr = 0;

	if (ns == &init_pid_ns)
		return nr;
	rcu_read_lock();
	pid = find_pid_ns(nr, &init_pid_ns);
	if (pid)
		vnr = pid_nr_ns(pid, ns);
	rcu_read_unlock();
	return vnr;
}

/* A stored record's header as the calling reader sees it */
static void cbm_record_for_reader(const struct cbm_record *rec,
				  struct cbm_record *hdr)
{
	*hdr = *rec;
	/* The total of restore holes is for mapped readers (cbm_ring_skip()) */
	hdr->lost = 0;
	hdr->pid = cbm_pid_for_reader(rec->pid);
	hdr->uid = from_kuid_munged(current_user_ns(),
				    make_kuid(&init_user_ns, rec->uid));
}

/*
 * Copy a stored record in a reader's format: the ring's record at @pos if
 * @ring is given, else @rec, a pinned copy whose payload follows it.
 */
static ssize_t cbm_copy_record(const struct cbm_record *rec,
			       const struct cbm_ring *ring, u64 pos,
			       enum cbm_format format, struct iov_iter *to)
{
	size_t copied;
	size_t size = rec->len;
	struct cbm_record hdr;

	if (format == CBM_FORMAT_RECORD)
		size += sizeof(hdr);
	if (iov_iter_count(to) < size)
		return -EMSGSIZE;
	/*
	 * A ring record as stored is what a reader in the initial
	 * namespaces sees, unless it carries a restore's hole total: one
	 * copy then does for header and payload.
	 */
	if (ring && format == CBM_FORMAT_RECORD && !rec->lost &&
	    current_user_ns() == &init_user_ns &&
	    task_active_pid_ns(current) == &init_pid_ns)
		return cbm_ring_copy_to_iter(ring, pos, size, to) == size ?
		       size : -EFAULT;
	if (format == CBM_FORMAT_RECORD) {
		cbm_record_for_reader(rec, &hdr);
		if (copy_to_iter(&hdr, sizeof(hdr), to) != sizeof(hdr))
			return -EFAULT;
	}
	if (ring)
		copied = cbm_ring_copy_to_iter(ring, pos + sizeof(*rec),
					       rec->len, to);
	else
		copied = copy_to_iter(rec + 1, rec->len, to);
	if (copied != rec->len)
		return -EFAULT;
	return size;
}

/* Report the messages lost before the next stored one, @next */
static ssize_t cbm_conv_read_gap(struct cbm_conv *conv,
				 struct cbm_reader *reader,
				 enum cbm_format format, struct iov_iter *to,
				 u64 next)
{
	u64 lost = next - reader->seq;
	struct cbm_record gap = {
		.hdr_len = sizeof(gap),
		.type = CBM_RECORD_GAP,
		.seq = reader->seq,
		.lost = lost,
	};
	ssize_t ret = -EPIPE;

	if (format == CBM_FORMAT_RECORD) {
		if (iov_iter_count(to) < sizeof(gap))
			return -EMSGSIZE;
		if (copy_to_iter(&gap, sizeof(gap), to) != sizeof(gap))
			return -EFAULT;
		ret = sizeof(gap);
	}
	reader->lost += lost;
	cbm_reader_set(conv, reader, next);
	return ret;
}

/* Read the record at the cursor: a pinned copy, a gap, or a ring record */
static ssize_t cbm_conv_read_one(struct cbm_conv *conv,
				 struct cbm_reader *reader,
				 enum cbm_format format, struct iov_iter *to)
{
	const struct cbm_ring *ring = &conv->ring;
	const struct cbm_record *rec;
	u64 next;
	ssize_t ret;

	if (reader->seq < ring->first_seq) {
		next = cbm_conv_next_stored(conv, reader->seq);
		if (next != reader->seq)
			return cbm_conv_read_gap(conv, reader, format, to,
						 next);
		rec = &cbm_pin_find(conv, next)->rec;
		ring = NULL;
	} else {
		rec = cbm_ring_rec(ring, reader->pos);
	}
	ret = cbm_copy_record(rec, ring, reader->pos, format, to);
	if (ret >= 0)
		cbm_reader_set(conv, reader, reader->seq + 1);
	return ret;
}

/**
 * cbm_conv_read() - return the next record for a reader
 * @conv: the conversation
 * @reader: a reader attached to @conv
 * @format: payload only, or header and payload
 * @to: the destination; it must hold the whole record
 * @nonblock: fail with -EAGAIN instead of waiting for a message
 *
 * A reader whose next message was evicted is told once (-EPIPE or a gap
 * record) and moves to the next stored message.
 *
 * Return: bytes copied, 0 at the end of an unlinked conversation, or a
 * negative errno (-EMSGSIZE, -EFAULT, -EPIPE, -EAGAIN, -ERESTARTSYS).
 */
ssize_t cbm_conv_read(struct cbm_conv *conv, struct cbm_reader *reader,
		      enum cbm_format format, struct iov_iter *to,
		      bool nonblock)
{
	struct cbm_ring *ring = &conv->ring;
	unsigned int wake = 0;
	ssize_t ret;
	u64 seq;

	mutex_lock(&conv->lock);
	for (;;) {
		cbm_reader_skip(conv, reader);
		if (reader->seq != ring->next_seq)
			break;
		if (conv->unlinked) {
			ret = 0;
			goto out_unlock;
		}
		if (nonblock) {
			ret = -EAGAIN;
			goto out_unlock;
		}
		seq = reader->seq;
		mutex_unlock(&conv->lock);
		if (wait_event_interruptible(conv->rd_wait,
					     cbm_ring_next_seq(ring) != seq ||
					     READ_ONCE(conv->unlinked)))
			return -ERESTARTSYS;
		mutex_lock(&conv->lock);
	}

	ret = cbm_conv_read_one(conv, reader, format, to);
	if (ret >= 0 || ret == -EPIPE)
		wake = cbm_reader_moved(conv, reader);
out_unlock:
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return ret;
}

/*
 * Move a reader to @target, at most the next sequence number. A target
 * that is no longer stored moves on to the next stored message, without a
 * gap; a gap pending at the old cursor is counted as lost.
 */
static unsigned int cbm_reader_seek(struct cbm_conv *conv,
				    struct cbm_reader *reader, u64 target)
{
	u64 first = conv->ring.first_seq;
	u64 start = cbm_reader_start(conv, reader);

	if (target < first)
		target = cbm_conv_next_stored(conv, target);
	if (start < first)
		reader->lost += cbm_conv_next_stored(conv, start) - start;
	cbm_reader_set(conv, reader, target);
	reader->floor = first;
	return cbm_reader_moved(conv, reader);
}

/**
 * cbm_conv_seek() - move a reader's cursor by sequence number
 * @conv: the conversation
 * @reader: a reader attached to @conv
 * @offset: a sequence number (SEEK_SET) or a difference
 * @whence: SEEK_SET, SEEK_CUR (from the cursor) or SEEK_END (from the next
 *          sequence number)
 *
 * A target that is no longer stored moves on to the next stored message;
 * a pending gap is dropped, its messages counted as lost.
 *
 * Return: the new cursor or -EINVAL (bad @whence, negative SEEK_SET, a
 * target after the newest message).
 */
loff_t cbm_conv_seek(struct cbm_conv *conv, struct cbm_reader *reader,
		     loff_t offset, int whence)
{
	struct cbm_ring *ring = &conv->ring;
	unsigned int wake = 0;
	s64 base, target;
	loff_t ret;

	mutex_lock(&conv->lock);
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = reader->seq;
		break;
	case SEEK_END:
		base = ring->next_seq;
		break;
	default:
		ret = -EINVAL;
		goto out_unlock;
	}
	if ((whence == SEEK_SET && offset < 0) ||
	    check_add_overflow(base, (s64)offset, &target) ||
	    target > (s64)ring->next_seq) {
		ret = -EINVAL;
		goto out_unlock;
	}
	wake = cbm_reader_seek(conv, reader, max_t(s64, target, 0));
	ret = reader->seq;
out_unlock:
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return ret;
}

/* Sequence number of the first stored message stamped at or after @ns */
static u64 cbm_conv_seq_at_time(const struct cbm_conv *conv, u64 ns)
{
	const struct cbm_record *rec;
	struct cbm_stored_iter it;

	cbm_stored_start(conv, &it);
	while ((rec = cbm_stored_next(conv, &it)))
		if (rec->ts_ns >= ns)
			return rec->seq;
	return conv->ring.next_seq;
}

/* Sequence number from which @n stored messages are left */
static u64 cbm_conv_seq_of_last(const struct cbm_conv *conv, u64 n)
{
	u64 stored = cbm_conv_stored(conv);
	const struct cbm_record *rec;
	struct cbm_stored_iter it;

	if (!n)
		return conv->ring.next_seq;
	cbm_stored_start(conv, &it);
	rec = cbm_stored_next(conv, &it);
	while (rec && stored-- > n)
		rec = cbm_stored_next(conv, &it);
	return rec ? rec->seq : conv->ring.next_seq;
}

/**
 * cbm_conv_seek_by() - move a reader's cursor by sequence number, time or
 * count
 * @conv: the conversation
 * @reader: a reader attached to @conv
 * @whence: an enum cbm_seek_whence, already validated
 * @value: the sequence number, CLOCK_REALTIME ns, or count
 * @cursor: set to the new cursor
 *
 * Return: 0 or -EINVAL (a sequence number after the next one).
 */
int cbm_conv_seek_by(struct cbm_conv *conv, struct cbm_reader *reader,
		     u32 whence, u64 value, u64 *cursor)
{
	unsigned int wake = 0;
	int err = 0;
	u64 target;

	mutex_lock(&conv->lock);
	switch (whence) {
	case CBM_SEEK_TIME:
		target = cbm_conv_seq_at_time(conv, value);
		break;
	case CBM_SEEK_LAST:
		target = cbm_conv_seq_of_last(conv, value);
		break;
	default:
		target = value;
		break;
	}
	if (target > conv->ring.next_seq) {
		err = -EINVAL;
	} else {
		wake = cbm_reader_seek(conv, reader, target);
		*cursor = reader->seq;
	}
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return err;
}

/**
 * cbm_conv_poll() - readiness of a file on a conversation
 * @conv: the conversation
 * @reader: the file's reader, or NULL if it cannot read
 * @writer: the file can write
 * @cfg_seen: the configuration generation the file last saw
 * @file: the file, for poll_wait()
 * @pt: the poll table
 *
 * Return: EPOLLIN when @reader has something to read, EPOLLOUT when a
 * largest-size message would not wait, EPOLLPRI when the configuration is
 * newer than @cfg_seen, EPOLLHUP once unlinked.
 */
__poll_t cbm_conv_poll(struct cbm_conv *conv, struct cbm_reader *reader,
		       bool writer, u64 cfg_seen, struct file *file,
		       poll_table *pt)
{
	__poll_t mask = 0;
	u64 evict_to;

	/* Queue first, then look: a change after the look wakes us */
	poll_wait(file, &conv->rd_wait, pt);
	if (writer)
		poll_wait(file, &conv->wr_wait, pt);

	mutex_lock(&conv->lock);
	if (reader && cbm_reader_start(conv, reader) != conv->ring.next_seq)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (conv->cfg_gen != cfg_seen)
		mask |= EPOLLPRI;
	if (conv->unlinked)
		mask |= EPOLLHUP;
	else if (writer &&
		 cbm_conv_find_room(conv,
				    CBM_RECORD_SPACE(cbm_conv_max_payload(conv)),
				    &evict_to))
		mask |= EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&conv->lock);
	return mask;
}

/* cbm_conv_info() under the conversation's lock */
static void cbm_conv_info_locked(struct cbm_conv *conv, struct cbm_info *info,
				 struct user_namespace *ns)
{
	const struct cbm_ring *ring = &conv->ring;

	lockdep_assert_held(&conv->lock);
	info->flags = conv->flags | (conv->unlinked ? CBM_CONV_UNLINKED : 0);
	info->capacity = ring->size;
	info->used = cbm_ring_used(ring);
	info->first_seq = cbm_conv_next_stored(conv, 0);
	info->next_seq = ring->next_seq;
	info->msgs = cbm_conv_stored(conv);
	info->evicted = conv->evicted;
	info->readers = conv->nr_readers;
	info->max_msg_size = cbm_conv_max_payload(conv);
	info->expired = conv->expired;
	info->resizes = conv->resizes;
	info->pinned = conv->nr_pinned;
	info->pinned_bytes = conv->pinned_bytes;
	info->win_msgs = conv->wcount.msgs;
	info->win_turns = conv->wcount.turns;
	info->win_bytes = conv->wcount.bytes;
	info->win_tokens = conv->wcount.tokens;
	info->config_gen = conv->cfg_gen;
	info->uid = from_kuid_munged(ns, conv->uid);
	info->gid = from_kgid_munged(ns, conv->gid);
	info->mode = conv->mode;
	info->__reserved = 0;
	strscpy_pad(info->name, conv->name, sizeof(info->name));
}

/**
 * cbm_conv_info() - a conversation's state, as the caller sees it
 * @conv: the conversation
 * @info: filled in, but for @info->size
 */
void cbm_conv_info(struct cbm_conv *conv, struct cbm_info *info)
{
	mutex_lock(&conv->lock);
	cbm_conv_info_locked(conv, info, current_user_ns());
	mutex_unlock(&conv->lock);
}

/**
 * cbm_conv_report() - a conversation's state and readers, in one snapshot
 * @conv: the conversation
 * @ops: called under @conv's lock with the state, then with each reader
 * @ctx: passed to @ops
 * @init_ns: uids, gids and pids as the initial namespaces see them, for
 *           listeners anywhere; otherwise as the caller's namespaces do
 *
 * Return: 0, or the first non-zero value an @ops function returned.
 */
int cbm_conv_report(struct cbm_conv *conv, const struct cbm_report_ops *ops,
		    void *ctx, bool init_ns)
{
	struct cbm_reader_stats rs;
	struct cbm_conv_stats st;
	struct cbm_reader *reader;
	u64 next_seq;
	int ret;

	mutex_lock(&conv->lock);
	cbm_conv_info_locked(conv, &st.info,
			     init_ns ? &init_user_ns : current_user_ns());
	st.win = conv->win;
	st.autoresize = conv->autoresize.cfg;
	st.appended = conv->appended;
	st.lost = conv->lost_gone;
	next_seq = conv->ring.next_seq;
	list_for_each_entry(reader, &conv->readers, node)
		st.lost += reader->lost +
			   cbm_reader_gap(conv, reader,
					  cbm_reader_start(conv, reader));
	ret = ops->conv(ctx, &st);
	list_for_each_entry(reader, &conv->readers, node) {
		if (ret)
			break;
		rs.pid = init_ns ? pid_nr(reader->pid) : pid_vnr(reader->pid);
		rs.flags = reader->lossless ? CBM_READER_LOSSLESS : 0;
		rs.cursor = cbm_reader_start(conv, reader);
		rs.lag = next_seq - rs.cursor;
		rs.lost = reader->lost + cbm_reader_gap(conv, reader, rs.cursor);
		ret = ops->reader(ctx, &rs);
	}
	mutex_unlock(&conv->lock);
	return ret;
}

/**
 * cbm_reader_info() - a reader's cursor and losses
 * @conv: the conversation
 * @reader: a reader attached to @conv
 * @format: the reader's read format, for @info->next_len
 * @info: filled in, but for @info->size
 */
void cbm_reader_info(struct cbm_conv *conv, struct cbm_reader *reader,
		     enum cbm_format format, struct cbm_reader_info *info)
{
	const struct cbm_ring *ring = &conv->ring;
	u32 hdr = format == CBM_FORMAT_RECORD ? sizeof(struct cbm_record) : 0;
	u64 pins = 0, gap, first, seq, next;

	mutex_lock(&conv->lock);
	first = ring->first_seq;
	seq = cbm_reader_start(conv, reader);
	gap = cbm_reader_gap(conv, reader, seq);
	if (seq < first)
		pins = cbm_conv_pins_below(conv, seq);
	info->flags = reader->lossless ? CBM_READER_LOSSLESS : 0;
	info->cursor = seq;
	info->lost = reader->lost + gap;
	info->gap = gap;
	info->unread = ring->next_seq - max(seq, first) + pins;
	if (seq == ring->next_seq) {
		info->next_len = 0;
	} else if (seq >= first) {
		info->next_len = hdr + cbm_ring_rec(ring, seq == reader->seq ?
						    reader->pos : ring->tail)->len;
	} else {
		next = cbm_conv_next_stored(conv, seq);
		info->next_len = hdr;
		if (next == seq)
			info->next_len += cbm_pin_find(conv, next)->rec.len;
	}
	mutex_unlock(&conv->lock);
	info->__reserved = 0;
}

/**
 * cbm_conv_set_window() - change the window and apply it
 * @conv: the conversation
 * @win: the new window, already validated
 *
 * Return: 0 or -EPERM unless the caller owns @conv or has CAP_SYS_ADMIN.
 */
int cbm_conv_set_window(struct cbm_conv *conv, const struct cbm_window *win)
{
	unsigned int wake = CBM_WAKE_CONFIG;
	int err;

	err = cbm_conv_may_configure(conv);
	if (err)
		return err;
	mutex_lock(&conv->lock);
	conv->win = *win;
	/* Before the evictions the new window causes, which it explains */
	cbm_event_window(conv);
	if (cbm_conv_trim(conv))
		wake |= CBM_WAKE_WRITERS;
	WRITE_ONCE(conv->cfg_gen, conv->cfg_gen + 1);
	cbm_conv_arm(conv);
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return 0;
}

/**
 * cbm_conv_get_window() - the current window
 * @conv: the conversation
 * @win: filled in, but for @win->size
 */
void cbm_conv_get_window(struct cbm_conv *conv, struct cbm_window *win)
{
	u32 size = win->size;

	mutex_lock(&conv->lock);
	*win = conv->win;
	mutex_unlock(&conv->lock);
	win->size = size;
}

/*
 * A stored message below the ring is gone. Readers that have not reached
 * it get a gap for it, except those whose floor is above it: they skip
 * holes there silently, so they count it as lost right away instead.
 */
static void cbm_conv_lose_below(struct cbm_conv *conv, u64 seq)
{
	struct cbm_reader *reader;

	list_for_each_entry(reader, &conv->readers, node)
		if (reader->seq <= seq && seq < reader->floor)
			reader->lost++;
}

/**
 * cbm_conv_unpin() - return a pinned message to the window
 * @conv: the conversation
 * @seq: the message's sequence number
 *
 * A message that has left the ring is gone once unpinned: it counts as
 * evicted.
 *
 * Return: 0 or a negative errno (-EPERM, -ENOENT if @seq is not pinned).
 */
int cbm_conv_unpin(struct cbm_conv *conv, u64 seq)
{
	struct cbm_ring *ring = &conv->ring;
	unsigned int wake = 0;
	struct cbm_pinned *pin;
	struct cbm_record *rec;
	int err;

	err = cbm_conv_may_configure(conv);
	if (err)
		return err;
	mutex_lock(&conv->lock);
	pin = cbm_pin_find(conv, seq);
	if (!pin || pin->rec.seq != seq) {
		err = -ENOENT;
		goto out_unlock;
	}
	list_del(&pin->node);
	conv->nr_pinned--;
	cbm_conv_uncharge_pin(conv, CBM_RECORD_SPACE(pin->rec.len));
	if (seq >= ring->first_seq) {
		rec = cbm_ring_rec(ring, cbm_ring_pos(ring, seq, ring->first_seq,
						      ring->tail));
		rec->flags &= ~CBM_MSG_PINNED;
		cbm_window_add(&conv->wcount, rec);
		if (cbm_conv_trim(conv))
			wake = CBM_WAKE_WRITERS;
		cbm_conv_arm(conv);
	} else {
		conv->evicted++;
		cbm_conv_note_evicted(conv, 1);
		cbm_conv_lose_below(conv, seq);
	}
	kfree(pin);
out_unlock:
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, wake);
	return err;
}

/* Copy one stored record with its header and zeroed padding to @dst */
static int cbm_copy_record_to(const struct cbm_record *rec, void __user *dst)
{
	u64 space = CBM_RECORD_SPACE(rec->len);
	struct cbm_record hdr;

	cbm_record_for_reader(rec, &hdr);
	if (copy_to_user(dst, &hdr, sizeof(hdr)) ||
	    copy_to_user(dst + sizeof(hdr), rec + 1, rec->len) ||
	    clear_user(dst + sizeof(hdr) + rec->len,
		       space - sizeof(hdr) - rec->len))
		return -EFAULT;
	return 0;
}

/**
 * cbm_conv_read_window() - copy the stored messages in one snapshot
 * @conv: the conversation
 * @buf: the destination
 * @len: bytes at @buf
 * @rw: in: @rw->last; out: @rw->count, @rw->needed and @rw->first_seq
 *
 * Return: 0 or a negative errno (-EMSGSIZE, with the outputs set, if @len
 * is too small; -EFAULT).
 */
int cbm_conv_read_window(struct cbm_conv *conv, void __user *buf, u64 len,
			 struct cbm_read_window *rw)
{
	struct cbm_stored_iter it, start;
	const struct cbm_record *rec;
	u64 skip = 0, stored;
	int err = 0;

	mutex_lock(&conv->lock);
	stored = cbm_conv_stored(conv);
	if (rw->last && rw->last < stored)
		skip = stored - rw->last;
	cbm_stored_start(conv, &it);
	while (skip--)
		cbm_stored_next(conv, &it);

	start = it;
	rw->count = 0;
	rw->needed = 0;
	rw->first_seq = conv->ring.next_seq;
	while ((rec = cbm_stored_next(conv, &it))) {
		if (!rw->count)
			rw->first_seq = rec->seq;
		rw->count++;
		rw->needed += CBM_RECORD_SPACE(rec->len);
	}
	if (rw->needed > len) {
		err = -EMSGSIZE;
		goto out_unlock;
	}
	it = start;
	while (!err && (rec = cbm_stored_next(conv, &it))) {
		err = cbm_copy_record_to(rec, buf);
		buf += CBM_RECORD_SPACE(rec->len);
	}
out_unlock:
	mutex_unlock(&conv->lock);
	return err;
}

/**
 * cbm_conv_resize() - change the capacity
 * @conv: the conversation
 * @capacity: in: the requested size (0 for the default); out: the rounded
 *            size
 * @evicted: set to the number of messages evicted to fit
 *
 * Return: 0 or a negative errno (-EPERM, -E2BIG, -EBUSY, -ENOSPC,
 * -ENOMEM).
 */
int cbm_conv_resize(struct cbm_conv *conv, u64 *capacity, u64 *evicted)
{
	int err;

	err = cbm_conv_may_configure(conv);
	if (!err)
		err = cbm_conv_round_capacity(capacity);
	if (err)
		return err;
	mutex_lock(&conv->lock);
	err = cbm_conv_resize_locked(conv, *capacity, evicted);
	cbm_conv_arm(conv);
	mutex_unlock(&conv->lock);
	if (!err)
		cbm_conv_wake(conv, CBM_WAKE_CONFIG);
	return err;
}

/**
 * cbm_conv_set_autoresize() - change the auto-resize settings
 * @conv: the conversation
 * @cfg: the settings, validated but for the capacities, which are rounded
 *       here
 *
 * Return: 0 or a negative errno (-EPERM, -E2BIG, -EINVAL if the rounded
 * minimum is above the maximum).
 */
int cbm_conv_set_autoresize(struct cbm_conv *conv,
			    struct cbm_autoresize *cfg)
{
	int err;

	err = cbm_conv_may_configure(conv);
	if (err)
		return err;
	if (cfg->flags & CBM_AUTORESIZE_ON) {
		if (!cfg->min_capacity || !cfg->max_capacity)
			return -EINVAL;
		err = cbm_conv_round_capacity(&cfg->min_capacity);
		if (!err)
			err = cbm_conv_round_capacity(&cfg->max_capacity);
		if (err)
			return err;
		if (cfg->min_capacity > cfg->max_capacity)
			return -EINVAL;
	} else {
		memset(cfg, 0, sizeof(*cfg));
	}

	mutex_lock(&conv->lock);
	conv->autoresize.cfg = *cfg;
	conv->autoresize.above_since = 0;
	conv->autoresize.below_since = 0;
	WRITE_ONCE(conv->cfg_gen, conv->cfg_gen + 1);
	/* Start measuring usage now: it must hold for a period from here */
	cbm_conv_autoresize(conv, false);
	cbm_conv_arm(conv);
	mutex_unlock(&conv->lock);
	cbm_conv_wake(conv, CBM_WAKE_CONFIG);
	return 0;
}

/**
 * cbm_conv_get_autoresize() - the auto-resize settings
 * @conv: the conversation
 * @cfg: filled in, but for @cfg->size
 */
void cbm_conv_get_autoresize(struct cbm_conv *conv,
			     struct cbm_autoresize *cfg)
{
	u32 size = cfg->size;

	mutex_lock(&conv->lock);
	*cfg = conv->autoresize.cfg;
	mutex_unlock(&conv->lock);
	cfg->size = size;
}

/**
 * cbm_conv_map_info() - the mapping layout and a snapshot of the positions
 * @conv: the conversation
 * @info: filled in, but for @info->size
 */
void cbm_conv_map_info(struct cbm_conv *conv, struct cbm_map_info *info)
{
	const struct cbm_ring *ring = &conv->ring;

	mutex_lock(&conv->lock);
	info->flags = conv->unlinked ? CBM_MAP_UNLINKED : 0;
	info->generation = cbm_conv_map_hdr(conv)->generation;
	info->capacity = ring->size;
	info->head = ring->head;
	info->tail = ring->tail;
	info->first_seq = ring->first_seq;
	info->next_seq = ring->next_seq;
	info->skipped = ring->skipped;
	mutex_unlock(&conv->lock);

	info->header_offset = 0;
	info->header_size = PAGE_SIZE;
	info->data_offset = PAGE_SIZE;
	info->data_size = 2 * info->capacity;
	info->map_size = info->data_offset + info->data_size;
}

/**
 * cbm_conv_mmap() - map the header page and the ring's pages
 * @conv: the conversation
 * @vma: a read-only mapping being set up, of the header page alone or of
 *       the whole layout (cbm_conv_map_info())
 *
 * Called under mmap_lock, so it takes @conv->map_lock, never @conv->lock.
 *
 * Return: 0 or a negative errno (-EPERM outside the initial pid or user
 * namespace, -EINVAL for another offset or length, -ENOMEM).
 */
int cbm_conv_mmap(struct cbm_conv *conv, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	int err;

	/* Records hold initial-namespace ids, which a mapping cannot translate */
	if (task_active_pid_ns(current) != &init_pid_ns ||
	    current_user_ns() != &init_user_ns)
		return -EPERM;
	if (vma->vm_pgoff)
		return -EINVAL;

	mutex_lock(&conv->map_lock);
	if (len != PAGE_SIZE && len != PAGE_SIZE + 2 * conv->ring.size) {
		err = -EINVAL;
		goto out_unlock;
	}
	err = vm_insert_page(vma, vma->vm_start, conv->map_page);
	if (!err && len > PAGE_SIZE)
		err = cbm_ring_map(&conv->ring, vma, vma->vm_start + PAGE_SIZE);
out_unlock:
	mutex_unlock(&conv->map_lock);
	return err;
}
