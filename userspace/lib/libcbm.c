// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * libcbm - the character device part (open, send, receive, configure) as
 * thin wrappers of the ioctls in <linux/cbm.h>, and the generic netlink
 * part (stats, remote changes, events) over libnl-genl-3.
 *
 * Every public function returns 0 (or a count) or a negative errno; errno
 * itself is left as the last system call set it and means nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "libcbm.h"

#define CBM_DEV_PATH		"/dev/cbm"
/* Start of a handle's receive buffer; it grows to the largest record */
#define CBM_RBUF_INIT		4096
/*
 * struct cbm_record as first published: no kernel sends a shorter header,
 * and later ones only append fields, so a shorter one does not parse.
 */
#define CBM_RECORD_HDR_MIN	(offsetof(struct cbm_record, __reserved) + \
				 sizeof(((struct cbm_record *)0)->__reserved))

#define CBM_OPEN_ALL	(CBM_OPEN_CREATE | CBM_OPEN_EXCL | CBM_OPEN_ANON | \
			 CBM_OPEN_MODE | CBM_OPEN_RDONLY | CBM_OPEN_WRONLY | \
			 CBM_OPEN_NONBLOCK | CBM_OPEN_LOSSY)
/* Mode of a conversation created without CBM_OPEN_MODE and mode 0 */
#define CBM_MODE_DEFAULT	0600

#define CBM_STR(x)	#x
#define CBM_XSTR(x)	CBM_STR(x)

/**
 * struct cbm - an open file of /dev/cbm
 * @fd: the file, bound to a conversation, in record format
 * @rbuf: where cbm_recv() reads records, @rbuf_size bytes
 * @rbuf_size: bytes at @rbuf
 * @held: bytes of a record in @rbuf that cbm_recv() read from the kernel
 *        but could not hand out (the caller's buffer was too small): the
 *        next cbm_recv() returns it, so to the caller nothing was consumed
 */
struct cbm {
	int fd;
	void *rbuf;
	size_t rbuf_size;
	size_t held;
};

/*
 * Copy a caller's options struct of @sz bytes into @out (@out_sz bytes,
 * zeroed first). A shorter struct is an older caller: its missing fields
 * are 0. A longer one is a newer caller: the fields this library does not
 * know must be zero, as the kernel treats its own size-first structs.
 */
static int cbm_copy_opts(void *out, size_t out_sz, const void *opts,
			 size_t sz)
{
	const unsigned char *tail;
	size_t i;

	memset(out, 0, out_sz);
	if (!opts)
		return 0;
	if (sz < sizeof(size_t))
		return -EINVAL;
	/* Only now: arithmetic on a NULL pointer is undefined */
	tail = (const unsigned char *)opts + out_sz;
	for (i = 0; out_sz + i < sz; i++)
		if (tail[i])
			return -EINVAL;
	memcpy(out, opts, sz < out_sz ? sz : out_sz);
	return 0;
}

static int cbm_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* Copy @name into a name field of CBM_NAME_MAX bytes */
static int cbm_put_name(char *dst, const char *name)
{
	size_t len;

	if (!name)
		return -EINVAL;
	len = strlen(name);
	if (len >= CBM_NAME_MAX)
		return -EINVAL;
	memcpy(dst, name, len + 1);
	return 0;
}

/* The CBM_IOC_BIND argument for cbm_open()'s @name and options @o */
static int cbm_fill_bind(struct cbm_bind *bind, const char *name,
			 const struct cbm_open_opts *o)
{
	int err;

	if (o->flags & CBM_OPEN_ANON) {
		if (name || o->flags & (CBM_OPEN_CREATE | CBM_OPEN_EXCL))
			return -EINVAL;
		bind->flags = CBM_BIND_ANON;
	} else {
		err = cbm_put_name(bind->name, name ? name : CBM_DEFAULT_NAME);
		if (err)
			return err;
		if (o->flags & CBM_OPEN_CREATE)
			bind->flags |= CBM_BIND_CREATE;
		if (o->flags & CBM_OPEN_EXCL)
			bind->flags |= CBM_BIND_EXCL;
	}
	/* Without CBM_OPEN_MODE, 0 is "not set", as before the flag existed */
	bind->mode = o->mode;
	if (!o->mode && !(o->flags & CBM_OPEN_MODE))
		bind->mode = CBM_MODE_DEFAULT;
	bind->conv_flags = o->conv_flags;
	bind->capacity = o->capacity;
	return 0;
}

/**
 * cbm_open() - open /dev/cbm and bind the file to a conversation
 * @name: the conversation's name; NULL for ``default`` (or with
 *        %CBM_OPEN_ANON, which requires NULL)
 * @opts: how to open and bind, or NULL for the defaults (read-write,
 *        blocking, attach to an existing conversation)
 * @cbmp: where the new handle is stored on success
 *
 * The file reads in record format (%CBM_FD_RECORDS), so cbm_recv() sees
 * every header and gap; with %CBM_OPEN_LOSSY it never holds back eviction
 * in a lossless conversation.
 *
 * Return: 0 or a negative errno: -EINVAL for unknown @opts flags, an
 * @opts.sz that is too small or whose unknown tail is not zero,
 * %CBM_OPEN_RDONLY with %CBM_OPEN_WRONLY, %CBM_OPEN_ANON with a name or
 * with %CBM_OPEN_CREATE or %CBM_OPEN_EXCL, or a name of %CBM_NAME_MAX
 * bytes or more; -ENOMEM; those of open() and %CBM_IOC_BIND (-ENOENT,
 * -EEXIST, -EACCES, ...).
 */
int cbm_open(const char *name, const struct cbm_open_opts *opts,
	     struct cbm **cbmp)
{
	struct cbm_fd_config cfg = { .size = sizeof(cfg) };
	struct cbm_bind bind = { .size = sizeof(bind) };
	struct cbm_open_opts o;
	struct cbm *cbm;
	int oflags, err;

	err = cbm_copy_opts(&o, sizeof(o), opts, opts ? opts->sz : 0);
	if (err)
		return err;
	if (!cbmp || o.flags & ~CBM_OPEN_ALL)
		return -EINVAL;
	if ((o.flags & CBM_OPEN_RDONLY) && (o.flags & CBM_OPEN_WRONLY))
		return -EINVAL;
	err = cbm_fill_bind(&bind, name, &o);
	if (err)
		return err;

	oflags = O_RDWR;
	if (o.flags & CBM_OPEN_RDONLY)
		oflags = O_RDONLY;
	else if (o.flags & CBM_OPEN_WRONLY)
		oflags = O_WRONLY;
	oflags |= O_CLOEXEC;
	if (o.flags & CBM_OPEN_NONBLOCK)
		oflags |= O_NONBLOCK;

	cbm = calloc(1, sizeof(*cbm));
	if (!cbm)
		return -ENOMEM;
	cbm->fd = open(o.dev ? o.dev : CBM_DEV_PATH, oflags);
	if (cbm->fd < 0) {
		err = -errno;
		goto err_free;
	}
	/* Before binding, so a lossy reader never holds back anyone */
	cfg.flags = CBM_FD_RECORDS;
	if (o.flags & CBM_OPEN_LOSSY)
		cfg.flags |= CBM_FD_LOSSY;
	cfg.role = CBM_ROLE_USER;
	err = cbm_ioctl(cbm->fd, CBM_IOC_SET_CONFIG, &cfg);
	if (err)
		goto err_close;
	err = cbm_ioctl(cbm->fd, CBM_IOC_BIND, &bind);
	if (err)
		goto err_close;
	*cbmp = cbm;
	return 0;

err_close:
	close(cbm->fd);
err_free:
	free(cbm);
	return err;
}

