// SPDX-License-Identifier: GPL-2.0
/*
 * cbm file layer: the /dev/cbm misc device, its file operations and
 * ioctls. Everything about storing messages is in conv.c; this file turns
 * system calls into calls on a conversation and checks what userspace
 * passes in.
 */
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <asm/ioctls.h>

#include "acct.h"
#include "compat.h"
#include "conv.h"
#include "netlink.h"

struct cbm_limits cbm_limits = {
	.default_capacity = SZ_256K,
	.max_capacity = SZ_64M,
	.max_msg_size = SZ_64K,
	.max_conversations = 4096,
	.max_pinned = SZ_64K,
};

module_param_named(default_capacity, cbm_limits.default_capacity, ulong,
		   0444);
MODULE_PARM_DESC(default_capacity,
		 "Ring size in bytes of `default' and of conversations created without one");
module_param_named(max_capacity, cbm_limits.max_capacity, ulong, 0644);
MODULE_PARM_DESC(max_capacity, "Largest ring size in bytes");
module_param_named(max_msg_size, cbm_limits.max_msg_size, uint, 0644);
MODULE_PARM_DESC(max_msg_size, "Largest message payload in bytes");
module_param_named(max_conversations, cbm_limits.max_conversations, uint,
		   0644);
MODULE_PARM_DESC(max_conversations, "Most conversations alive at once");

module_param_named(max_pinned, cbm_limits.max_pinned, ulong, 0644);
MODULE_PARM_DESC(max_pinned,
		 "Bytes of pinned messages (CBM_RECORD_SPACE) per conversation");
module_param_named(max_total_bytes, cbm_limits.max_total_bytes, ulong, 0644);
MODULE_PARM_DESC(max_total_bytes,
		 "Bytes all conversations may hold (rings and pinned copies); 0 at load: a quarter of RAM");
module_param_named(max_user_bytes, cbm_limits.max_user_bytes, ulong, 0644);
MODULE_PARM_DESC(max_user_bytes,
		 "Bytes the conversations of one owner may hold; 0 at load: an eighth of RAM");

static unsigned int default_mode = 0600;
module_param(default_mode, uint, 0444);
MODULE_PARM_DESC(default_mode, "Permission bits of `default' (owner root)");

#define CBM_BIND_FLAGS		(CBM_BIND_CREATE | CBM_BIND_EXCL | CBM_BIND_ANON)
#define CBM_CONV_CREATE_FLAGS	CBM_CONV_LOSSLESS
#define CBM_FD_FLAGS		(CBM_FD_RECORDS | CBM_FD_LOSSY)
#define CBM_MSG_FLAGS		(CBM_MSG_APP_MASK | CBM_MSG_PINNED)
#define CBM_AUTORESIZE_FLAGS	CBM_AUTORESIZE_ON
#define CBM_MODE_MASK		0777
#define CBM_PCT_MAX		100
#define CBM_PERIOD_MS_MIN	10
#define CBM_PERIOD_MS_MAX	3600000

/* A batch's payload: one iovec and its iterator */
struct cbm_user_payload {
	struct iovec iov;
	struct iov_iter iter;
};

/**
 * struct cbm_descs - the kernel's copy of a batch's descriptors
 * @msgs: the messages
 * @payloads: what each message's iterator walks
 * @cap: entries in both arrays
 * @kept: the arrays are the file's kept ones, and its @descs_lock is held
 */
struct cbm_descs {
	struct cbm_msg *msgs;
	struct cbm_user_payload *payloads;
	u32 cap;
	bool kept;
};

/**
 * struct cbm_file - state of one open file description
 * @bind_lock: serializes binding and changes of @flags
 * @conv: NULL until the file is bound, then constant; published with
 *        smp_store_release() once @reader is attached
 * @reader: the file's cursor, attached while @conv is set and the file was
 *          opened for reading
 * @flags: CBM_FD_* settings, read with READ_ONCE()
 * @role: role of messages appended by write(), read with READ_ONCE()
 * @cfg_seen: the conversation's configuration generation when the file
 *            was bound or last asked for CBM_IOC_INFO; EPOLLPRI while it
 *            differs. Racing updates may keep either value: both were
 *            current.
 * @descs_lock: held while a batch uses @descs
 * @descs: the arrays of the largest batch so far, kept for the next one
 *         (see cbm_descs_get())
 */
