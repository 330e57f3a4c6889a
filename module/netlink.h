/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cbm generic netlink family: registration, for main.c. The family's
 * spec is Documentation/netlink/specs/cbm.yaml; the conversation layer
 * reaches it only through events.h.
 */
#ifndef _CBM_NETLINK_H
#define _CBM_NETLINK_H

int cbm_nl_init(void);
void cbm_nl_exit(void);

#endif /* _CBM_NETLINK_H */