/**
 * cbm_create() - create a named conversation and open it
 * @name: the new conversation's name
 * @opts: as for cbm_open(), or NULL; %CBM_OPEN_CREATE and %CBM_OPEN_EXCL
 *        are added
 * @cbmp: where the new handle is stored on success
 *
 * Return: 0 or a negative errno, as cbm_open(); -EEXIST if the name
 * exists, -EINVAL if @name is NULL.
 */
int cbm_create(const char *name, const struct cbm_open_opts *opts,
	       struct cbm **cbmp)
{
	struct cbm_open_opts o;
	int err;

	if (!name)
		return -EINVAL;
	err = cbm_copy_opts(&o, sizeof(o), opts, opts ? opts->sz : 0);
	if (err)
		return err;
	o.sz = sizeof(o);
	o.flags |= CBM_OPEN_CREATE | CBM_OPEN_EXCL;
	return cbm_open(name, &o, cbmp);
}

/**
 * cbm_attach() - open an existing conversation
 * @name: the conversation's name, NULL for ``default``
 * @opts: as for cbm_open(), or NULL; %CBM_OPEN_CREATE, %CBM_OPEN_EXCL and
 *        %CBM_OPEN_ANON are refused
 * @cbmp: where the new handle is stored on success
 *
 * Return: 0 or a negative errno, as cbm_open(); -EINVAL for the refused
 * flags, -ENOENT if the name does not exist.
 */
int cbm_attach(const char *name, const struct cbm_open_opts *opts,
	       struct cbm **cbmp)
{
	struct cbm_open_opts o;
	int err;

	err = cbm_copy_opts(&o, sizeof(o), opts, opts ? opts->sz : 0);
	if (err)
		return err;
	if (o.flags & (CBM_OPEN_CREATE | CBM_OPEN_EXCL | CBM_OPEN_ANON))
		return -EINVAL;
	o.sz = sizeof(o);
	return cbm_open(name, &o, cbmp);
}

/**
 * cbm_close() - close a handle and free it
 * @cbm: the handle, or NULL
 *
 * An anonymous conversation goes with its last file; a named one stays
 * until cbm_unlink().
 */
void cbm_close(struct cbm *cbm)
{
	if (!cbm)
		return;
	close(cbm->fd);
	free(cbm->rbuf);
	free(cbm);
}

/**
 * cbm_fd() - the file descriptor of a handle
 * @cbm: the handle
 *
 * For poll()/epoll and the ioctls libcbm does not wrap; it stays owned by
 * the handle (do not close it) and reads in record format.
 *
 * Return: the file descriptor.
 */
int cbm_fd(const struct cbm *cbm)
{
	return cbm->fd;
}

/**
 * cbm_unlink() - remove a conversation's name
 * @name: the conversation's name
 *
 * Files bound to it keep it until they are closed; see %CBM_IOC_UNLINK.
 *
 * Return: 0 or a negative errno: -EINVAL for a NULL or too long name,
 * those of open() and %CBM_IOC_UNLINK (-ENOENT, -EACCES, -EBUSY for
 * ``default``).
 */
int cbm_unlink(const char *name)
{
	struct cbm_unlink u = { .size = sizeof(u) };
	int fd, err;

	err = cbm_put_name(u.name, name);
	if (err)
		return err;
	fd = open(CBM_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = cbm_ioctl(fd, CBM_IOC_UNLINK, &u);
	close(fd);
	return err;
}

/*
 * Fill the fields that struct cbm_send, struct cbm_batch_msg and struct
 * cbm_restore_msg share from a struct cbm_message: a macro, as they are
 * three types. -EMSGSIZE for a payload their __u32 len cannot describe.
 */
#define cbm_fill_desc(d, m) ({						\
	const struct cbm_message *m_ = (m);				\
	int err_ = m_->len > UINT32_MAX ? -EMSGSIZE : 0;		\
									\
	if (!err_) {							\
		(d)->flags = m_->flags;					\
		(d)->role = m_->role;					\
		(d)->len = m_->len;					\
		(d)->tokens = m_->tokens;				\
		(d)->data = (uintptr_t)m_->data;			\
	}								\
	err_;								\
})

/**
 * cbm_send() - append one message
 * @cbm: the handle, opened for writing
 * @msg: the message
 * @seq: where its sequence number is stored, or NULL
 *
 * Blocks, evicts or fails as write() does (see %CBM_IOC_SEND).
 *
 * Return: 0 or a negative errno: -EINVAL if @msg is NULL, -EMSGSIZE for a
 * payload of 4 GiB or more, those of %CBM_IOC_SEND.
 */
int cbm_send(struct cbm *cbm, const struct cbm_message *msg, uint64_t *seq)
{
	struct cbm_send s = { .size = sizeof(s) };
	int err;

	if (!msg)
		return -EINVAL;
	err = cbm_fill_desc(&s, msg);
	if (!err)
		err = cbm_ioctl(cbm->fd, CBM_IOC_SEND, &s);
	if (!err && seq)
		*seq = s.seq;
	return err;
}

/**
 * cbm_send_batch() - append several messages in one system call
 * @cbm: the handle, opened for writing
 * @msgs: @n messages
 * @n: 0 to %CBM_BATCH_MAX
 * @first_seq: where the first appended message's sequence number is
 *             stored (the others follow without a hole), or NULL
 *
 * See %CBM_IOC_SEND_BATCH: the batch may stop early; the rest is the
 * caller's to resubmit.
 *
 * Return: the number of messages appended, or a negative errno if none
 * was: -E2BIG if @n is above %CBM_BATCH_MAX, -EINVAL if @msgs is NULL
 * with @n not 0, -EMSGSIZE for a payload of 4 GiB or more, -ENOMEM,
 * those of %CBM_IOC_SEND_BATCH.
 */
int cbm_send_batch(struct cbm *cbm, const struct cbm_message *msgs,
		   unsigned int n, uint64_t *first_seq)
{
	struct cbm_send_batch b = { .size = sizeof(b) };
	struct cbm_batch_msg *d;
	unsigned int i;
	int ret;

	if (n > CBM_BATCH_MAX)
		return -E2BIG;
	if (!msgs && n)
		return -EINVAL;
	d = calloc(n ? n : 1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ret = cbm_fill_desc(&d[i], &msgs[i]);
		if (ret) {
			free(d);
			return ret;
		}
	}
	b.msgs = (uintptr_t)d;
	b.count = n;
	b.msg_size = sizeof(*d);
	ret = ioctl(cbm->fd, CBM_IOC_SEND_BATCH, &b);
	if (ret < 0)
		ret = -errno;
	else if (ret > 0 && first_seq)
		*first_seq = b.first_seq;
	free(d);
	return ret;
}

/**
 * cbm_restore() - put saved messages back, keeping their history
 * @cbm: the handle, opened for writing, of a conversation that never had
 *       a message appended (see "Restoring a saved conversation")
 * @msgs: @n messages, sequence numbers strictly increasing
 * @n: any number; they go to the kernel %CBM_BATCH_MAX at a time
 * @next_seq: 0, or the sequence number the next appended message gets;
 *            applied with the last chunk only, so only if every message
 *            was restored
 *
 * A chunk the kernel restores only in part ends the call.
 *
 * Return: the number of messages restored, or a negative errno if the
 * first chunk restored none: -EINVAL if @msgs is NULL with @n not 0,
 * -E2BIG if @n is above INT_MAX, -EMSGSIZE for a payload of 4 GiB or
 * more, -ENOMEM, those of %CBM_IOC_RESTORE (-EBUSY, -EPERM, -EINVAL for
 * out-of-order messages, ...). An error after the first chunk returns
 * the count restored before it.
 */
