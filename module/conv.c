// SPDX-License-Identifier: GPL-2.0
/*
 * cbm conversations: the name table, ownership and permissions, readers,
 * overflow policy (lossy eviction or lossless back-pressure) and waiting.
 *
 * Lock order: cbm_ns_lock, then a conversation's lock.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/log2.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/stringhash.h>
#include <linux/timekeeping.h>
#include <linux/user_namespace.h>

#include "conv.h"

#define CBM_NS_BITS	8
#define CBM_RING_SIZE_MAX	(1UL << (BITS_PER_LONG - 1))

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

static struct cbm_conv *cbm_conv_create(const char *name,
					const struct cbm_create *args,
					u32 state_flags)
{
	unsigned long max = READ_ONCE(cbm_limits.max_capacity);
	u64 size = args->capacity;
	struct cbm_conv *conv;
	int err;

	if (!size)
		size = READ_ONCE(cbm_limits.default_capacity);
	/* Whatever max_capacity says, the rounding must not overflow */
	if (size > max || size > CBM_RING_SIZE_MAX)
		return ERR_PTR(-E2BIG);
	size = roundup_pow_of_two(max_t(u64, size, PAGE_SIZE));
	if (size > max)
		return ERR_PTR(-E2BIG);

	if (atomic_inc_return(&cbm_nr_convs) >
	    READ_ONCE(cbm_limits.max_conversations)) {
		err = -ENOSPC;
		goto err_uncount;
	}

	conv = kzalloc(sizeof(*conv), GFP_KERNEL_ACCOUNT);
	if (!conv) {
		err = -ENOMEM;
		goto err_uncount;
	}
	err = cbm_ring_init(&conv->ring, size, GFP_KERNEL_ACCOUNT);
	if (err)
		goto err_free_conv;

	kref_init(&conv->ref);
	mutex_init(&conv->lock);
	INIT_LIST_HEAD(&conv->readers);
	init_waitqueue_head(&conv->rd_wait);
	init_waitqueue_head(&conv->wr_wait);
	conv->flags = args->flags | state_flags;
	conv->uid = current_fsuid();
	conv->gid = current_fsgid();
	conv->mode = args->mode;
	strscpy(conv->name, name, sizeof(conv->name));
	return conv;

err_free_conv:
	kfree(conv);
err_uncount:
	atomic_dec(&cbm_nr_convs);
	return ERR_PTR(err);
}

static void cbm_conv_release(struct kref *ref)
{
	struct cbm_conv *conv = container_of(ref, struct cbm_conv, ref);

	cbm_ring_destroy(&conv->ring);
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
		}
	}
	mutex_unlock(&cbm_ns_lock);

	if (!err)
		*convp = conv;
	return err;
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

static void cbm_conv_wake_writers(struct cbm_conv *conv)
{
	/* Pairs with the barrier in prepare_to_wait() of a sleeping writer */
	if (wq_has_sleeper(&conv->wr_wait))
		wake_up_interruptible_poll(&conv->wr_wait,
					   EPOLLOUT | EPOLLWRNORM);
}

static void cbm_conv_mark_unlinked(struct cbm_conv *conv)
{
	mutex_lock(&conv->lock);
	WRITE_ONCE(conv->unlinked, true);
	conv->room_gen++;
	mutex_unlock(&conv->lock);
	wake_up_interruptible_poll(&conv->rd_wait, EPOLLHUP);
	wake_up_interruptible_poll(&conv->wr_wait, EPOLLHUP);
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
	struct cbm_conv *conv;
	int err = 0;

	mutex_lock(&cbm_ns_lock);
	conv = cbm_ns_find(name);
	if (!conv)
		err = -ENOENT;
	else if (conv == cbm_default)
		err = -EBUSY;
	else if (!uid_eq(current_fsuid(), conv->uid) &&
		 !capable(CAP_SYS_ADMIN))
		err = -EACCES;
	else
		hash_del(&conv->hnode);
	mutex_unlock(&cbm_ns_lock);
	if (err)
		return err;

	cbm_conv_mark_unlinked(conv);
	cbm_conv_put(conv);
	return 0;
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
	conv->uid = GLOBAL_ROOT_UID;
	conv->gid = GLOBAL_ROOT_GID;

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
	reader->seq = conv->ring.first_seq;
	reader->pos = conv->ring.tail;
	reader->lost = 0;
	reader->lossless = lossless && (conv->flags & CBM_CONV_LOSSLESS);
	list_add_tail(&reader->node, &conv->readers);
	conv->nr_readers++;
	if (reader->lossless)
		conv->nr_lossless++;
	mutex_unlock(&conv->lock);
}