struct cbm_file {
	/* see @bind_lock above */
	struct mutex bind_lock;
	struct cbm_conv *conv;
	struct cbm_reader reader;
	u32 flags;
	u32 role;
	u64 cfg_seen;
	/* see @descs_lock above */
	struct mutex descs_lock;
	struct cbm_descs descs;
};

static int cbm_file_may(const struct file *file)
{
	return (file->f_mode & FMODE_READ ? MAY_READ : 0) |
	       (file->f_mode & FMODE_WRITE ? MAY_WRITE : 0);
}

static enum cbm_format cbm_file_format(const struct cbm_file *cf)
{
	return READ_ONCE(cf->flags) & CBM_FD_RECORDS ? CBM_FORMAT_RECORD :
						       CBM_FORMAT_PAYLOAD;
}

static void cbm_file_attach(struct cbm_file *cf, struct file *file,
			    struct cbm_conv *conv)
{
	lockdep_assert_held(&cf->bind_lock);
	if (file->f_mode & FMODE_READ)
		cbm_reader_attach(conv, &cf->reader,
				  !(cf->flags & CBM_FD_LOSSY));
	WRITE_ONCE(cf->cfg_seen, cbm_conv_config_gen(conv));
	/* Pairs with smp_load_acquire() in cbm_file_conv() */
	smp_store_release(&cf->conv, conv);
}

/* The file's conversation, binding it to `default' on first use */
static struct cbm_conv *cbm_file_conv(struct file *file)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_conv *conv;
	int err = 0;

	/* Pairs with smp_store_release() in cbm_file_attach() */
	conv = smp_load_acquire(&cf->conv);
	if (likely(conv))
		return conv;

	mutex_lock(&cf->bind_lock);
	conv = cf->conv;
	if (!conv) {
		err = cbm_conv_open_default(cbm_file_may(file), &conv);
		if (!err)
			cbm_file_attach(cf, file, conv);
	}
	mutex_unlock(&cf->bind_lock);
	return err ? ERR_PTR(err) : conv;
}

/* The file's conversation, if the file was opened with @fmode */
static struct cbm_conv *cbm_file_conv_may(struct file *file, fmode_t fmode)
{
	if ((file->f_mode & fmode) != fmode)
		return ERR_PTR(-EBADF);
	return cbm_file_conv(file);
}

static int cbm_open(struct inode *inode, struct file *file)
{
	struct cbm_file *cf;

	/* A memory cgroup at its limit fails the open, never OOM-kills */
	cf = kzalloc(sizeof(*cf), GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);
	if (!cf)
		return -ENOMEM;
	mutex_init(&cf->bind_lock);
	mutex_init(&cf->descs_lock);
	cf->role = CBM_ROLE_USER;
	file->private_data = cf;
	/* The file position is a sequence number: no positional I/O */
	file->f_mode &= ~(FMODE_PREAD | FMODE_PWRITE);
	return 0;
}

static int cbm_release(struct inode *inode, struct file *file)
{
	struct cbm_file *cf = file->private_data;

	if (cf->conv) {
		if (file->f_mode & FMODE_READ)
			cbm_reader_detach(cf->conv, &cf->reader);
		cbm_conv_put(cf->conv);
	}
	mutex_destroy(&cf->bind_lock);
	mutex_destroy(&cf->descs_lock);
	kvfree(cf->descs.msgs);
	kvfree(cf->descs.payloads);
	kfree(cf);
	return 0;
}

static bool cbm_nonblock(const struct kiocb *iocb)
{
	return (iocb->ki_filp->f_flags & O_NONBLOCK) ||
	       (iocb->ki_flags & IOCB_NOWAIT);
}

static ssize_t cbm_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct cbm_file *cf = iocb->ki_filp->private_data;
	struct cbm_conv *conv = cbm_file_conv(iocb->ki_filp);

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	return cbm_conv_read(conv, &cf->reader, cbm_file_format(cf), to,
			     cbm_nonblock(iocb));
}