int cbm_restore(struct cbm *cbm, const struct cbm_saved_message *msgs,
		size_t n, uint64_t next_seq)
{
	struct cbm_restore r = { .size = sizeof(r) };
	struct cbm_restore_msg *d;
	size_t done = 0, chunk, i;
	int ret;

	if (n > INT_MAX)
		return -E2BIG;
	if (!msgs && n)
		return -EINVAL;
	d = calloc(n < CBM_BATCH_MAX ? (n ? n : 1) : CBM_BATCH_MAX,
		   sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* One call even for no message: it may still apply @next_seq */
	do {
		chunk = n - done < CBM_BATCH_MAX ? n - done : CBM_BATCH_MAX;
		for (i = 0; i < chunk; i++) {
			const struct cbm_saved_message *s = &msgs[done + i];

			ret = cbm_fill_desc(&d[i], &s->msg);
			if (ret)
				goto out;
			d[i].seq = s->seq;
			d[i].ts_ns = s->ts_ns;
		}
		r.msgs = (uintptr_t)d;
		r.count = chunk;
		r.msg_size = sizeof(*d);
		r.next_seq = done + chunk == n ? next_seq : 0;
		ret = ioctl(cbm->fd, CBM_IOC_RESTORE, &r);
		if (ret < 0) {
			ret = -errno;
			goto out;
		}
		done += ret;
		if ((size_t)ret < chunk)
			break;
	} while (done < n);
	ret = 0;
out:
	free(d);
	return done || !ret ? (int)done : ret;
}

/* Make @cbm->rbuf hold at least @size bytes, keeping what it holds */
static int cbm_rbuf_reserve(struct cbm *cbm, size_t size)
{
	void *p;

	if (size <= cbm->rbuf_size)
		return 0;
	p = realloc(cbm->rbuf, size);
	if (!p)
		return -ENOMEM;
	cbm->rbuf = p;
	cbm->rbuf_size = size;
	return 0;
}

/* Read the next record into @cbm->rbuf. Returns its size, 0 or -errno. */
static ssize_t cbm_read_record(struct cbm *cbm)
{
	ssize_t n;
	int need, err;

	err = cbm_rbuf_reserve(cbm, CBM_RBUF_INIT);
	if (err)
		return err;
	for (;;) {
		n = read(cbm->fd, cbm->rbuf, cbm->rbuf_size);
		if (n >= 0)
			return n;
		if (errno != EMSGSIZE)
			return -errno;
		/*
		 * Nothing was consumed; FIONREAD tells the size of the record
		 * now first, which may differ from the one that did not fit
		 * if it was evicted meanwhile: just try again.
		 */
		if (ioctl(cbm->fd, FIONREAD, &need) < 0)
			return -errno;
		err = cbm_rbuf_reserve(cbm, need);
		if (err)
			return err;
	}
}

/**
 * cbm_recv() - read the next record, copying its payload
 * @cbm: the handle, opened for reading
 * @rec: where the record's header is stored, as this library knows
 *       struct cbm_record (fields a newer kernel appends are skipped, ones
 *       an older kernel lacks are 0)
 * @buf: where the payload, @rec->len bytes, is copied
 * @size: bytes at @buf
 *
 * A %CBM_RECORD_GAP record (messages this reader lost: @rec->seq the
 * first, @rec->lost how many) has no payload. Blocks for the next message
 * unless the handle is non-blocking.
 *
 * Return: 1 when a record was stored, 0 once the conversation is unlinked
 * and every message read, or a negative errno: -EAGAIN when non-blocking
 * and nothing is left, -EMSGSIZE when @size is smaller than the payload
 * (@rec->len then holds the size needed and nothing is consumed: the next
 * call returns the same record), -EINTR, -EBADF for a write-only handle,
 * -EIO for a record that does not parse (a header shorter than the first
 * struct cbm_record, 56 bytes, or a header and payload longer than the
 * record), -ENOMEM.
 */
int cbm_recv(struct cbm *cbm, struct cbm_record *rec, void *buf,
	     size_t size)
{
	const struct cbm_record *r;
	ssize_t n;
	size_t hdr;

	if (!rec || (!buf && size))
		return -EINVAL;
	if (cbm->held) {
		n = cbm->held;
	} else {
		n = cbm_read_record(cbm);
		if (n <= 0)
			return n;
	}
	r = cbm->rbuf;
	if ((size_t)n < CBM_RECORD_HDR_MIN || r->hdr_len < CBM_RECORD_HDR_MIN ||
	    r->hdr_len > n || n - r->hdr_len < r->len) {
		cbm->held = 0;
		return -EIO;
	}
	hdr = r->hdr_len < sizeof(*rec) ? r->hdr_len : sizeof(*rec);
	memset(rec, 0, sizeof(*rec));
	memcpy(rec, r, hdr);
	if (rec->len > size) {
		cbm->held = n;
		return -EMSGSIZE;
	}
	cbm->held = 0;
	if (rec->len)
		memcpy(buf, (const char *)r + r->hdr_len, rec->len);
	return 1;
}

/**
 * cbm_wait() - wait until cbm_recv() has something to return
 * @cbm: the handle, opened for reading
 * @timeout_ms: as poll()'s: -1 waits for ever, 0 does not wait
 *
 * Return: 1 when a record is ready or the conversation was unlinked (the
 * next cbm_recv() then returns 0 once drained), 0 on timeout, or a
 * negative errno: -EINTR, those of poll().
 */
int cbm_wait(struct cbm *cbm, int timeout_ms)
{
	struct pollfd p = { .fd = cbm->fd, .events = POLLIN };
	int n;

	if (cbm->held)
		return 1;
	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return -errno;
	if (!n)
		return 0;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return p.revents & (POLLIN | POLLHUP | POLLERR) ? 1 : 0;
}

/**
 * cbm_seek() - move the handle's read cursor
 * @cbm: the handle, opened for reading
 * @whence: an enum cbm_seek_whence: a sequence number, a time or a count
 *          of newest messages
 * @value: what to seek to
 * @cursor: where the new cursor is stored, or NULL
 *
 * A record a cbm_recv() kept after -EMSGSIZE is dropped, as is a pending
 * gap (see %CBM_IOC_SEEK).
 *
 * Return: 0 or a negative errno: those of %CBM_IOC_SEEK (-EINVAL for an
 * unknown @whence or a target after the newest message, -EBADF).
 */
int cbm_seek(struct cbm *cbm, unsigned int whence, uint64_t value,
	     uint64_t *cursor)
{
	struct cbm_seek s = { .size = sizeof(s), .whence = whence,
			      .value = value };
	int err;

	err = cbm_ioctl(cbm->fd, CBM_IOC_SEEK, &s);
	if (err)
		return err;
	cbm->held = 0;
	if (cursor)
		*cursor = s.cursor;
	return 0;
}

/**
 * cbm_read_window() - copy every stored message in one snapshot
 * @cbm: the handle, opened for reading
 * @last: 0 for every stored message, or only the newest @last
 * @bufp: where a malloc()ed buffer of records is stored (NULL if there is
 *        none); the caller free()s it
 * @lenp: where the bytes in it are stored
 * @countp: where the number of records is stored
 *
 * Walk the records with cbm_record_next() and cbm_record_payload(), @count
 * of them. The cursor does not move.
 *
 * Return: 0 or a negative errno: -EINVAL for a NULL out pointer, -ENOMEM,
 * those of %CBM_IOC_READ_WINDOW (-EBADF).
 */
int cbm_read_window(struct cbm *cbm, uint64_t last, void **bufp,
		    size_t *lenp, uint64_t *countp)
{
	struct cbm_read_window w;
	void *buf = NULL, *p;
	size_t len = 0;
	int err;

	if (!bufp || !lenp || !countp)
		return -EINVAL;
	/* The window may grow between the sizing call and the copy: retry */
	for (;;) {
		memset(&w, 0, sizeof(w));
		w.size = sizeof(w);
		w.buf = (uintptr_t)buf;
		w.len = len;
		w.last = last;
		err = cbm_ioctl(cbm->fd, CBM_IOC_READ_WINDOW, &w);
		if (err != -EMSGSIZE)
			break;
		if (w.needed > SIZE_MAX) {
			err = -ENOMEM;
			break;
		}
		p = realloc(buf, w.needed);
		if (!p) {
			err = -ENOMEM;
			break;
		}
		buf = p;
		len = w.needed;
	}
	if (err) {
		free(buf);
		return err;
	}
	if (!w.count) {
		free(buf);
		buf = NULL;
	}
	*bufp = buf;
	*lenp = w.count ? w.needed : 0;
	*countp = w.count;
	return 0;
}

/**
 * cbm_map_attach() - place a zero-copy reader (cbm_map.h) in the handle's
 * conversation
 * @cbm: the handle, opened for reading; it must outlive @map
 * @start: an enum cbm_map_start
 * @map: the reader to set up; cbm_map_close() it before cbm_close()
 *
 * Return: 0 or a negative errno, as cbm_map_open().
 */
int cbm_map_attach(struct cbm *cbm, enum cbm_map_start start,
		   struct cbm_map *map)
{
	if (!map)
		return -EINVAL;
	return cbm_map_open(map, cbm->fd, start);
}

/**
 * cbm_info() - the conversation's state
 * @cbm: the handle
 * @info: filled, its size set by the library
 *
 * Clears the handle's ``EPOLLPRI``, as %CBM_IOC_INFO.
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_INFO.
 */
int cbm_info(struct cbm *cbm, struct cbm_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return cbm_ioctl(cbm->fd, CBM_IOC_INFO, info);
}

/**
 * cbm_reader_info() - the handle's reader state
 * @cbm: the handle, opened for reading
 * @info: filled, its size set by the library
 *
 * A record a cbm_recv() kept after -EMSGSIZE counts as read here.
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_READER_INFO (-EBADF).
 */
int cbm_reader_info(struct cbm *cbm, struct cbm_reader_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return cbm_ioctl(cbm->fd, CBM_IOC_READER_INFO, info);
}

/**
 * cbm_set_window() - set the conversation's window
 * @cbm: the handle, opened for writing
 * @win: the window; its size field is ignored (the library sets it)
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_SET_WINDOW (-EPERM,
 * -EBADF, -EINVAL).
 */
int cbm_set_window(struct cbm *cbm, const struct cbm_window *win)
{
	struct cbm_window w;

	if (!win)
		return -EINVAL;
	w = *win;
	w.size = sizeof(w);
	return cbm_ioctl(cbm->fd, CBM_IOC_SET_WINDOW, &w);
}

/**
 * cbm_get_window() - the conversation's window
 * @cbm: the handle
 * @win: filled, its size set by the library
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_GET_WINDOW.
 */
int cbm_get_window(struct cbm *cbm, struct cbm_window *win)
{
	memset(win, 0, sizeof(*win));
	win->size = sizeof(*win);
	return cbm_ioctl(cbm->fd, CBM_IOC_GET_WINDOW, win);
}

/**
 * cbm_resize() - change the conversation's capacity
 * @cbm: the handle, opened for writing
 * @capacity: the new ring size, rounded up by the kernel; 0 for the
 *            module's default
 * @new_capacity: where the rounded size is stored, or NULL
 * @evicted: where the number of messages evicted to fit is stored, or
 *           NULL
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_RESIZE (-EBUSY in a
 * lossless conversation, -E2BIG, -EPERM, -EBADF, -ENOSPC, -ENOMEM).
 */
int cbm_resize(struct cbm *cbm, uint64_t capacity, uint64_t *new_capacity,
	       uint64_t *evicted)
{
	struct cbm_resize r = { .size = sizeof(r), .capacity = capacity };
	int err;

	err = cbm_ioctl(cbm->fd, CBM_IOC_RESIZE, &r);
	if (err)
		return err;
	if (new_capacity)
		*new_capacity = r.capacity;
	if (evicted)
		*evicted = r.evicted;
	return 0;
}

/**
 * cbm_set_autoresize() - set the conversation's automatic resizing
 * @cbm: the handle, opened for writing
 * @cfg: the settings; its size field is ignored (the library sets it)
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_SET_AUTORESIZE.
 */
int cbm_set_autoresize(struct cbm *cbm, const struct cbm_autoresize *cfg)
{
	struct cbm_autoresize a;

	if (!cfg)
		return -EINVAL;
	a = *cfg;
	a.size = sizeof(a);
	return cbm_ioctl(cbm->fd, CBM_IOC_SET_AUTORESIZE, &a);
}

/**
 * cbm_get_autoresize() - the conversation's automatic resizing
 * @cbm: the handle
 * @cfg: filled, its size set by the library
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_GET_AUTORESIZE.
 */
int cbm_get_autoresize(struct cbm *cbm, struct cbm_autoresize *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	return cbm_ioctl(cbm->fd, CBM_IOC_GET_AUTORESIZE, cfg);
}

/**
 * cbm_unpin() - return a pinned message to the window
 * @cbm: the handle, opened for writing
 * @seq: the pinned message's sequence number
 *
 * Return: 0 or a negative errno, those of %CBM_IOC_UNPIN (-ENOENT if no
 * pinned message has @seq).
 */
int cbm_unpin(struct cbm *cbm, uint64_t seq)
{
	struct cbm_pin p = { .size = sizeof(p), .seq = seq };

	return cbm_ioctl(cbm->fd, CBM_IOC_UNPIN, &p);
}

static const char *const cbm_role_names[__CBM_ROLE_MAX] = {
	[CBM_ROLE_OTHER]	= "other",
	[CBM_ROLE_SYSTEM]	= "system",
	[CBM_ROLE_USER]		= "user",
	[CBM_ROLE_ASSISTANT]	= "assistant",
	[CBM_ROLE_TOOL]		= "tool",
};

/**
 * cbm_role_name() - the name of a role
 * @role: an enum cbm_role
 *
 * Return: "other", "system", "user", "assistant" or "tool", or NULL for a
 * value that is not a role.
 */
const char *cbm_role_name(unsigned int role)
{
	return role < __CBM_ROLE_MAX ? cbm_role_names[role] : NULL;
}

/**
 * cbm_role_parse() - a role from its name or number
 * @name: a name cbm_role_name() returns, or a decimal number below
 *        %__CBM_ROLE_MAX
 *
 * Return: the enum cbm_role, or -EINVAL for anything else.
 */
int cbm_role_parse(const char *name)
{
	unsigned int role;

	if (!name || !*name)
		return -EINVAL;
	for (role = 0; role < __CBM_ROLE_MAX; role++)
		if (!strcmp(name, cbm_role_names[role]))
			return role;
	/* Digits only: strtoul() would take signs, spaces and 0x */
	if (strspn(name, "0123456789") != strlen(name) || strlen(name) > 3)
		return -EINVAL;
	role = atoi(name);
	return role < __CBM_ROLE_MAX ? (int)role : -EINVAL;
}

/**
 * cbm_version() - the library's version
 *
 * Return: "MAJOR.MINOR", as %LIBCBM_MAJOR_VERSION and
 * %LIBCBM_MINOR_VERSION.
 */
const char *cbm_version(void)
{
	return CBM_XSTR(LIBCBM_MAJOR_VERSION) "."
	       CBM_XSTR(LIBCBM_MINOR_VERSION);
}

/**
 * struct cbm_nl - a generic netlink socket to the "cbm" family
 * @sk: requests and their replies
 * @family: the family's id
 * @group: the "events" multicast group's id
 * @ev: the socket that joined @group, NULL until cbm_nl_subscribe(); a
 *      socket of its own, so events never interleave with replies
 */
struct cbm_nl {
	struct nl_sock *sk;
	int family;
	int group;
	struct nl_sock *ev;
};

/*
 * libnl's errors as errnos: the inverse of nl_syserr2nlerr() where it is
 * one to one, the nearest errno elsewhere. Replies from the kernel never
 * come through here: their exact errno is taken from the nlmsgerr.
 */
static int cbm_nl_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_SUCCESS:		return 0;
	case NLE_INTR:			return -EINTR;
	case NLE_BAD_SOCK:		return -EBADF;
	case NLE_AGAIN:			return -EAGAIN;
	case NLE_NOMEM:			return -ENOMEM;
	case NLE_EXIST:			return -EEXIST;
	case NLE_INVAL:			return -EINVAL;
	case NLE_RANGE:			return -ERANGE;
	case NLE_MSGSIZE:		return -EMSGSIZE;
	case NLE_OPNOTSUPP:		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:		return -ENOENT;
	case NLE_NOATTR:
	case NLE_MISSING_ATTR:
	case NLE_MSG_TOOSHORT:
	case NLE_MSGTYPE_NOSUPPORT:
	case NLE_ATTRSIZE:
	case NLE_PARSE_ERR:		return -EPROTO;
	case NLE_SEQ_MISMATCH:		return -EILSEQ;
	case NLE_MSG_OVERFLOW:
	case NLE_MSG_TRUNC:		return -EMSGSIZE;
	case NLE_NOADDR:		return -EADDRNOTAVAIL;
	case NLE_BUSY:			return -EBUSY;
	case NLE_PROTO_MISMATCH:	return -EPROTONOSUPPORT;
	case NLE_NOACCESS:		return -EACCES;
	case NLE_PERM:			return -EPERM;
	case NLE_NODEV:			return -ENODEV;
	case NLE_DUMP_INTR:		return -EAGAIN;
	default:			return -EIO;
	}
}

