/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm conversations: a ring plus its namespace entry, owner, readers,
 * overflow policy and wait queues. Nothing here knows about struct file
 * beyond handing it to poll_wait().
 */
#ifndef _CBM_CONV_H
#define _CBM_CONV_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "policy.h"
#include "ring.h"

struct mem_cgroup;

/**
 * struct cbm_conv - a conversation
 * @ref: one reference per bound file, plus one while the name is linked
 * @lock: protects everything below that is not marked constant. Held
 *        across copies to and from user memory, as pipe->mutex is.
 * @ring: the stored messages
 * @readers: struct cbm_reader.node of every attached reader
 * @nr_readers: entries in @readers
 * @nr_lossless: entries in @readers that hold back eviction
 * @appended: messages appended since creation
 * @evicted: unpinned messages evicted since creation, for any reason
 * @expired: messages of @evicted that the window's maximum age removed
 * @resizes: capacity changes since creation
 * @lost_gone: messages lost by readers already detached
 * @ev_pending: evicted messages not yet reported by an eviction event
 * @ev_last: ktime_get_ns() of the last eviction event
 * @room_gen: bumped whenever a blocked writer might now find room; a writer
 *            sleeps until it changes
 * @cfg_gen: bumped by every change of the window, the auto-resize settings
 *           or the capacity; read without the lock by poll
 * @unlinked: the name is gone (or the module is going away); set once
 * @win: the window; @win.size is unused
 * @wcount: the unpinned records in @ring, as the window counts them
 * @pins: struct cbm_pinned.node of every pinned message, oldest first
 * @nr_pinned: entries in @pins
 * @pinned_bytes: CBM_RECORD_SPACE() of the entries in @pins
 * @autoresize: auto-resize settings and state
 * @work: expires messages and resizes automatically when nobody else does
 * @work_at: jiffies at which @work is due, while it is pending
 * @written: a message was appended by write(), CBM_IOC_SEND or
 *           CBM_IOC_SEND_BATCH; restoring is refused from then on, so
 *           restored history never interleaves with stamped messages
 * @newest_ts: timestamp of the newest message ever appended or restored,
 *             stored or not since: a restore goes on from it
 * @charged: bytes charged to the memory caps: ring and pinned copies
 * @memcg: memory cgroup of the creator, charged for all of the memory;
 *         constant
 * @map_lock: taken inside @lock and inside mmap_lock. Held to replace
 *            @ring's pages (a resize) and to map them, so mmap() sees one
 *            generation and never needs @lock, which is held across user
 *            copies that take mmap_lock.
 * @map_page: the header page mapped readers watch, written through
 *            @ring.pub; constant
 * @rd_wait: readers and pollers waiting for messages
 * @wr_wait: writers and pollers waiting for room
 * @flags: CBM_CONV_LOSSLESS, CBM_CONV_ANON, CBM_CONV_DEFAULT; constant
 * @uid: owner; constant
 * @gid: group; constant
 * @mode: permission bits (0777 at most); constant
 * @hnode: entry in the name table, under cbm_ns_lock
 * @name: NUL-terminated name, empty when anonymous; constant
 */
struct cbm_conv {
	struct kref ref;
	/* see @lock above */
	struct mutex lock;
	struct cbm_ring ring;
	struct list_head readers;
	unsigned int nr_readers;
	unsigned int nr_lossless;
	u64 appended;
	u64 evicted;
	u64 expired;
	u64 resizes;
	u64 lost_gone;
	u64 ev_pending;
	u64 ev_last;
	u64 room_gen;
	u64 cfg_gen;
	bool unlinked;
	struct cbm_window win;
	struct cbm_window_count wcount;
	struct list_head pins;
	unsigned int nr_pinned;
	u64 pinned_bytes;
	struct cbm_autoresize_state autoresize;
	struct delayed_work work;
	unsigned long work_at;
	bool written;
	u64 newest_ts;
	u64 charged;
	struct mem_cgroup *memcg;
	/* see @map_lock above */
	struct mutex map_lock;
	struct page *map_page;
	wait_queue_head_t rd_wait;
	wait_queue_head_t wr_wait;
	u32 flags;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	struct hlist_node hnode;
	char name[CBM_NAME_MAX];
};