static ssize_t cbm_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct cbm_file *cf = iocb->ki_filp->private_data;
	struct cbm_conv *conv = cbm_file_conv(iocb->ki_filp);
	struct cbm_msg msg = { .role = READ_ONCE(cf->role), .from = from };
	size_t len = iov_iter_count(from);
	u64 seq;
	int ret;

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	ret = cbm_conv_append(conv, &msg, 1, cbm_nonblock(iocb), &seq);
	return ret < 0 ? ret : len;
}

static loff_t cbm_llseek(struct file *file, loff_t offset, int whence)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_conv *conv = cbm_file_conv_may(file, FMODE_READ);

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	return cbm_conv_seek(conv, &cf->reader, offset, whence);
}

static __poll_t cbm_poll(struct file *file, poll_table *pt)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_conv *conv = cbm_file_conv(file);

	if (IS_ERR(conv))
		return EPOLLERR;
	return cbm_conv_poll(conv,
			     file->f_mode & FMODE_READ ? &cf->reader : NULL,
			     file->f_mode & FMODE_WRITE, READ_ONCE(cf->cfg_seen),
			     file, pt);
}

/*
 * Every ioctl argument starts with its size. Input structs go through
 * copy_struct_from_user(); output structs are filled up to the caller's
 * size, zeroing what this kernel does not know (as sched_getattr() does).
 */
static int cbm_get_usize(const void __user *uarg, size_t minsz, u32 *usize)
{
	if (get_user(*usize, (const u32 __user *)uarg))
		return -EFAULT;
	return *usize < minsz ? -EINVAL : 0;
}

static int cbm_copy_in(void *dst, size_t ksize, size_t minsz,
		       const void __user *uarg)
{
	u32 usize;
	int err;

	err = cbm_get_usize(uarg, minsz, &usize);
	if (err)
		return err;
	return copy_struct_from_user(dst, ksize, uarg, usize);
}

static int cbm_copy_out(void __user *uarg, u32 usize, const void *src,
			size_t ksize)
{
	if (copy_to_user(uarg, src, min_t(size_t, usize, ksize)))
		return -EFAULT;
	if (usize > ksize && clear_user(uarg + ksize, usize - ksize))
		return -EFAULT;
	return 0;
}

/*
 * For an ioctl that fills a struct: the caller's size, and the file's
 * conversation (binding an unbound file to `default').
 */
static struct cbm_conv *cbm_out_arg(struct file *file, const void __user *uarg,
				    size_t minsz, u32 *usize)
{
	int err = cbm_get_usize(uarg, minsz, usize);

	return err ? ERR_PTR(err) : cbm_file_conv(file);
}

static int cbm_ioctl_bind(struct file *file, void __user *uarg)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_create args;
	struct cbm_bind bind;
	struct cbm_conv *conv;
	int err;

	err = cbm_copy_in(&bind, sizeof(bind), offsetofend(struct cbm_bind, name),
			  uarg);
	if (err)
		return err;
	if ((bind.flags & ~CBM_BIND_FLAGS) || (bind.mode & ~CBM_MODE_MASK) ||
	    (bind.conv_flags & ~CBM_CONV_CREATE_FLAGS))
		return -EINVAL;
	if (bind.flags & CBM_BIND_ANON) {
		if (bind.flags != CBM_BIND_ANON || bind.name[0])
			return -EINVAL;
	} else if (((bind.flags & CBM_BIND_EXCL) &&
		    !(bind.flags & CBM_BIND_CREATE)) ||
		   !cbm_conv_name_valid(bind.name)) {
		return -EINVAL;
	}
	args.mode = bind.mode;
	args.flags = bind.conv_flags;
	args.capacity = bind.capacity;

	mutex_lock(&cf->bind_lock);
	if (cf->conv)
		err = -EBUSY;
	else if (bind.flags & CBM_BIND_ANON)
		err = cbm_conv_open_anon(&args, &conv);
	else
		err = cbm_conv_open(bind.name, bind.flags & CBM_BIND_CREATE,
				    bind.flags & CBM_BIND_EXCL, &args,
				    cbm_file_may(file), &conv);
	if (!err)
		cbm_file_attach(cf, file, conv);
	mutex_unlock(&cf->bind_lock);
	return err;
}