static struct nla_policy cbm_conv_policy[CBM_NL_A_MAX + 1] = {
	[CBM_NL_A_NAME]		= { .type = NLA_STRING, .maxlen = CBM_NAME_MAX },
	[CBM_NL_A_FLAGS]	= { .type = NLA_U32 },
	[CBM_NL_A_UID]		= { .type = NLA_U32 },
	[CBM_NL_A_GID]		= { .type = NLA_U32 },
	[CBM_NL_A_MODE]		= { .type = NLA_U32 },
	[CBM_NL_A_CAPACITY]	= { .type = NLA_U64 },
	[CBM_NL_A_USED]		= { .type = NLA_U64 },
	[CBM_NL_A_MSGS]		= { .type = NLA_U64 },
	[CBM_NL_A_FIRST_SEQ]	= { .type = NLA_U64 },
	[CBM_NL_A_NEXT_SEQ]	= { .type = NLA_U64 },
	[CBM_NL_A_APPENDED]	= { .type = NLA_U64 },
	[CBM_NL_A_EVICTED]	= { .type = NLA_U64 },
	[CBM_NL_A_EXPIRED]	= { .type = NLA_U64 },
	[CBM_NL_A_LOST]		= { .type = NLA_U64 },
	[CBM_NL_A_READERS]	= { .type = NLA_U32 },
	[CBM_NL_A_RESIZES]	= { .type = NLA_U64 },
	[CBM_NL_A_PINNED]	= { .type = NLA_U64 },
	[CBM_NL_A_PINNED_BYTES]	= { .type = NLA_U64 },
	[CBM_NL_A_MAX_MSG_SIZE]	= { .type = NLA_U32 },
	[CBM_NL_A_WINDOW]	= { .type = NLA_NESTED },
	[CBM_NL_A_AUTORESIZE]	= { .type = NLA_NESTED },
	[CBM_NL_A_READER]	= { .type = NLA_NESTED },
	[CBM_NL_A_READERS_TRUNCATED] = { .type = NLA_FLAG },
	[CBM_NL_A_EVENT]	= { .type = NLA_U32 },
	[CBM_NL_A_EVENT_COUNT]	= { .type = NLA_U64 },
	[CBM_NL_A_RESTRICTED]	= { .type = NLA_FLAG },
};