/**
 * struct cbm_pinned - the copy of a pinned message that outlives its place
 * in the ring
 * @node: entry in struct cbm_conv.pins
 * @rec: the record as it was appended
 * @payload: @rec.len bytes, right after @rec as in the ring
 */
struct cbm_pinned {
	struct list_head node;
	struct cbm_record rec;
	u8 payload[];
};

/**
 * struct cbm_reader - one reading cursor, owned by its user and protected
 * by the conversation's lock while attached
 * @node: entry in struct cbm_conv.readers
 * @seq: next sequence number to return
 * @pos: ring position of @seq, meaningful while @seq has not been evicted
 * @floor: the ring's first sequence number when the reader was attached or
 *         last sought, or past the newest hole a restore left since;
 *         messages below it that are not stored are skipped silently, not
 *         reported as lost (they left before the reader came, between
 *         pinned messages it can still read, or never existed)
 * @lost: messages lost to eviction and already reported
 * @lossless: eviction waits for this reader
 * @pid: thread group of the task that attached the reader, for netlink
 */
struct cbm_reader {
	struct list_head node;
	u64 seq;
	u64 pos;
	u64 floor;
	u64 lost;
	bool lossless;
	struct pid *pid;
};

/**
 * struct cbm_conv_stats - a conversation's state, as netlink reports it
 * @info: as %CBM_IOC_INFO returns it, but for @info.size
 * @win: the window, but for @win.size
 * @autoresize: the auto-resize settings, but for @autoresize.size
 * @appended: messages appended since creation
 * @lost: messages lost, summed over every reader the conversation has had
 */
struct cbm_conv_stats {
	struct cbm_info info;
	struct cbm_window win;
	struct cbm_autoresize autoresize;
	u64 appended;
	u64 lost;
};

/**
 * struct cbm_reader_stats - one reader's state, as netlink reports it
 * @pid: tgid of the task that attached it, in the caller's pid namespace
 * @flags: %CBM_READER_LOSSLESS or 0
 * @cursor: as &cbm_reader_info.cursor
 * @lag: messages appended and not yet read
 * @lost: as &cbm_reader_info.lost
 */
struct cbm_reader_stats {
	u32 pid;
	u32 flags;
	u64 cursor;
	u64 lag;
	u64 lost;
};

/**
 * struct cbm_report_ops - what cbm_conv_report() calls, under the
 * conversation's lock, so it must not sleep or take a cbm lock
 * @conv: given the conversation's state first; non-zero stops the report
 * @reader: then given each reader; non-zero stops the report
 */
struct cbm_report_ops {
	int (*conv)(void *ctx, const struct cbm_conv_stats *st);
	int (*reader)(void *ctx, const struct cbm_reader_stats *rs);
};

/**
 * struct cbm_create - settings of a conversation being created
 * @mode: permission bits
 * @flags: CBM_CONV_LOSSLESS or 0
 * @capacity: requested ring size in bytes, 0 for the module default
 */
struct cbm_create {
	umode_t mode;
	u32 flags;
	u64 capacity;
};

/**
 * struct cbm_msg - a message to append
 * @role: an enum cbm_role
 * @flags: message flags
 * @tokens: token count
 * @from: the payload; its whole count is the message
 * @seq: cbm_conv_restore() only: the sequence number to give it
 * @ts_ns: cbm_conv_restore() only: the timestamp to give it
 */
struct cbm_msg {
	u32 role;
	u32 flags;
	u32 tokens;
	struct iov_iter *from;
	u64 seq;
	u64 ts_ns;
};

/**
 * enum cbm_format - what read() returns
 * @CBM_FORMAT_PAYLOAD: the payload only; a gap is reported as -EPIPE
 * @CBM_FORMAT_RECORD: struct cbm_record then the payload; a gap is a
 *                     %CBM_RECORD_GAP record
 */
enum cbm_format {
	CBM_FORMAT_PAYLOAD,
	CBM_FORMAT_RECORD,
};

/**
 * struct cbm_limits - module parameters the conversation layer obeys
 * @default_capacity: ring size when none is requested
 * @max_capacity: largest ring size
 * @max_msg_size: largest payload
 * @max_conversations: most conversations at once
 * @max_pinned: bytes of pinned messages per conversation
 * @max_total_bytes: bytes all conversations may hold together
 * @max_user_bytes: bytes the conversations of one owner may hold
 */