static int cbm_ioctl_unlink(void __user *uarg)
{
	struct cbm_unlink ul;
	int err;

	err = cbm_copy_in(&ul, sizeof(ul), offsetofend(struct cbm_unlink, name),
			  uarg);
	if (err)
		return err;
	if (ul.flags || !cbm_conv_name_valid(ul.name))
		return -EINVAL;
	return cbm_conv_unlink(ul.name);
}

/* The payload of a message sent by ioctl, which struct cbm_msg points to */
/*
 * Check what an ioctl says about a message (struct cbm_send, struct
 * cbm_batch_msg) and make it a struct cbm_msg whose payload is @p.
 */
static int cbm_msg_from_user(struct cbm_msg *msg, struct cbm_user_payload *p,
			     u32 role, u32 flags, u32 tokens, u64 data, u32 len)
{
	if ((flags & ~CBM_MSG_FLAGS) || role >= __CBM_ROLE_MAX)
		return -EINVAL;
	p->iov.iov_base = u64_to_user_ptr(data);
	p->iov.iov_len = len;
	iov_iter_init(&p->iter, ITER_SOURCE, &p->iov, 1, len);
	msg->role = role;
	msg->flags = flags;
	msg->tokens = tokens;
	msg->from = &p->iter;
	return 0;
}

static int cbm_ioctl_send(struct file *file, void __user *uarg)
{
	struct cbm_send __user *usend = uarg;
	struct cbm_user_payload payload;
	struct cbm_conv *conv;
	struct cbm_send send;
	struct cbm_msg msg;
	u64 seq;
	int err;

	err = cbm_copy_in(&send, sizeof(send), offsetofend(struct cbm_send, seq),
			  uarg);
	if (err)
		return err;
	if (send.__reserved)
		return -EINVAL;
	err = cbm_msg_from_user(&msg, &payload, send.role, send.flags,
				send.tokens, send.data, send.len);
	if (err)
		return err;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	err = cbm_conv_append(conv, &msg, 1, file->f_flags & O_NONBLOCK, &seq);
	if (err < 0)
		return err;
	return put_user(seq, &usend->seq) ? -EFAULT : 0;
}

static int cbm_ioctl_set_config(struct file *file, void __user *uarg)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_fd_config cfg;
	int err;

	err = cbm_copy_in(&cfg, sizeof(cfg),
			  offsetofend(struct cbm_fd_config, __reserved), uarg);
	if (err)
		return err;
	if ((cfg.flags & ~CBM_FD_FLAGS) || cfg.role >= __CBM_ROLE_MAX ||
	    cfg.__reserved)
		return -EINVAL;

	mutex_lock(&cf->bind_lock);
	WRITE_ONCE(cf->flags, cfg.flags);
	WRITE_ONCE(cf->role, cfg.role);
	if (cf->conv && (file->f_mode & FMODE_READ))
		cbm_reader_set_lossless(cf->conv, &cf->reader,
					!(cfg.flags & CBM_FD_LOSSY));
	mutex_unlock(&cf->bind_lock);
	return 0;
}

static int cbm_ioctl_get_config(struct file *file, void __user *uarg)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_fd_config cfg = {};
	u32 usize;
	int err;

	err = cbm_get_usize(uarg, offsetofend(struct cbm_fd_config, __reserved),
			    &usize);
	if (err)
		return err;
	cfg.size = usize;
	cfg.flags = READ_ONCE(cf->flags);
	cfg.role = READ_ONCE(cf->role);
	return cbm_copy_out(uarg, usize, &cfg, sizeof(cfg));
}

static int cbm_ioctl_info(struct file *file, void __user *uarg)
{
	struct cbm_conv *conv;
	struct cbm_info info;
	u32 usize;
	int err;

	conv = cbm_out_arg(file, uarg, offsetofend(struct cbm_info, name),
			   &usize);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	cbm_conv_info(conv, &info);
	info.size = usize;
	err = cbm_copy_out(uarg, usize, &info, sizeof(info));
	if (!err) {
		struct cbm_file *cf = file->private_data;

		WRITE_ONCE(cf->cfg_seen, info.config_gen);
	}
	return err;
}

static int cbm_file_reader_info(struct file *file,
				struct cbm_reader_info *info)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_conv *conv = cbm_file_conv_may(file, FMODE_READ);

	if (IS_ERR(conv))
		return PTR_ERR(conv);
	cbm_reader_info(conv, &cf->reader, cbm_file_format(cf), info);
	return 0;
}

