/* Listeners and connections.
 *
 * A connection is a libevent bufferevent, plain or with an OpenSSL filter,
 * behind one small API so protocol sessions never touch sockets or OpenSSL.
 * The net layer owns struct conn: a session gets callbacks, and on_close is
 * always the last one; the conn is freed right after it returns. Every call
 * here is made on the connection's own loop thread. */
#ifndef YUBIN_NET_H
#define YUBIN_NET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

struct evbuffer;
struct loop;
struct conn;

enum conn_close_reason {
	CONN_CLOSE_LOCAL,	/* we called conn_close() */
	CONN_CLOSE_EOF,		/* the peer closed */
	CONN_CLOSE_ERROR,	/* socket or TLS error */
	CONN_CLOSE_SHUTDOWN,	/* the server is stopping */
};

struct conn_handler {
	/* Ready to talk: after accept, or after the handshake for implicit
	 * TLS. Typically writes the greeting. */
	void (*on_open)(struct conn *c);
	/* New input in conn_input(). */
	void (*on_read)(struct conn *c);
	/* No input for the idle timeout. Must reply and conn_close(), or
	 * conn_close() at once. NULL: just close. */
	void (*on_timeout)(struct conn *c);
	/* All output queued so far has been handed to the kernel (or the TLS
	 * layer): a session that streams a large reply writes its next
	 * chunk here. NULL: not needed. */
	void (*on_drain)(struct conn *c);
	/* The last call: free the session. Do not touch c afterwards. */
	void (*on_close)(struct conn *c, enum conn_close_reason reason);
	/* Reply when the connection limits are hit (e.g. "421 4.7.0 ...\r\n"). */
	const char *busy_reply;
};

/* A listening socket, bound (as root, before dropping privileges). */
struct listen_socket {
	int fd;
	char *name;		/* "127.0.0.1:2525", for logs */
	int kind;		/* enum listener_kind of config.h */
	bool implicit_tls;
	const struct conn_handler *handler;
};

/* Binds host:port ("*" means every address, IPv6 and IPv4). Returns the
 * number of sockets added to *socks_r (grown with xrealloc), or -1 with
 * *error_r ("127.0.0.1:25: Address already in use"). */
int net_bind(const char *host, const char *port, struct listen_socket **socks_r,
	     size_t *count_r, char **error_r);

struct net_limits {
	uint32_t max_connections;
	uint32_t max_connections_per_ip;
};
void net_set_limits(const struct net_limits *limits);

/* Starts accepting on socks in loop. Several loops may share one socket: the
 * kernel hands each connection to one of them. */
void net_listen_start(struct loop *loop, struct listen_socket *socks, size_t count);
/* Stops accepting in this loop; open connections stay. */
void net_listen_stop(struct loop *loop);
/* Closes every connection of this loop (on_close with CONN_CLOSE_SHUTDOWN). */
void net_close_all(struct loop *loop);

struct evbuffer *conn_input(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
void conn_printf(struct conn *c, const char *fmt, ...) PRINTF(2, 3);
/* Bytes waiting to be sent. */
size_t conn_output_pending(struct conn *c);

/* Closes after the output is sent; on_close follows from the loop. */
void conn_close(struct conn *c);
bool conn_closing(struct conn *c);

/* Stop and restart reading input (while a command waits for the store). */
void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);
/* Idle timeout in seconds (0: none). */
void conn_set_timeout(struct conn *c, unsigned seconds);
/* A deadline seconds from now, whatever the traffic (0: none); reaching it
 * is handled like an idle timeout. Bounds a whole DATA transfer. */
void conn_set_deadline(struct conn *c, unsigned seconds);

/* Starts a TLS server handshake on a plain connection. Any input already
 * received is discarded first (RFC 3207 section 4.2, CVE-2011-0411). The
 * caller writes its "ready" reply first; it goes out in the clear. The
 * session gets on_read for the first bytes decrypted. Returns -1 if TLS is
 * not configured. */
int conn_starttls(struct conn *c);
bool conn_tls_available(void);
bool conn_is_tls(struct conn *c);

/* Turns on raw DEFLATE (RFC 1951) both ways, over TLS if it is on: what
 * is written from now on is compressed, what is read is inflated (IMAP
 * COMPRESS=DEFLATE, RFC 4978). The caller writes its "OK" first; it goes
 * out uncompressed. A peer that sends invalid DEFLATE, or ends its stream
 * (other than after conn_compress_end()), is disconnected. Returns -1 if
 * compression is already on or cannot start. */
int conn_compress(struct conn *c);
/* Ends DEFLATE both ways (IMAP UNAUTHENTICATE, RFC 8437 3). The caller
 * writes its "OK" first: everything written before is compressed and the
 * stream finished right after it, what is written later goes out plain.
 * The peer's stream must end (Z_FINISH) right after the input read so far;
 * the bytes after its end are read plain. A peer that sends more DEFLATE
 * data instead is disconnected. conn_compress() may then start it again.
 * Returns -1 if compression is not on. */
int conn_compress_end(struct conn *c);
/* Compression is on: conn_compress() and no conn_compress_end() since. */
bool conn_is_compressed(struct conn *c);
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384", the cipher's secret bits; NULL / 0
 * without TLS. */
const char *conn_tls_version(struct conn *c);
const char *conn_tls_cipher(struct conn *c);
int conn_tls_bits(struct conn *c);

/* ---- outbound connections (the SMTP client) ----
 *
 * The same struct conn and handler, the other way round: on_open when the
 * TCP connection is up (and again after a conn_starttls_client()
 * handshake), on_close always, also when connecting failed (before any
 * on_open: reason CONN_CLOSE_ERROR, and conn_error() says why). Not counted
 * in the listeners' connection limits. */
struct sockaddr;
struct conn *conn_connect(struct loop *loop, const struct sockaddr *sa, unsigned salen,
			  unsigned timeout, const struct conn_handler *h, void *data);
/* Starts a TLS client handshake for host (SNI; the name verified when
 * verify is set, else only logged). Returns -1 when TLS is unusable. */
int conn_starttls_client(struct conn *c, const char *host, bool verify);
/* After a client handshake: whether the peer's certificate verified, and
 * why not ("ok", "self-signed certificate", ...). */
bool conn_tls_verified(struct conn *c);
const char *conn_tls_verify_error(struct conn *c);
/* Why the connection failed or closed ("Connection refused"), or NULL. */
const char *conn_error(struct conn *c);
bool conn_is_open(struct conn *c);

const char *conn_peer_ip(struct conn *c);	/* "192.0.2.1" or "2001:db8::1" */
uint16_t conn_peer_port(struct conn *c);
bool conn_peer_is_loopback(struct conn *c);
int conn_listener_kind(struct conn *c);
const char *conn_id(struct conn *c);		/* session id for logs */
struct loop *conn_loop(struct conn *c);
void conn_set_data(struct conn *c, void *data);
void *conn_data(struct conn *c);

#endif
