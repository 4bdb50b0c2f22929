/* Internals of the outbound queue. */
#ifndef YUBIN_QUEUE_PRIVATE_H
#define YUBIN_QUEUE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include "config/config.h"
#include "smtp/smtp_client.h"

struct loop;
struct store;
struct store_reader;
struct store_queue_item;

/* ---- route.c: where a domain's mail goes ---- */

struct route_host {
	char *name;			/* the MX host (or smarthost) name */
	struct sockaddr_storage *addrs;
	socklen_t *lens;
	size_t count;
};

struct route {
	struct route_host *hosts;	/* in the order to try */
	size_t count;
	bool smarthost;
	enum relay_tls tls;
	void *pending;			/* lookups in flight (route.c) */
};

/* error NULL: r is filled. Else error is the reason for every recipient of
 * the domain, permanent (NXDOMAIN, null MX: bounce) or not (retry). */
typedef void route_done_fn(void *arg, const char *error, bool permanent);
/* Finds the hosts for domain ([relay] smarthost, or the domain's MX hosts
 * by RFC 5321 5.1). done is called on loop, maybe before this returns. */
void route_lookup(const struct config *cfg, struct loop *loop, const char *domain,
		  struct route *r, route_done_fn *done, void *arg);
/* Stops a lookup in flight: done will not be called. */
void route_cancel(struct route *r);
void route_free(struct route *r);

/* ---- bounce.c: delivery status notifications (RFC 3464) ---- */

enum dsn_action {
	DSN_NONE,
	DSN_FAILED,	/* a bounce: the recipient will not get it */
	DSN_DELAYED,	/* a delay notice: still being tried (RFC 3464 2.3.3) */
};

typedef void bounce_done_fn(void *arg, int result);
/* For every message among items, one DSN per action to its sender (none
 * for the null sender) about the recipients with that action, committed;
 * then done (on loop) with 0, or -1 if a DSN could not be stored. reply[i]
 * is what happened to items[i], remote_mta the host that said so. */
void bounce_send(const struct config *cfg, struct store *store, struct store_reader *reader,
		 struct loop *loop, const struct store_queue_item *items, size_t count,
		 const enum dsn_action *action, const char *const *reply,
		 const char *remote_mta, bounce_done_fn *done, void *arg);

#endif