static int cbm_ioctl_reader_info(struct file *file, void __user *uarg)
{
	struct cbm_reader_info info;
	u32 usize;
	int err;

	err = cbm_get_usize(uarg,
			    offsetofend(struct cbm_reader_info, __reserved),
			    &usize);
	if (!err)
		err = cbm_file_reader_info(file, &info);
	if (err)
		return err;
	info.size = usize;
	return cbm_copy_out(uarg, usize, &info, sizeof(info));
}

static int cbm_ioctl_fionread(struct file *file, int __user *uarg)
{
	struct cbm_reader_info info;
	int err;

	err = cbm_file_reader_info(file, &info);
	if (err)
		return err;
	return put_user(info.next_len, uarg);
}

static int cbm_ioctl_set_window(struct file *file, void __user *uarg)
{
	struct cbm_window win;
	struct cbm_conv *conv;
	int err;

	err = cbm_copy_in(&win, sizeof(win),
			  offsetofend(struct cbm_window, max_age_ns), uarg);
	if (err)
		return err;
	if (win.flags & ~CBM_WINDOW_FLAGS)
		return -EINVAL;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	return cbm_conv_set_window(conv, &win);
}

static int cbm_ioctl_get_window(struct file *file, void __user *uarg)
{
	struct cbm_conv *conv;
	struct cbm_window win;
	u32 usize;

	conv = cbm_out_arg(file, uarg, offsetofend(struct cbm_window, max_age_ns),
			   &usize);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	win.size = usize;
	cbm_conv_get_window(conv, &win);
	return cbm_copy_out(uarg, usize, &win, sizeof(win));
}

static int cbm_ioctl_unpin(struct file *file, void __user *uarg)
{
	struct cbm_conv *conv;
	struct cbm_pin pin;
	int err;

	err = cbm_copy_in(&pin, sizeof(pin), offsetofend(struct cbm_pin, seq),
			  uarg);
	if (err)
		return err;
	if (pin.flags)
		return -EINVAL;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	return cbm_conv_unpin(conv, pin.seq);
}

static int cbm_ioctl_read_window(struct file *file, void __user *uarg)
{
	struct cbm_read_window rw;
	struct cbm_conv *conv;
	int err, ret;

	err = cbm_copy_in(&rw, sizeof(rw),
			  offsetofend(struct cbm_read_window, first_seq), uarg);
	if (err)
		return err;
	if (rw.flags)
		return -EINVAL;
	conv = cbm_file_conv_may(file, FMODE_READ);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	ret = cbm_conv_read_window(conv, u64_to_user_ptr(rw.buf), rw.len, &rw);
	if (ret && ret != -EMSGSIZE)
		return ret;
	err = cbm_copy_out(uarg, rw.size, &rw, sizeof(rw));
	return err ? err : ret;
}

static int cbm_ioctl_seek(struct file *file, void __user *uarg)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_seek __user *useek = uarg;
	struct cbm_conv *conv;
	struct cbm_seek seek;
	u64 cursor;
	int err;

	err = cbm_copy_in(&seek, sizeof(seek),
			  offsetofend(struct cbm_seek, cursor), uarg);
	if (err)
		return err;
	if (seek.whence >= __CBM_SEEK_MAX)
		return -EINVAL;
	conv = cbm_file_conv_may(file, FMODE_READ);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	err = cbm_conv_seek_by(conv, &cf->reader, seek.whence, seek.value,
			       &cursor);
	if (err)
		return err;
	return put_user(cursor, &useek->cursor) ? -EFAULT : 0;
}

static int cbm_ioctl_resize(struct file *file, void __user *uarg)
{
	struct cbm_resize rs;
	struct cbm_conv *conv;
	int err;

	err = cbm_copy_in(&rs, sizeof(rs), offsetofend(struct cbm_resize, evicted),
			  uarg);
	if (err)
		return err;
	if (rs.flags)
		return -EINVAL;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	err = cbm_conv_resize(conv, &rs.capacity, &rs.evicted);
	if (err)
		return err;
	return cbm_copy_out(uarg, rs.size, &rs, sizeof(rs));
}