static struct nla_policy cbm_window_policy[CBM_NL_WINDOW_A_MAX + 1] = {
	[CBM_NL_WINDOW_A_FLAGS]		= { .type = NLA_U32 },
	[CBM_NL_WINDOW_A_MAX_MSGS]	= { .type = NLA_U64 },
	[CBM_NL_WINDOW_A_MAX_BYTES]	= { .type = NLA_U64 },
	[CBM_NL_WINDOW_A_MAX_TOKENS]	= { .type = NLA_U64 },
	[CBM_NL_WINDOW_A_MAX_AGE_NS]	= { .type = NLA_U64 },
};

static struct nla_policy cbm_autoresize_policy[CBM_NL_AUTORESIZE_A_MAX + 1] = {
	[CBM_NL_AUTORESIZE_A_FLAGS]		= { .type = NLA_U32 },
	[CBM_NL_AUTORESIZE_A_MIN_CAPACITY]	= { .type = NLA_U64 },
	[CBM_NL_AUTORESIZE_A_MAX_CAPACITY]	= { .type = NLA_U64 },
	[CBM_NL_AUTORESIZE_A_HIGH_PCT]		= { .type = NLA_U32 },
	[CBM_NL_AUTORESIZE_A_LOW_PCT]		= { .type = NLA_U32 },
	[CBM_NL_AUTORESIZE_A_PERIOD_MS]		= { .type = NLA_U32 },
};

static struct nla_policy cbm_reader_policy[CBM_NL_READER_A_MAX + 1] = {
	[CBM_NL_READER_A_PID]		= { .type = NLA_U32 },
	[CBM_NL_READER_A_FLAGS]		= { .type = NLA_U32 },
	[CBM_NL_READER_A_CURSOR]	= { .type = NLA_U64 },
	[CBM_NL_READER_A_LAG]		= { .type = NLA_U64 },
	[CBM_NL_READER_A_LOST]		= { .type = NLA_U64 },
};

static uint32_t cbm_nla_u32(struct nlattr *a)
{
	return a ? nla_get_u32(a) : 0;
}

static uint64_t cbm_nla_u64(struct nlattr *a)
{
	return a ? nla_get_u64(a) : 0;
}

static int cbm_parse_window(struct nlattr *nest, struct cbm_window *w)
{
	struct nlattr *tb[CBM_NL_WINDOW_A_MAX + 1];

	if (!nest)
		return 0;
	if (nla_parse_nested(tb, CBM_NL_WINDOW_A_MAX, nest, cbm_window_policy))
		return -EPROTO;
	w->flags = cbm_nla_u32(tb[CBM_NL_WINDOW_A_FLAGS]);
	w->max_msgs = cbm_nla_u64(tb[CBM_NL_WINDOW_A_MAX_MSGS]);
	w->max_bytes = cbm_nla_u64(tb[CBM_NL_WINDOW_A_MAX_BYTES]);
	w->max_tokens = cbm_nla_u64(tb[CBM_NL_WINDOW_A_MAX_TOKENS]);
	w->max_age_ns = cbm_nla_u64(tb[CBM_NL_WINDOW_A_MAX_AGE_NS]);
	return 0;
}

static int cbm_parse_autoresize(struct nlattr *nest, struct cbm_autoresize *a)
{
	struct nlattr *tb[CBM_NL_AUTORESIZE_A_MAX + 1];

	if (!nest)
		return 0;
	if (nla_parse_nested(tb, CBM_NL_AUTORESIZE_A_MAX, nest,
			     cbm_autoresize_policy))
		return -EPROTO;
	a->flags = cbm_nla_u32(tb[CBM_NL_AUTORESIZE_A_FLAGS]);
	a->min_capacity = cbm_nla_u64(tb[CBM_NL_AUTORESIZE_A_MIN_CAPACITY]);
	a->max_capacity = cbm_nla_u64(tb[CBM_NL_AUTORESIZE_A_MAX_CAPACITY]);
	a->high_pct = cbm_nla_u32(tb[CBM_NL_AUTORESIZE_A_HIGH_PCT]);
	a->low_pct = cbm_nla_u32(tb[CBM_NL_AUTORESIZE_A_LOW_PCT]);
	a->period_ms = cbm_nla_u32(tb[CBM_NL_AUTORESIZE_A_PERIOD_MS]);
	return 0;
}