struct cbm_limits {
	unsigned long default_capacity;
	unsigned long max_capacity;
	unsigned int max_msg_size;
	unsigned int max_conversations;
	unsigned long max_pinned;
	unsigned long max_total_bytes;
	unsigned long max_user_bytes;
};

extern struct cbm_limits cbm_limits;

int cbm_conv_setup(umode_t default_mode);
void cbm_conv_teardown(void);

bool cbm_conv_name_valid(const char *name);
int cbm_conv_open(const char *name, bool create, bool excl,
		  const struct cbm_create *args, int may,
		  struct cbm_conv **convp);
int cbm_conv_open_anon(const struct cbm_create *args,
		       struct cbm_conv **convp);
int cbm_conv_open_default(int may, struct cbm_conv **convp);
int cbm_conv_unlink(const char *name);
void cbm_conv_put(struct cbm_conv *conv);
struct cbm_conv *cbm_conv_find(const char *name);
int cbm_conv_remove(struct cbm_conv *conv);
unsigned int cbm_conv_collect(const char *after, struct cbm_conv **convs,
			      unsigned int max);
int cbm_conv_report(struct cbm_conv *conv, const struct cbm_report_ops *ops,
		    void *ctx, bool init_ns);
bool cbm_conv_may_read(const struct cbm_conv *conv);

void cbm_reader_attach(struct cbm_conv *conv, struct cbm_reader *reader,
		       bool lossless);
void cbm_reader_detach(struct cbm_conv *conv, struct cbm_reader *reader);
void cbm_reader_set_lossless(struct cbm_conv *conv,
			     struct cbm_reader *reader, bool lossless);

int cbm_conv_append(struct cbm_conv *conv, const struct cbm_msg *msgs,
		    unsigned int n, bool nonblock, u64 *first_seq);
int cbm_conv_restore(struct cbm_conv *conv, const struct cbm_msg *msgs,
		     unsigned int n, u64 next_seq);
ssize_t cbm_conv_read(struct cbm_conv *conv, struct cbm_reader *reader,
		      enum cbm_format format, struct iov_iter *to,
		      bool nonblock);
loff_t cbm_conv_seek(struct cbm_conv *conv, struct cbm_reader *reader,
		     loff_t offset, int whence);
__poll_t cbm_conv_poll(struct cbm_conv *conv, struct cbm_reader *reader,
		       bool writer, u64 cfg_seen, struct file *file,
		       poll_table *pt);
void cbm_conv_info(struct cbm_conv *conv, struct cbm_info *info);
void cbm_reader_info(struct cbm_conv *conv, struct cbm_reader *reader,
		     enum cbm_format format, struct cbm_reader_info *info);

int cbm_conv_set_window(struct cbm_conv *conv, const struct cbm_window *win);
void cbm_conv_get_window(struct cbm_conv *conv, struct cbm_window *win);
int cbm_conv_unpin(struct cbm_conv *conv, u64 seq);
int cbm_conv_read_window(struct cbm_conv *conv, void __user *buf, u64 len,
			 struct cbm_read_window *rw);
int cbm_conv_seek_by(struct cbm_conv *conv, struct cbm_reader *reader,
		     u32 whence, u64 value, u64 *cursor);
int cbm_conv_resize(struct cbm_conv *conv, u64 *capacity, u64 *evicted);
int cbm_conv_set_autoresize(struct cbm_conv *conv,
			    struct cbm_autoresize *cfg);
void cbm_conv_get_autoresize(struct cbm_conv *conv,
			     struct cbm_autoresize *cfg);
void cbm_conv_map_info(struct cbm_conv *conv, struct cbm_map_info *info);
int cbm_conv_mmap(struct cbm_conv *conv, struct vm_area_struct *vma);

/**
 * cbm_conv_config_gen() - the conversation's configuration generation
 * @conv: the conversation
 *
 * Return: a value that changes whenever the window, the auto-resize
 * settings or the capacity change.
 */
static inline u64 cbm_conv_config_gen(const struct cbm_conv *conv)
{
	return READ_ONCE(conv->cfg_gen);
}

#endif /* _CBM_CONV_H */