static bool cbm_autoresize_valid(const struct cbm_autoresize *cfg)
{
	if ((cfg->flags & ~CBM_AUTORESIZE_FLAGS) || cfg->__reserved)
		return false;
	if (!(cfg->flags & CBM_AUTORESIZE_ON))
		return true;
	/* Below half the high mark, so a halved ring is still under it */
	return cfg->high_pct && cfg->high_pct <= CBM_PCT_MAX &&
	       cfg->low_pct * 2 < cfg->high_pct &&
	       cfg->period_ms >= CBM_PERIOD_MS_MIN &&
	       cfg->period_ms <= CBM_PERIOD_MS_MAX;
}

static int cbm_ioctl_set_autoresize(struct file *file, void __user *uarg)
{
	struct cbm_autoresize cfg;
	struct cbm_conv *conv;
	int err;

	err = cbm_copy_in(&cfg, sizeof(cfg),
			  offsetofend(struct cbm_autoresize, __reserved), uarg);
	if (err)
		return err;
	if (!cbm_autoresize_valid(&cfg))
		return -EINVAL;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	return cbm_conv_set_autoresize(conv, &cfg);
}

static int cbm_ioctl_get_autoresize(struct file *file, void __user *uarg)
{
	struct cbm_autoresize cfg;
	struct cbm_conv *conv;
	u32 usize;

	conv = cbm_out_arg(file, uarg,
			   offsetofend(struct cbm_autoresize, __reserved),
			   &usize);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	cfg.size = usize;
	cbm_conv_get_autoresize(conv, &cfg);
	return cbm_copy_out(uarg, usize, &cfg, sizeof(cfg));
}

static int cbm_ioctl_map_info(struct file *file, void __user *uarg)
{
	struct cbm_map_info info;
	struct cbm_conv *conv;
	u32 usize;
	int err;

	err = cbm_get_usize(uarg, offsetofend(struct cbm_map_info, next_seq),
			    &usize);
	if (err)
		return err;
	conv = cbm_file_conv_may(file, FMODE_READ);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	cbm_conv_map_info(conv, &info);
	info.size = usize;
	return cbm_copy_out(uarg, usize, &info, sizeof(info));
}

static void cbm_descs_free(struct cbm_descs *d)
{
	kvfree(d->msgs);
	kvfree(d->payloads);
}

/*
 * Arrays for @count descriptors: the file's kept ones, grown if need be,
 * unless another thread of the file is using them; then arrays of their
 * own. Every allocation is zeroed (init_on_alloc), which for a batch of
 * small messages costs as much as appending them: keeping the arrays
 * saves that on every batch but the largest yet.
 */
static int cbm_descs_get(struct cbm_file *cf, u32 count, struct cbm_descs *d)
{
	d->kept = mutex_trylock(&cf->descs_lock);
	if (d->kept && cf->descs.cap >= count) {
		d->msgs = cf->descs.msgs;
		d->payloads = cf->descs.payloads;
		d->cap = cf->descs.cap;
		return 0;
	}
	d->msgs = kvmalloc_array(count, sizeof(*d->msgs), GFP_KERNEL_ACCOUNT);
	d->payloads = kvmalloc_array(count, sizeof(*d->payloads),
				     GFP_KERNEL_ACCOUNT);
	d->cap = count;
	if (!d->msgs || !d->payloads) {
		cbm_descs_free(d);
		if (d->kept)
			mutex_unlock(&cf->descs_lock);
		return -ENOMEM;
	}
	if (d->kept) {
		cbm_descs_free(&cf->descs);
		cf->descs = *d;
	}
	return 0;
}

static void cbm_descs_put(struct cbm_file *cf, struct cbm_descs *d)
{
	if (d->kept)
		mutex_unlock(&cf->descs_lock);
	else
		cbm_descs_free(d);
}

/*
 * Copy in and check @count descriptors, at least one, @msg_size bytes
 * apart at @umsgs: struct cbm_batch_msg, or, for a restore, struct
 * cbm_restore_msg, which starts with the same fields. On success @d holds
 * them until cbm_descs_put().
 */