/* The readers of a conversation, one nested CBM_NL_A_READER each */
static int cbm_parse_readers(struct genlmsghdr *gh, struct cbm_stats *s)
{
	struct nlattr *tb[CBM_NL_READER_A_MAX + 1];
	struct cbm_reader_stats *r;
	struct nlattr *a;
	unsigned int n = 0;
	int rem;

	nla_for_each_attr(a, genlmsg_attrdata(gh, 0), genlmsg_attrlen(gh, 0),
			  rem)
		if (nla_type(a) == CBM_NL_A_READER)
			n++;
	if (!n)
		return 0;
	s->reader_stats = calloc(n, sizeof(*s->reader_stats));
	if (!s->reader_stats)
		return -ENOMEM;
	nla_for_each_attr(a, genlmsg_attrdata(gh, 0), genlmsg_attrlen(gh, 0),
			  rem) {
		if (nla_type(a) != CBM_NL_A_READER)
			continue;
		if (nla_parse_nested(tb, CBM_NL_READER_A_MAX, a,
				     cbm_reader_policy))
			return -EPROTO;
		r = &s->reader_stats[s->nr_reader_stats++];
		r->pid = cbm_nla_u32(tb[CBM_NL_READER_A_PID]);
		r->flags = cbm_nla_u32(tb[CBM_NL_READER_A_FLAGS]);
		r->cursor = cbm_nla_u64(tb[CBM_NL_READER_A_CURSOR]);
		r->lag = cbm_nla_u64(tb[CBM_NL_READER_A_LAG]);
		r->lost = cbm_nla_u64(tb[CBM_NL_READER_A_LOST]);
	}
	return 0;
}

/*
 * A conversation message (a CONV_GET reply or an event) into @s, zeroed
 * first; @tb gets the parsed top-level attributes. On failure the caller
 * still frees @s->reader_stats.
 */
static int cbm_parse_conv(struct nl_msg *msg, struct cbm_stats *s,
			  struct nlattr **tb)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh = nlmsg_data(nlh);
	int err;

	memset(s, 0, sizeof(*s));
	if (genlmsg_parse(nlh, 0, tb, CBM_NL_A_MAX, cbm_conv_policy))
		return -EPROTO;
	if (tb[CBM_NL_A_NAME])
		nla_strlcpy(s->name, tb[CBM_NL_A_NAME], sizeof(s->name));
	s->flags = cbm_nla_u32(tb[CBM_NL_A_FLAGS]);
	s->uid = cbm_nla_u32(tb[CBM_NL_A_UID]);
	s->gid = cbm_nla_u32(tb[CBM_NL_A_GID]);
	s->mode = cbm_nla_u32(tb[CBM_NL_A_MODE]);
	s->readers = cbm_nla_u32(tb[CBM_NL_A_READERS]);
	s->max_msg_size = cbm_nla_u32(tb[CBM_NL_A_MAX_MSG_SIZE]);
	s->capacity = cbm_nla_u64(tb[CBM_NL_A_CAPACITY]);
	s->used = cbm_nla_u64(tb[CBM_NL_A_USED]);
	s->msgs = cbm_nla_u64(tb[CBM_NL_A_MSGS]);
	s->first_seq = cbm_nla_u64(tb[CBM_NL_A_FIRST_SEQ]);
	s->next_seq = cbm_nla_u64(tb[CBM_NL_A_NEXT_SEQ]);
	s->appended = cbm_nla_u64(tb[CBM_NL_A_APPENDED]);
	s->evicted = cbm_nla_u64(tb[CBM_NL_A_EVICTED]);
	s->expired = cbm_nla_u64(tb[CBM_NL_A_EXPIRED]);
	s->lost = cbm_nla_u64(tb[CBM_NL_A_LOST]);
	s->resizes = cbm_nla_u64(tb[CBM_NL_A_RESIZES]);
	s->pinned = cbm_nla_u64(tb[CBM_NL_A_PINNED]);
	s->pinned_bytes = cbm_nla_u64(tb[CBM_NL_A_PINNED_BYTES]);
	s->readers_truncated = !!tb[CBM_NL_A_READERS_TRUNCATED];
	s->restricted = !!tb[CBM_NL_A_RESTRICTED];
	err = cbm_parse_window(tb[CBM_NL_A_WINDOW], &s->window);
	if (!err)
		err = cbm_parse_autoresize(tb[CBM_NL_A_AUTORESIZE],
					   &s->autoresize);
	if (!err)
		err = cbm_parse_readers(gh, s);
	return err;
}

/**
 * struct cbm_nl_req - one request and its replies
 * @err: the first error: the kernel's errno from an nlmsgerr, or one of
 *       parsing a reply
 * @done: the ack, or NLMSG_DONE ending a dump, arrived
 * @stopped: the caller's callback stopped the dump: the rest is drained
 * @reply: handles each reply; NULL ignores them
 * @arg: @reply's argument
 * @ret: the value the caller's callback stopped the dump with
 */
struct cbm_nl_req {
	int err;
	bool done;
	bool stopped;
	int (*reply)(struct nl_msg *msg, struct cbm_nl_req *req);
	void *arg;
	int ret;
};

static int cbm_nl_valid_cb(struct nl_msg *msg, void *arg)
{
	struct cbm_nl_req *req = arg;
	int err;

	/* NL_SKIP, never NL_STOP: the rest of a dump must still be read */
	if (req->err || req->stopped || !req->reply)
		return NL_SKIP;
	err = req->reply(msg, req);
	if (err < 0)
		req->err = err;
	return NL_SKIP;
}

static int cbm_nl_finish_cb(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct cbm_nl_req *req = arg;
	int dump_err;

	/* A dump that failed part way reports its errno in NLMSG_DONE */
	if (nlh->nlmsg_len >= (__u32)nlmsg_size(sizeof(dump_err))) {
		memcpy(&dump_err, nlmsg_data(nlh), sizeof(dump_err));
		if (dump_err < 0 && !req->err)
			req->err = dump_err;
	}
	req->done = true;
	return NL_STOP;
}

/* Multicast messages carry no sequence number of ours */
static int cbm_nl_seq_any_cb(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

static int cbm_nl_ack_cb(struct nl_msg *msg, void *arg)
{
	struct cbm_nl_req *req = arg;

	(void)msg;
	req->done = true;
	return NL_STOP;
}

static int cbm_nl_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e,
			 void *arg)
{
	struct cbm_nl_req *req = arg;

	(void)nla;
	if (!req->err)
		req->err = e->error;
	req->done = true;
	return NL_STOP;
}

/*
 * Send @msg (consumed) and handle the replies until the ack or the end
 * of the dump. Returns 0 or -errno: the kernel's own errno when it
 * refused the request.
 */
static int cbm_nl_transact(struct cbm_nl *nl, struct nl_msg *msg,
			   struct cbm_nl_req *req)
{
	struct nl_cb *cb;
	int err;

	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cbm_nl_valid_cb, req);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, cbm_nl_finish_cb, req);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, cbm_nl_ack_cb, req);
	nl_cb_err(cb, NL_CB_CUSTOM, cbm_nl_err_cb, req);

	err = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (err < 0) {
		err = cbm_nl_errno(err);
		goto out;
	}
	err = 0;
	while (!req->done) {
		err = nl_recvmsgs(nl->sk, cb);
		if (err < 0)
			break;
	}
	/* The exact errno of the kernel's nlmsgerr over libnl's NLE_* */
	if (req->err)
		err = req->err;
	else if (err < 0)
		err = cbm_nl_errno(err);
