// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/* Append a message to the conversation "example" and read everything back */
#include <stdio.h>
#include <string.h>

#include <libcbm.h>

int main(void)
{
	LIBCBM_OPTS(cbm_open_opts, opts,
		    .flags = CBM_OPEN_CREATE | CBM_OPEN_NONBLOCK);
	struct cbm_message msg = { .role = CBM_ROLE_USER, .data = "hi", .len = 2 };
	struct cbm_record rec;
	struct cbm *c = NULL;
	char buf[4096];
	int err;

	err = cbm_open("example", &opts, &c);
	if (!err)
		err = cbm_send(c, &msg, NULL);
	while (!err && (err = cbm_recv(c, &rec, buf, sizeof(buf))) == 1) {
		printf("%llu %s: %.*s\n", (unsigned long long)rec.seq,
		       cbm_role_name(rec.role), (int)rec.len, buf);
		err = 0;
	}
	/* NULL after a failed open: cbm_close() takes it */
	cbm_close(c);
	if (err != -EAGAIN) {
		fprintf(stderr, "example: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