static int cbm_descs_copy_in(struct cbm_file *cf, u64 umsgs, u32 count,
			     u32 msg_size, bool restore, struct cbm_descs *d)
{
	size_t ksize = restore ? sizeof(struct cbm_restore_msg) :
				 sizeof(struct cbm_batch_msg);
	const void __user *udesc = u64_to_user_ptr(umsgs);
	struct cbm_restore_msg desc;
	unsigned int i;
	int err;

	BUILD_BUG_ON(offsetof(struct cbm_restore_msg, data) !=
		     offsetof(struct cbm_batch_msg, data) ||
		     offsetof(struct cbm_restore_msg, tokens) !=
		     offsetof(struct cbm_batch_msg, tokens));
	err = cbm_descs_get(cf, count, d);
	if (err)
		return err;
	for (i = 0; i < count; i++, udesc += msg_size) {
		err = copy_struct_from_user(&desc, ksize, udesc, msg_size);
		if (!err)
			err = cbm_msg_from_user(&d->msgs[i], &d->payloads[i],
						desc.role, desc.flags,
						desc.tokens, desc.data,
						desc.len);
		if (err) {
			cbm_descs_put(cf, d);
			return err;
		}
		if (restore) {
			d->msgs[i].seq = desc.seq;
			d->msgs[i].ts_ns = desc.ts_ns;
		}
	}
	return 0;
}

static int cbm_ioctl_send_batch(struct file *file, void __user *uarg)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_send_batch __user *ubatch = uarg;
	struct cbm_send_batch batch;
	struct cbm_conv *conv;
	struct cbm_descs d;
	u64 first_seq;
	int ret;

	ret = cbm_copy_in(&batch, sizeof(batch),
			  offsetofend(struct cbm_send_batch, first_seq), uarg);
	if (ret)
		return ret;
	if (batch.flags ||
	    batch.msg_size < offsetofend(struct cbm_batch_msg, data))
		return -EINVAL;
	/* A page at most: the kernel checks that an unknown tail is zero */
	if (batch.count > CBM_BATCH_MAX || batch.msg_size > PAGE_SIZE)
		return -E2BIG;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);
	if (!batch.count)
		return 0;

	ret = cbm_descs_copy_in(cf, batch.msgs, batch.count, batch.msg_size,
				false, &d);
	if (ret)
		return ret;
	ret = cbm_conv_append(conv, d.msgs, batch.count,
			      file->f_flags & O_NONBLOCK, &first_seq);
	/*
	 * Messages were appended: failing now would have the caller append
	 * them again, so a first_seq that cannot be written back is lost, as
	 * sendmmsg() loses its error.
	 */
	if (ret > 0)
		put_user(first_seq, &ubatch->first_seq);
	cbm_descs_put(cf, &d);
	return ret;
}

static int cbm_ioctl_restore(struct file *file, void __user *uarg)
{
	struct cbm_file *cf = file->private_data;
	struct cbm_restore rst;
	struct cbm_conv *conv;
	struct cbm_descs d;
	int ret;

	ret = cbm_copy_in(&rst, sizeof(rst),
			  offsetofend(struct cbm_restore, next_seq), uarg);
	if (ret)
		return ret;
	/* Every field of the first version: a restore without seq is none */
	if (rst.flags ||
	    rst.msg_size < offsetofend(struct cbm_restore_msg, ts_ns))
		return -EINVAL;
	if (rst.count > CBM_BATCH_MAX || rst.msg_size > PAGE_SIZE)
		return -E2BIG;
	conv = cbm_file_conv_may(file, FMODE_WRITE);
	if (IS_ERR(conv))
		return PTR_ERR(conv);

	/* No message: only next_seq, if anything */
	if (!rst.count)
		return cbm_conv_restore(conv, NULL, 0, rst.next_seq);
	ret = cbm_descs_copy_in(cf, rst.msgs, rst.count, rst.msg_size, true,
				&d);
	if (ret)
		return ret;
	ret = cbm_conv_restore(conv, d.msgs, rst.count, rst.next_seq);
	cbm_descs_put(cf, &d);
	return ret;
}