out:
	nl_cb_put(cb);
	return err;
}

/* A request for @cmd with @flags, and the conversation's name if given */
static int cbm_nl_msg(struct cbm_nl *nl, uint8_t cmd, int flags,
		      const char *name, struct nl_msg **msgp)
{
	struct nl_msg *msg;

	if (name && (!*name || strlen(name) >= CBM_NAME_MAX))
		return -EINVAL;
	msg = nlmsg_alloc();
	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, CBM_GENL_VERSION) ||
	    (name && nla_put_string(msg, CBM_NL_A_NAME, name) < 0)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	*msgp = msg;
	return 0;
}

/**
 * cbm_nl_open() - open a generic netlink socket to the "cbm" family
 * @nlp: where the new handle is stored on success
 *
 * Return: 0 or a negative errno: -ENOENT if the family is not registered
 * (the module is not loaded), -ENOMEM, those of socket() and bind().
 */
int cbm_nl_open(struct cbm_nl **nlp)
{
	struct cbm_nl *nl;
	int err;

	if (!nlp)
		return -EINVAL;
	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		err = -ENOMEM;
		goto err_free;
	}
	err = genl_connect(nl->sk);
	if (err < 0)
		goto err_nlerr;
	nl->family = genl_ctrl_resolve(nl->sk, CBM_GENL_NAME);
	if (nl->family < 0) {
		err = nl->family;
		goto err_nlerr;
	}
	nl->group = genl_ctrl_resolve_grp(nl->sk, CBM_GENL_NAME,
					  CBM_GENL_MCGRP_EVENTS);
	if (nl->group < 0) {
		err = nl->group;
		goto err_nlerr;
	}
	*nlp = nl;
	return 0;

err_nlerr:
	err = cbm_nl_errno(err);
	nl_socket_free(nl->sk);
err_free:
	free(nl);
	return err;
}

/**
 * cbm_nl_close() - close a netlink handle and free it
 * @nl: the handle, or NULL
 */
void cbm_nl_close(struct cbm_nl *nl)
{
	if (!nl)
		return;
	if (nl->ev)
		nl_socket_free(nl->ev);
	nl_socket_free(nl->sk);
	free(nl);
}

/**
 * cbm_stats_free() - free what cbm_nl_get() returned
 * @stats: the stats, or NULL
 */
void cbm_stats_free(struct cbm_stats *stats)
{
	if (!stats)
		return;
	free(stats->reader_stats);
	free(stats);
}

static int cbm_nl_get_reply(struct nl_msg *msg, struct cbm_nl_req *req)
{
	struct nlattr *tb[CBM_NL_A_MAX + 1];
	struct cbm_stats **sp = req->arg;
	struct cbm_stats *s;
	int err;

	if (*sp)
		return 0;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	err = cbm_parse_conv(msg, s, tb);
	if (err) {
		cbm_stats_free(s);
		return err;
	}
	*sp = s;
	return 0;
}

/**
 * cbm_nl_get() - a named conversation's state and counters
 * @nl: the handle
 * @name: the conversation's name
 * @statsp: where the stats are stored on success; cbm_stats_free() them
 *
 * Return: 0 or a negative errno: -EINVAL for a bad name, -ENOENT if no
 * conversation has it, -EPROTO for a reply that does not parse, -ENOMEM.
 */
int cbm_nl_get(struct cbm_nl *nl, const char *name, struct cbm_stats **statsp)
{
	struct cbm_stats *s = NULL;
	struct cbm_nl_req req = { .reply = cbm_nl_get_reply, .arg = &s };
	struct nl_msg *msg;
	int err;

	if (!name || !statsp)
		return -EINVAL;
	err = cbm_nl_msg(nl, CBM_NL_CMD_CONV_GET, 0, name, &msg);
	if (err)
		return err;
	err = cbm_nl_transact(nl, msg, &req);
	if (!err && !s)
		err = -EPROTO;
	if (err) {
		cbm_stats_free(s);
		return err;
	}
	*statsp = s;
	return 0;
}

/**
 * struct cbm_nl_dump_ctx - the caller's callback of cbm_nl_dump()
 * @cb: called per conversation
 * @ctx: its argument
 */
struct cbm_nl_dump_ctx {
	cbm_stats_cb cb;
	void *ctx;
};

static int cbm_nl_dump_reply(struct nl_msg *msg, struct cbm_nl_req *req)
{
	struct nlattr *tb[CBM_NL_A_MAX + 1];
	struct cbm_nl_dump_ctx *d = req->arg;
	struct cbm_stats s;
	int err;

	err = cbm_parse_conv(msg, &s, tb);
	if (!err) {
		req->ret = d->cb(&s, d->ctx);
		req->stopped = req->ret != 0;
	}
	free(s.reader_stats);
	return err;
}

/**
 * cbm_nl_dump() - every named conversation's state and counters
 * @nl: the handle
 * @cb: called once per conversation, in name order; the stats it gets
 *      are valid only during the call. A non-zero return stops the dump.
 * @ctx: @cb's argument
 *
 * Return: 0 when every conversation was reported, what @cb returned if it
 * stopped the dump, or a negative errno: -EPROTO for a reply that does
 * not parse, -EAGAIN if the kernel says the dump was inconsistent,
 * -ENOMEM.
 */
int cbm_nl_dump(struct cbm_nl *nl, cbm_stats_cb cb, void *ctx)
{
	struct cbm_nl_dump_ctx d = { .cb = cb, .ctx = ctx };
	struct cbm_nl_req req = { .reply = cbm_nl_dump_reply, .arg = &d };
	struct nl_msg *msg;
	int err;

	if (!cb)
		return -EINVAL;
	err = cbm_nl_msg(nl, CBM_NL_CMD_CONV_GET, NLM_F_DUMP, NULL, &msg);
	if (err)
		return err;
	err = cbm_nl_transact(nl, msg, &req);
	if (req.stopped)
		return req.ret;
	return err;
}

/**
 * cbm_nl_unlink() - remove a conversation's name, as cbm_unlink()
 * @nl: the handle
 * @name: the conversation's name
 *
 * Return: 0 or a negative errno: -ENOENT, -EACCES for a caller that neither
 * owns the conversation nor has ``CAP_SYS_ADMIN``, -EBUSY for
 * ``default``, -EINVAL for a bad name.
 */
int cbm_nl_unlink(struct cbm_nl *nl, const char *name)
{
	struct cbm_nl_req req = { 0 };
	struct nl_msg *msg;
	int err;

	if (!name)
		return -EINVAL;
	err = cbm_nl_msg(nl, CBM_NL_CMD_CONV_UNLINK, 0, name, &msg);
	if (err)
		return err;
	return cbm_nl_transact(nl, msg, &req);
}

/**
 * cbm_nl_set_window() - set a conversation's window, as cbm_set_window()
 * @nl: the handle
 * @name: the conversation's name
 * @win: the window (every limit is sent; its size field is ignored)
 *
 * Return: 0 or a negative errno: -ENOENT, -EPERM, -EINVAL, as
 * cbm_nl_unlink() and %CBM_IOC_SET_WINDOW.
 */
int cbm_nl_set_window(struct cbm_nl *nl, const char *name,
		      const struct cbm_window *win)
{
	struct cbm_nl_req req = { 0 };
	struct nlattr *nest;
	struct nl_msg *msg;
	int err;

	if (!name || !win)
		return -EINVAL;
	err = cbm_nl_msg(nl, CBM_NL_CMD_CONV_SET_WINDOW, 0, name, &msg);
	if (err)
		return err;
	nest = nla_nest_start(msg, CBM_NL_A_WINDOW);
	if (!nest ||
	    nla_put_u32(msg, CBM_NL_WINDOW_A_FLAGS, win->flags) < 0 ||
	    nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_MSGS, win->max_msgs) < 0 ||
	    nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_BYTES, win->max_bytes) < 0 ||
	    nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_TOKENS, win->max_tokens) < 0 ||
	    nla_put_u64(msg, CBM_NL_WINDOW_A_MAX_AGE_NS, win->max_age_ns) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, nest);
	return cbm_nl_transact(nl, msg, &req);
}