/**
 * cbm_reader_detach() - remove a reader, releasing what it held back
 * @conv: the conversation
 * @reader: a reader attached to @conv
 */
void cbm_reader_detach(struct cbm_conv *conv, struct cbm_reader *reader)
{
	bool wake;

	mutex_lock(&conv->lock);
	list_del(&reader->node);
	conv->nr_readers--;
	wake = reader->lossless;
	if (wake) {
		conv->nr_lossless--;
		conv->room_gen++;
	}
	mutex_unlock(&conv->lock);
	if (wake)
		cbm_conv_wake_writers(conv);
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
	bool wake = false;

	lossless = lossless && (conv->flags & CBM_CONV_LOSSLESS);
	mutex_lock(&conv->lock);
	if (reader->lossless != lossless) {
		reader->lossless = lossless;
		if (lossless) {
			conv->nr_lossless++;
		} else {
			conv->nr_lossless--;
			conv->room_gen++;
			wake = true;
		}
	}
	mutex_unlock(&conv->lock);
	if (wake)
		cbm_conv_wake_writers(conv);
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

/*
 * Find how many of the oldest messages must go for @need free bytes, not
 * touching any a lossless reader still needs. On success *@evict_to is the
 * first sequence number to keep.
 */
static bool cbm_conv_find_room(const struct cbm_conv *conv, u64 need,
			       u64 *evict_to)
{
	const struct cbm_ring *ring = &conv->ring;
	u64 room = ring->size - cbm_ring_used(ring);
	u64 held = cbm_conv_held_seq(conv);
	u64 seq = ring->first_seq;
	u64 pos = ring->tail;
	u64 space;

	while (room < need) {
		if (seq >= held || seq == ring->next_seq)
			return false;
		space = CBM_RECORD_SPACE(cbm_ring_rec(ring, pos)->len);
		room += space;
		pos += space;
		seq++;
	}
	*evict_to = seq;
	return true;
}

static bool cbm_conv_make_room(struct cbm_conv *conv, u64 need)
{
	u64 evict_to;

	if (!cbm_conv_find_room(conv, need, &evict_to))
		return false;
	while (conv->ring.first_seq < evict_to) {
		cbm_ring_evict(&conv->ring);
		conv->evicted++;
	}
	return true;
}

/**
 * cbm_conv_append() - append one message
 * @conv: the conversation
 * @msg: role and flags, already validated
 * @from: the payload; its whole count is the message
 * @nonblock: fail with -EAGAIN instead of waiting for room
 * @seqp: set to the message's sequence number
 *
 * In a lossy conversation the oldest messages are evicted to make room; in
 * a lossless one the caller waits until lossless readers have read enough.
 *
 * Return: 0 or a negative errno (-EMSGSIZE, -EFAULT, -EPIPE once unlinked,
 * -EAGAIN, -ERESTARTSYS).
 */
int cbm_conv_append(struct cbm_conv *conv, const struct cbm_msg *msg,
		    struct iov_iter *from, bool nonblock, u64 *seqp)
{
	size_t len = iov_iter_count(from);
	u64 need = CBM_RECORD_SPACE(len);
	struct cbm_record *rec;
	int err = 0;
	u64 gen;

	if (len > cbm_conv_max_payload(conv))
		return -EMSGSIZE;
	/*
	 * Fault the payload in before evicting anything, so that a bad buffer
	 * costs no message; a copy can still fail if another thread unmaps
	 * the buffer meanwhile, and then the evicted messages are reported
	 * as lost like any others.
	 */
	if (fault_in_iov_iter_readable(from, len))
		return -EFAULT;

	mutex_lock(&conv->lock);
	for (;;) {
		if (conv->unlinked) {
			err = -EPIPE;
			goto out_unlock;
		}
		if (cbm_conv_make_room(conv, need))
			break;
		if (nonblock) {
			err = -EAGAIN;
			goto out_unlock;
		}
		gen = conv->room_gen;
		mutex_unlock(&conv->lock);
		if (wait_event_interruptible(conv->wr_wait,
					     READ_ONCE(conv->room_gen) != gen))
			return -ERESTARTSYS;
		mutex_lock(&conv->lock);
	}

	rec = cbm_ring_reserve(&conv->ring, len);
	if (copy_from_iter(rec + 1, len, from) != len) {
		err = -EFAULT;
		goto out_unlock;
	}
	rec->type = CBM_RECORD_MSG;
	rec->ts_ns = ktime_get_real_ns();
	rec->lost = 0;
	rec->pid = task_tgid_nr(current);
	rec->uid = from_kuid(&init_user_ns, current_euid());
	rec->flags = msg->flags;
	rec->role = msg->role;
	memset(rec->__reserved, 0, sizeof(rec->__reserved));
	cbm_ring_commit(&conv->ring, rec);
	*seqp = rec->seq;

out_unlock:
	mutex_unlock(&conv->lock);
	/* Pairs with the barrier in prepare_to_wait() of a sleeping reader */
	if (!err && wq_has_sleeper(&conv->rd_wait))
		wake_up_interruptible_poll(&conv->rd_wait, EPOLLIN | EPOLLRDNORM);
	return err;
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

static ssize_t cbm_conv_read_gap(struct cbm_conv *conv,
				 struct cbm_reader *reader,
				 enum cbm_format format, struct iov_iter *to)
{
	struct cbm_ring *ring = &conv->ring;
	u64 lost = ring->first_seq - reader->seq;
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
	reader->seq = ring->first_seq;
	reader->pos = ring->tail;
	return ret;
}

static ssize_t cbm_conv_read_msg(struct cbm_conv *conv,
				 struct cbm_reader *reader,
				 enum cbm_format format, struct iov_iter *to)
{
	struct cbm_record *rec = cbm_ring_rec(&conv->ring, reader->pos);
	size_t size = rec->len;
	struct cbm_record hdr;

	if (format == CBM_FORMAT_RECORD)
		size += sizeof(hdr);
	if (iov_iter_count(to) < size)
		return -EMSGSIZE;
	if (format == CBM_FORMAT_RECORD) {
		hdr = *rec;
		hdr.pid = cbm_pid_for_reader(rec->pid);
		hdr.uid = from_kuid_munged(current_user_ns(),
					   make_kuid(&init_user_ns, rec->uid));
		if (copy_to_iter(&hdr, sizeof(hdr), to) != sizeof(hdr))
			return -EFAULT;
	}
	if (copy_to_iter(rec + 1, rec->len, to) != rec->len)
		return -EFAULT;
	reader->seq++;
	reader->pos += CBM_RECORD_SPACE(rec->len);
	return size;
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
 * record) and moves to the oldest stored message.
 *
 * Return: bytes copied, 0 at the end of an unlinked conversation, or a
 * negative errno (-EMSGSIZE, -EFAULT, -EPIPE, -EAGAIN, -ERESTARTSYS).
 */
ssize_t cbm_conv_read(struct cbm_conv *conv, struct cbm_reader *reader,
		      enum cbm_format format, struct iov_iter *to,
		      bool nonblock)
{
	struct cbm_ring *ring = &conv->ring;
	bool wake = false;
	ssize_t ret;
	u64 seq;

	mutex_lock(&conv->lock);
	while (reader->seq == ring->next_seq) {
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

	if (reader->seq < ring->first_seq)
		ret = cbm_conv_read_gap(conv, reader, format, to);
	else
		ret = cbm_conv_read_msg(conv, reader, format, to);
	if (reader->lossless && ret >= 0) {
		conv->room_gen++;
		wake = true;
	}
out_unlock:
	mutex_unlock(&conv->lock);
	if (wake)
		cbm_conv_wake_writers(conv);
	return ret;
}

/**
 * cbm_conv_seek() - move a reader's cursor by sequence number
 * @conv: the conversation
 * @reader: a reader attached to @conv
 * @offset: a sequence number (SEEK_SET) or a difference
 * @whence: SEEK_SET, SEEK_CUR (from the cursor) or SEEK_END (from the next
 *          sequence number)
 *
 * A target older than the oldest stored message is clamped to it; a
 * pending gap is dropped, its messages counted as lost.
 *
 * Return: the new cursor or -EINVAL (bad @whence, negative SEEK_SET, a
 * target after the newest message).
 */
loff_t cbm_conv_seek(struct cbm_conv *conv, struct cbm_reader *reader,
		     loff_t offset, int whence)
{
	struct cbm_ring *ring = &conv->ring;
	bool wake = false;
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
	if (target < (s64)ring->first_seq)
		target = ring->first_seq;
	if (reader->seq < ring->first_seq)
		reader->lost += ring->first_seq - reader->seq;

	reader->pos = cbm_ring_pos(ring, target, reader->seq, reader->pos);
	reader->seq = target;
	if (reader->lossless) {
		conv->room_gen++;
		wake = true;
	}
	ret = target;
out_unlock:
	mutex_unlock(&conv->lock);
	if (wake)
		cbm_conv_wake_writers(conv);
	return ret;
}

/**
 * cbm_conv_poll() - readiness of a file on a conversation
 * @conv: the conversation
 * @reader: the file's reader, or NULL if it cannot read
 * @writer: the file can write
 * @file: the file, for poll_wait()
 * @pt: the poll table
 *
 * Return: EPOLLIN when @reader has something to read, EPOLLOUT when a
 * largest-size message would not wait, EPOLLHUP once unlinked.
 */
__poll_t cbm_conv_poll(struct cbm_conv *conv, struct cbm_reader *reader,
		       bool writer, struct file *file, poll_table *pt)
{
	__poll_t mask = 0;
	u64 evict_to;

	/* Queue first, then look: a change after the look wakes us */
	poll_wait(file, &conv->rd_wait, pt);
	if (writer)
		poll_wait(file, &conv->wr_wait, pt);

	mutex_lock(&conv->lock);
	if (reader && reader->seq != conv->ring.next_seq)
		mask |= EPOLLIN | EPOLLRDNORM;
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

/**
 * cbm_conv_info() - a conversation's state, as the caller sees it
 * @conv: the conversation
 * @info: filled in, but for @info->size
 */
void cbm_conv_info(struct cbm_conv *conv, struct cbm_info *info)
{
	struct user_namespace *ns = current_user_ns();
	const struct cbm_ring *ring = &conv->ring;

	mutex_lock(&conv->lock);
	info->flags = conv->flags | (conv->unlinked ? CBM_CONV_UNLINKED : 0);
	info->capacity = ring->size;
	info->used = cbm_ring_used(ring);
	info->first_seq = ring->first_seq;
	info->next_seq = ring->next_seq;
	info->msgs = ring->next_seq - ring->first_seq;
	info->evicted = conv->evicted;
	info->readers = conv->nr_readers;
	info->max_msg_size = cbm_conv_max_payload(conv);
	mutex_unlock(&conv->lock);

	info->uid = from_kuid_munged(ns, conv->uid);
	info->gid = from_kgid_munged(ns, conv->gid);
	info->mode = conv->mode;
	info->__reserved = 0;
	strscpy_pad(info->name, conv->name, sizeof(info->name));
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
	u64 gap = 0;

	mutex_lock(&conv->lock);
	if (reader->seq < ring->first_seq)
		gap = ring->first_seq - reader->seq;
	info->flags = reader->lossless ? CBM_READER_LOSSLESS : 0;
	info->cursor = reader->seq;
	info->lost = reader->lost + gap;
	info->gap = gap;
	info->unread = ring->next_seq - max(reader->seq, ring->first_seq);
	if (reader->seq == ring->next_seq)
		info->next_len = 0;
	else if (gap)
		info->next_len = hdr;
	else
		info->next_len = hdr + cbm_ring_rec(ring, reader->pos)->len;
	mutex_unlock(&conv->lock);
	info->__reserved = 0;
}