static long cbm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case CBM_IOC_BIND:
		return cbm_ioctl_bind(file, uarg);
	case CBM_IOC_UNLINK:
		return cbm_ioctl_unlink(uarg);
	case CBM_IOC_SEND:
		return cbm_ioctl_send(file, uarg);
	case CBM_IOC_SET_CONFIG:
		return cbm_ioctl_set_config(file, uarg);
	case CBM_IOC_GET_CONFIG:
		return cbm_ioctl_get_config(file, uarg);
	case CBM_IOC_INFO:
		return cbm_ioctl_info(file, uarg);
	case CBM_IOC_READER_INFO:
		return cbm_ioctl_reader_info(file, uarg);
	case CBM_IOC_SET_WINDOW:
		return cbm_ioctl_set_window(file, uarg);
	case CBM_IOC_GET_WINDOW:
		return cbm_ioctl_get_window(file, uarg);
	case CBM_IOC_UNPIN:
		return cbm_ioctl_unpin(file, uarg);
	case CBM_IOC_READ_WINDOW:
		return cbm_ioctl_read_window(file, uarg);
	case CBM_IOC_SEEK:
		return cbm_ioctl_seek(file, uarg);
	case CBM_IOC_RESIZE:
		return cbm_ioctl_resize(file, uarg);
	case CBM_IOC_SET_AUTORESIZE:
		return cbm_ioctl_set_autoresize(file, uarg);
	case CBM_IOC_GET_AUTORESIZE:
		return cbm_ioctl_get_autoresize(file, uarg);
	case CBM_IOC_MAP_INFO:
		return cbm_ioctl_map_info(file, uarg);
	case CBM_IOC_SEND_BATCH:
		return cbm_ioctl_send_batch(file, uarg);
	case CBM_IOC_RESTORE:
		return cbm_ioctl_restore(file, uarg);
	case FIONREAD:
		return cbm_ioctl_fionread(file, uarg);
	default:
		return -ENOIOCTLCMD;
	}
}

static int cbm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct cbm_file *cf = file->private_data;
	/* Pairs with smp_store_release() in cbm_file_attach() */
	struct cbm_conv *conv = smp_load_acquire(&cf->conv);

	/* Only the kernel writes the ring, and nothing in it is code */
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	/*
	 * Binding to `default' here would take the conversation's lock
	 * inside mmap_lock; CBM_IOC_MAP_INFO binds, as every ioctl does.
	 */
	if (!conv)
		return -EINVAL;
	/* mprotect() must not add what was refused here */
	cbm_vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	cbm_vm_flags_set(vma, VM_DONTEXPAND);
	return cbm_conv_mmap(conv, vma);
}

static const struct file_operations cbm_fops = {
	.owner		= THIS_MODULE,
	.open		= cbm_open,
	.release	= cbm_release,
	.read_iter	= cbm_read_iter,
	.write_iter	= cbm_write_iter,
	.llseek		= cbm_llseek,
	.poll		= cbm_poll,
	.mmap		= cbm_mmap,
	.unlocked_ioctl	= cbm_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* Anyone may open /dev/cbm: each conversation's mode gates access */
static struct miscdevice cbm_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "cbm",
	.fops	= &cbm_fops,
	.mode	= 0666,
};

static int __init cbm_init(void)
{
	int err;

	if (default_mode & ~CBM_MODE_MASK)
		return -EINVAL;
	if (!cbm_limits.max_total_bytes)
		cbm_limits.max_total_bytes = (totalram_pages() << PAGE_SHIFT) / 4;
	if (!cbm_limits.max_user_bytes)
		cbm_limits.max_user_bytes = (totalram_pages() << PAGE_SHIFT) / 8;
	/*
	 * The netlink family reports conversations, so it comes after the
	 * conversation layer and goes before it; the device comes last, once
	 * everything it needs is there.
	 */
	err = cbm_conv_setup(default_mode);
	if (err)
		return err;
	err = cbm_nl_init();
	if (err)
		goto err_teardown;
	err = misc_register(&cbm_misc);
	if (err)
		goto err_nl_exit;
	return 0;

err_nl_exit:
	cbm_nl_exit();
err_teardown:
	cbm_conv_teardown();
	return err;
}

static void __exit cbm_exit(void)
{
	misc_deregister(&cbm_misc);
	cbm_nl_exit();
	cbm_conv_teardown();
	cbm_acct_teardown();
}

module_init(cbm_init);
module_exit(cbm_exit);

MODULE_DESCRIPTION("cbm: conversation buffer memory behind /dev/cbm");
MODULE_LICENSE("GPL");