static int cbm_nl_resize_reply(struct nl_msg *msg, struct cbm_nl_req *req)
{
	struct nlattr *tb[CBM_NL_A_MAX + 1];
	uint64_t *cap = req->arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, CBM_NL_A_MAX,
			  cbm_conv_policy) || !tb[CBM_NL_A_CAPACITY])
		return -EPROTO;
	*cap = nla_get_u64(tb[CBM_NL_A_CAPACITY]);
	return 0;
}

/**
 * cbm_nl_resize() - change a conversation's capacity, as cbm_resize()
 * @nl: the handle
 * @name: the conversation's name
 * @capacity: the new ring size, rounded up by the kernel
 * @new_capacity: where the rounded size is stored, or NULL
 *
 * Return: 0 or a negative errno: -ENOENT, -EPERM, -EINVAL, as
 * cbm_nl_unlink(), those of %CBM_IOC_RESIZE (-EBUSY, -E2BIG, -ENOSPC,
 * -ENOMEM), -EPROTO for a reply without the capacity.
 */
int cbm_nl_resize(struct cbm_nl *nl, const char *name, uint64_t capacity,
		  uint64_t *new_capacity)
{
	uint64_t cap = 0;
	struct cbm_nl_req req = { .reply = cbm_nl_resize_reply, .arg = &cap };
	struct nl_msg *msg;
	int err;

	if (!name)
		return -EINVAL;
	err = cbm_nl_msg(nl, CBM_NL_CMD_CONV_RESIZE, 0, name, &msg);
	if (err)
		return err;
	if (nla_put_u64(msg, CBM_NL_A_CAPACITY, capacity) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	err = cbm_nl_transact(nl, msg, &req);
	if (!err && new_capacity)
		*new_capacity = cap;
	return err;
}

/**
 * cbm_nl_subscribe() - join the "events" multicast group
 * @nl: the handle
 *
 * Events arrive on a second socket of @nl, cbm_nl_event_fd(), read by
 * cbm_nl_events(). Subscribing again does nothing.
 *
 * Return: 0 or a negative errno: -ENOMEM, those of socket(), bind() and
 * setsockopt().
 */
int cbm_nl_subscribe(struct cbm_nl *nl)
{
	struct nl_sock *ev;
	int err;

	if (nl->ev)
		return 0;
	ev = nl_socket_alloc();
	if (!ev)
		return -ENOMEM;
	err = genl_connect(ev);
	if (!err)
		err = nl_socket_add_membership(ev, nl->group);
	if (err < 0) {
		nl_socket_free(ev);
		return cbm_nl_errno(err);
	}
	nl->ev = ev;
	return 0;
}

/**
 * cbm_nl_event_fd() - the file descriptor events arrive on
 * @nl: the handle, subscribed
 *
 * For poll()/epoll: readable when cbm_nl_events() has an event to handle.
 * It stays owned by @nl.
 *
 * Return: the file descriptor, or -EINVAL if @nl is not subscribed.
 */
int cbm_nl_event_fd(const struct cbm_nl *nl)
{
	return nl->ev ? nl_socket_get_fd(nl->ev) : -EINVAL;
}

/**
 * cbm_event_name() - the name of an event type
 * @type: an enum cbm_nl_event
 *
 * Return: "created", "resized", "window", "unlinked" or "evicted", or
 * NULL for a value that is not an event type.
 */
const char *cbm_event_name(unsigned int type)
{
	static const char *const names[__CBM_NL_EVENT_MAX] = {
		[CBM_NL_EVENT_CREATED]	= "created",
		[CBM_NL_EVENT_RESIZED]	= "resized",
		[CBM_NL_EVENT_WINDOW]	= "window",
		[CBM_NL_EVENT_UNLINKED]	= "unlinked",
		[CBM_NL_EVENT_EVICTED]	= "evicted",
	};

	return type < __CBM_NL_EVENT_MAX ? names[type] : NULL;
}

/**
 * struct cbm_nl_events_ctx - the caller's callback of cbm_nl_events()
 * @cb: called per event
 * @ctx: its argument
 * @handled: events handed to @cb
 */
struct cbm_nl_events_ctx {
	cbm_event_cb cb;
	void *ctx;
	int handled;
};

static int cbm_nl_event_reply(struct nl_msg *msg, struct cbm_nl_req *req)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[CBM_NL_A_MAX + 1];
	struct cbm_nl_events_ctx *e = req->arg;
	struct cbm_event ev = { 0 };
	struct cbm_stats s;
	int err;

	if (gh->cmd != CBM_NL_CMD_EVENT)
		return 0;
	err = cbm_parse_conv(msg, &s, tb);
	if (!err && !tb[CBM_NL_A_EVENT])
		err = -EPROTO;
	if (!err) {
		ev.type = nla_get_u32(tb[CBM_NL_A_EVENT]);
		memcpy(ev.name, s.name, sizeof(ev.name));
		ev.count = cbm_nla_u64(tb[CBM_NL_A_EVENT_COUNT]);
		ev.stats = &s;
		e->handled++;
		req->ret = e->cb(&ev, e->ctx);
		req->stopped = req->ret != 0;
	}
	free(s.reader_stats);
	return err;
}

/**
 * cbm_nl_events() - wait for events and hand them to a callback
 * @nl: the handle, subscribed
 * @cb: called once per event; the event is valid only during the call.
 *      A non-zero return stops.
 * @ctx: @cb's argument
 * @timeout_ms: how long to wait for the first event, as poll()'s: -1 for
 *              ever, 0 not at all
 *
 * After the first event, every event already queued is handled without
 * waiting for more.
 *
 * Return: the number of events handled (0 on timeout), what @cb returned
 * if it stopped, or a negative errno: -ENOBUFS once when the socket
 * overran and events were lost (cbm_nl_dump() tells the state now),
 * -EINVAL if @nl is not subscribed, -EINTR, -EPROTO for an event that
 * does not parse, -ENOMEM.
 */
int cbm_nl_events(struct cbm_nl *nl, cbm_event_cb cb, void *ctx,
		  int timeout_ms)
{
	struct cbm_nl_events_ctx e = { .cb = cb, .ctx = ctx };
	struct cbm_nl_req req = { .reply = cbm_nl_event_reply, .arg = &e };
	struct pollfd p = { .events = POLLIN };
	struct nl_cb *ncb;
	char peek;
	int n, err = 0;

	if (!nl->ev || !cb)
		return -EINVAL;
	p.fd = nl_socket_get_fd(nl->ev);
	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return -errno;
	if (!n)
		return 0;
	ncb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!ncb)
		return -ENOMEM;
	nl_cb_set(ncb, NL_CB_VALID, NL_CB_CUSTOM, cbm_nl_valid_cb, &req);
	/* The socket's own callbacks do not apply to this set */
	nl_cb_set(ncb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, cbm_nl_seq_any_cb, NULL);
	while (!req.stopped && !req.err) {
		/*
		 * Peek first: it tells an overrun (ENOBUFS, which the kernel
		 * reports once and libnl would turn into NLE_NOMEM) from an
		 * empty queue, and never blocks.
		 */
		if (recv(p.fd, &peek, sizeof(peek),
			 MSG_PEEK | MSG_DONTWAIT) < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				err = -errno;
			break;
		}
		err = nl_recvmsgs(nl->ev, ncb);
		if (err < 0) {
			err = cbm_nl_errno(err);
			break;
		}
	}
	nl_cb_put(ncb);
	if (req.stopped)
		return req.ret;
	if (req.err)
		return req.err;
	return err ? err : e.handled;
}
