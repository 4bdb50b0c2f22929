/* The SMTP client of the outbound queue (RFC 5321): one connection to one
 * address of a destination, over which a batch of messages is sent, each
 * with its recipients; the outcome of every recipient is reported.
 *
 * EHLO (HELO when EHLO is refused), STARTTLS when offered (opportunistic,
 * RFC 3207 / RFC 7435) or required (a smarthost), AUTH PLAIN to a
 * smarthost, PIPELINING, SIZE, 8BITMIME and SMTPUTF8 as the peer offers
 * them, the timeouts of RFC 5321 4.5.3.2. Replies are read per recipient:
 * 2xx delivered, 4xx try again later, 5xx failed for good. */
#ifndef YUBIN_SMTP_SMTP_CLIENT_H
#define YUBIN_SMTP_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct store;

enum smtp_rcpt_state {
	SMTP_RCPT_PENDING,	/* not tried on this connection (connection failed) */
	SMTP_RCPT_DELIVERED,
	SMTP_RCPT_DEFERRED,	/* 4xx: try again later */
	SMTP_RCPT_FAILED,	/* 5xx: bounce */
};

struct smtp_client_rcpt {
	char *address;
	int64_t queue_row;		/* the caller's id */
	enum smtp_rcpt_state state;
	char *reply;			/* the peer's reply, or our reason */
};

struct smtp_client_msg {
	char *queue_id;
	char *sender;			/* "" for the null sender */
	char *body;			/* body file, relative to data_dir */
	uint64_t size;
	struct smtp_client_rcpt *rcpts;
	size_t rcpt_count;
};

enum smtp_tls_policy {
	SMTP_TLS_OPPORTUNISTIC,		/* STARTTLS when offered */
	SMTP_TLS_REQUIRED,		/* no STARTTLS: give up on this peer */
};

struct smtp_client_params {
	const char *helo_name;		/* our host name */
	const char *peer_name;		/* for SNI, verification and logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum smtp_tls_policy tls;
	bool tls_verify;		/* fail the handshake on a bad certificate */
	const char *auth_user;		/* AUTH PLAIN after TLS, or NULL */
	const char *auth_password;
	unsigned connect_timeout;	/* seconds; 0: 30 */
};

/* Called on loop when the connection is over. Each recipient's state is
 * set; those still SMTP_RCPT_PENDING were not tried because the connection
 * (or the peer's greeting, EHLO, TLS) failed: host_error says why, and the
 * caller tries another address or defers them. */
typedef void smtp_client_done_fn(void *arg, const char *host_error);

struct smtp_client;
/* Starts sending msgs (owned by the caller, alive until done) on loop. */
struct smtp_client *smtp_client_start(struct loop *loop, struct store *store,
				      const struct smtp_client_params *params,
				      struct smtp_client_msg *msgs, size_t count,
				      smtp_client_done_fn *done, void *arg);

#endif
