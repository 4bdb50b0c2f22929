#include "net/net.h"
#include "net/deflate.h"
#include "net/tls.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* How long a closing connection may take to send what is left (and how
 * often we look), and how long a TLS handshake may take. */
#define CLOSE_FLUSH_TRIES 100
#define CLOSE_FLUSH_STEP_MS 20
#define HANDSHAKE_TIMEOUT_S 30
/* Input beyond this stays in the kernel until the session reads more: a
 * session never holds more than this much unread input. */
#define READ_HIGH_WATERMARK (256 * 1024)

struct net_loop {
	struct loop *loop;
	struct evconnlistener **listeners;
	size_t listener_count;
	struct event *accept_resume_ev;	/* ends a pause after accept() failed */
	struct conn *conns;
};

struct conn {
	struct conn *prev, *next;
	struct net_loop *nl;
	struct bufferevent *bev;
	const struct conn_handler *h;
	void *data;
	char id[17];
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
	bool loopback;
	int kind;
	bool tls;
	bool outbound;		/* conn_connect(): not in the listener limits */
	bool connecting;	/* outbound, TCP connect not done yet */
	bool client_tls;	/* a conn_starttls_client() handshake */
	struct deflate_filter *zf;	/* conn_compress(): DEFLATE over the rest */
	/* An ended DEFLATE layer that STARTTLS put TLS over: it passes bytes
	 * through as they are, and a new COMPRESS goes over the TLS. */
	struct deflate_filter *zf_below;
	char error[256];
	bool opened;
	bool closing;
	bool paused;
	bool hs_deadline;	/* the deadline timer bounds a TLS handshake */
	unsigned timeout;
	unsigned flush_tries;
	struct event *close_ev;
	struct event *resume_ev;
	struct event *deadline_ev;
};

static _Thread_local struct net_loop *tl_net;
static struct net_limits limits = { 1000, 20 };
static atomic_uint total_conns;
static atomic_ullong conn_counter;

/* ---- per-IP connection counts ---- */

#define IPTAB_SIZE 1024
struct ip_count {
	struct ip_count *next;
	char ip[INET6_ADDRSTRLEN];
	unsigned count;
};
static pthread_mutex_t ip_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count *iptab[IPTAB_SIZE];

static unsigned ip_hash(const char *ip)
{
	unsigned h = 5381;
	for (; *ip; ip++)
		h = h * 33 + (unsigned char)*ip;
	return h % IPTAB_SIZE;
}

/* Counts one more connection from ip; false (and no count) over the limit. */
static bool ip_acquire(const char *ip)
{
	unsigned h = ip_hash(ip);
	bool ok = true;
	pthread_mutex_lock(&ip_lock);
	struct ip_count *e;
	for (e = iptab[h]; e; e = e->next) {
		if (strcmp(e->ip, ip) == 0)
			break;
	}
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		e->next = iptab[h];
		iptab[h] = e;
	}
	if (limits.max_connections_per_ip && e->count >= limits.max_connections_per_ip)
		ok = false;
	else
		e->count++;
	pthread_mutex_unlock(&ip_lock);
	return ok;
}

static void ip_release(const char *ip)
{
	unsigned h = ip_hash(ip);
	pthread_mutex_lock(&ip_lock);
	for (struct ip_count **pe = &iptab[h]; *pe; pe = &(*pe)->next) {
		struct ip_count *e = *pe;
		if (strcmp(e->ip, ip) == 0) {
			if (--e->count == 0) {
				*pe = e->next;
				free(e);
			}
			break;
		}
	}
	pthread_mutex_unlock(&ip_lock);
}

void net_set_limits(const struct net_limits *l)
{
	limits = *l;
}

/* ---- binding ---- */

int net_bind(const char *host, const char *port, struct listen_socket **socks_r,
	     size_t *count_r, char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	bool any = strcmp(host, "*") == 0;
	if (any)
		hints.ai_family = AF_INET6;
	int e = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (e != 0 && any) {
		hints.ai_family = AF_INET;
		e = getaddrinfo(NULL, port, &hints, &res);
	}
	if (e != 0) {
		*error_r = xasprintf("%s:%s: %s", host, port, gai_strerror(e));
		return -1;
	}
	int added = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		char name[INET6_ADDRSTRLEN + 16], ipbuf[INET6_ADDRSTRLEN];
		const void *a = ai->ai_family == AF_INET6 ?
			(const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
			(const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		inet_ntop(ai->ai_family, a, ipbuf, sizeof(ipbuf));
		snprintf(name, sizeof(name), ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
			 ipbuf, port);
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*error_r = xasprintf("%s: %s", name, strerror(errno));
			freeaddrinfo(res);
			return -1;
		}
		int one = 1, zero = 0;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
			*error_r = xasprintf("%s: %s", name, strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return -1;
		}
		*socks_r = xrealloc(*socks_r, (*count_r + 1) * sizeof(**socks_r));
		struct listen_socket *ls = &(*socks_r)[(*count_r)++];
		memset(ls, 0, sizeof(*ls));
		ls->fd = fd;
		ls->name = xstrdup(name);
		added++;
	}
	freeaddrinfo(res);
	return added;
}

/* ---- connections ---- */

static void conn_destroy(struct conn *c, enum conn_close_reason reason)
{
	struct net_loop *nl = c->nl;
	if (c->prev)
		c->prev->next = c->next;
	else
		nl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if ((c->opened || c->outbound) && c->h->on_close)
		c->h->on_close(c, reason);
	log_debug("event=disconnect session=%s", c->id);
	if (c->zf)
		deflate_filter_detach(c->zf);
	if (c->zf_below)
		deflate_filter_detach(c->zf_below);
	if (c->bev)
		bufferevent_free(c->bev);
	event_free(c->close_ev);
	event_free(c->resume_ev);
	event_free(c->deadline_ev);
	if (!c->outbound) {
		ip_release(c->ip);
		atomic_fetch_sub(&total_conns, 1);
	}
	free(c);
}

/* What waits in every layer (DEFLATE, TLS, socket). */
static size_t output_pending(struct conn *c)
{
	size_t n = 0;
	for (struct bufferevent *b = c->bev; b; b = bufferevent_get_underlying(b))
		n += evbuffer_get_length(bufferevent_get_output(b));
	return n;
}

/* The TLS layer of the chain, or NULL. */
static struct bufferevent *tls_bev(struct conn *c)
{
	if (!c->tls)
		return NULL;
	for (struct bufferevent *b = c->bev; b; b = bufferevent_get_underlying(b)) {
		if (bufferevent_openssl_get_ssl(b) != NULL)
			return b;
	}
	return NULL;
}

static void close_cb(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct conn *c = arg;
	if (c->zf)	/* what the compressor holds goes out too */
		bufferevent_flush(c->bev, EV_WRITE, BEV_FLUSH);
	if (output_pending(c) > 0 && ++c->flush_tries < CLOSE_FLUSH_TRIES) {
		struct timeval tv = { 0, CLOSE_FLUSH_STEP_MS * 1000 };
		event_add(c->close_ev, &tv);
		return;
	}
	conn_destroy(c, c->connecting ? CONN_CLOSE_ERROR : CONN_CLOSE_LOCAL);
}

static void read_cb(struct bufferevent *bev UNUSED, void *arg)
{
	struct conn *c = arg;
	if (c->closing || !c->opened)
		return;
	c->h->on_read(c);
	if (c->zf && !c->closing)
		deflate_filter_check(c->zf);
}

static void write_cb(struct bufferevent *bev UNUSED, void *arg)
{
	struct conn *c = arg;
	if (c->closing)
		event_active(c->close_ev, 0, 0);
	else if (c->opened && c->h->on_drain) {
		c->h->on_drain(c);
		/* A drained FETCH lets the session read on. */
		if (c->zf && !c->closing)
			deflate_filter_check(c->zf);
	}
}

static void event_cb(struct bufferevent *bev UNUSED, short what, void *arg)
{
	struct conn *c = arg;
	if ((what & BEV_EVENT_CONNECTED) && c->connecting) {
		/* Outbound TCP connection up. */
		c->connecting = false;
		conn_set_timeout(c, c->timeout);
		c->opened = true;
		c->h->on_open(c);
		return;
	}
	if ((what & BEV_EVENT_CONNECTED) && c->client_tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		long v = SSL_get_verify_result(ssl);
		log_info("event=tls session=%s peer=%s version=%s cipher=%s verified=%s%s%s%s",
			 c->id, c->ip, conn_tls_version(c), conn_tls_cipher(c),
			 v == X509_V_OK ? "yes" : "no", v == X509_V_OK ? "" : " reason=\"",
			 v == X509_V_OK ? "" : X509_verify_cert_error_string(v),
			 v == X509_V_OK ? "" : "\"");
		conn_set_timeout(c, c->timeout);
		c->h->on_open(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake done. */
		if (c->hs_deadline)
			evtimer_del(c->deadline_ev);
		c->hs_deadline = false;
		log_info("event=tls session=%s version=%s cipher=%s", c->id,
			 conn_tls_version(c), conn_tls_cipher(c));
		conn_set_timeout(c, c->timeout);
		if (!c->opened) {
			c->opened = true;
			c->h->on_open(c);
		}
		return;
	}
	if (c->closing) {
		if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
			conn_destroy(c, CONN_CLOSE_LOCAL);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("event=timeout session=%s", c->id);
		snprintf(c->error, sizeof(c->error), "%s", c->connecting ?
			 "connection timed out" : "timed out");
		if (c->opened && c->h->on_timeout) {
			/* Let the session say goodbye; nothing more is read. */
			bufferevent_disable(c->bev, EV_READ);
			c->h->on_timeout(c);
			if (!c->closing)
				conn_close(c);
		} else {
			conn_destroy(c, CONN_CLOSE_ERROR);
		}
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e;
		int err = EVUTIL_SOCKET_ERROR();
		if (err != 0)
			snprintf(c->error, sizeof(c->error), "%s", strerror(err));
		struct bufferevent *tb = tls_bev(c);
		while (tb && (e = bufferevent_get_openssl_error(tb)) != 0) {
			char buf[200];
			ERR_error_string_n(e, buf, sizeof(buf));
			log_info("event=tls_error session=%s error=\"%s\"", c->id, buf);
			snprintf(c->error, sizeof(c->error), "TLS: %s", buf);
		}
		if (c->error[0] == '\0')
			snprintf(c->error, sizeof(c->error), "%s", c->connecting ?
				 "connection failed" : "connection error");
		conn_destroy(c, CONN_CLOSE_ERROR);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		snprintf(c->error, sizeof(c->error), "connection closed by the peer");
		conn_destroy(c, CONN_CLOSE_EOF);
	}
}

static void resume_cb(evutil_socket_t fd, short what, void *arg);
static void deadline_cb(evutil_socket_t fd, short what, void *arg);

static void setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATERMARK);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Turn off Nagle's algorithm. Every protocol here is request/answer: a
 * short answer written while an earlier segment is unacknowledged would
 * otherwise wait for the peer's delayed ACK (40 ms on Linux) before it
 * leaves, and pipelined commands stall behind it. Our output is already
 * gathered in the bufferevent and written once per loop turn, so this
 * does not make tiny segments. A failure only costs speed. */
static void set_nodelay(evutil_socket_t fd)
{
	int one = 1;
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A server TLS handshake must end within HANDSHAKE_TIMEOUT_S in all, not
 * only each read within it: a client sending its hello a byte at a time
 * would keep the connection for ever. The connection's deadline timer
 * does it unless the session has one running (IMAP's and POP3's login
 * deadline already bounds their STARTTLS). */
static void handshake_deadline(struct conn *c)
{
	if (evtimer_pending(c->deadline_ev, NULL))
		return;
	struct timeval tv = { HANDSHAKE_TIMEOUT_S, 0 };
	evtimer_add(c->deadline_ev, &tv);
	c->hs_deadline = true;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen UNUSED, void *arg)
{
	struct listen_socket *ls = arg;
	struct net_loop *nl = tl_net;
	struct conn *c = xcalloc(1, sizeof(*c));
	c->nl = nl;
	c->h = ls->handler;
	c->kind = ls->kind;
	snprintf(c->id, sizeof(c->id), "%012llx",
		 (unsigned long long)atomic_fetch_add(&conn_counter, 1) + 1);
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->ip, sizeof(c->ip));
			c->loopback = s6->sin6_addr.s6_addr[12] == 127;
		} else {
			inet_ntop(AF_INET6, &s6->sin6_addr, c->ip, sizeof(c->ip));
			c->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
		}
		c->port = ntohs(s6->sin6_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, c->ip, sizeof(c->ip));
		c->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
		c->port = ntohs(s4->sin_port);
	}
	(void)l;

	unsigned total = atomic_fetch_add(&total_conns, 1) + 1;
	bool ip_ok = ip_acquire(c->ip);
	if ((limits.max_connections && total > limits.max_connections) || !ip_ok) {
		log_warn("event=connection_refused listener=%s ip=%s reason=%s", ls->name,
			 c->ip, ip_ok ? "max_connections" : "max_connections_per_ip");
		if (!ls->implicit_tls && c->h->busy_reply)
			(void)!write(fd, c->h->busy_reply, strlen(c->h->busy_reply));
		close(fd);
		if (ip_ok)
			ip_release(c->ip);
		atomic_fetch_sub(&total_conns, 1);
		free(c);
		return;
	}
	log_info("event=connect session=%s listener=%s ip=%s port=%u", c->id, ls->name,
		 c->ip, c->port);
	set_nodelay(fd);

	struct event_base *base = loop_base(nl->loop);
	c->close_ev = event_new(base, -1, 0, close_cb, c);
	c->resume_ev = event_new(base, -1, 0, resume_cb, c);
	c->deadline_ev = evtimer_new(base, deadline_cb, c);
	c->next = nl->conns;
	if (nl->conns)
		nl->conns->prev = c;
	nl->conns = c;

	if (ls->implicit_tls) {
		SSL *ssl = tls_ssl_new();
		if (ssl == NULL) {
			close(fd);
			conn_destroy(c, CONN_CLOSE_ERROR);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							BEV_OPT_CLOSE_ON_FREE);
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		c->tls = true;
		setup_bev(c);
		struct timeval tv = { HANDSHAKE_TIMEOUT_S, 0 };
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		handshake_deadline(c);
		return;
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	setup_bev(c);
	c->opened = true;
	c->h->on_open(c);
}

static struct net_loop *net_loop_get(struct loop *loop)
{
	if (tl_net == NULL) {
		tl_net = xcalloc(1, sizeof(*tl_net));
		tl_net->loop = loop;
	}
	return tl_net;
}

static void accept_resume_cb(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct net_loop *nl = arg;
	for (size_t i = 0; i < nl->listener_count; i++)
		evconnlistener_enable(nl->listeners[i]);
}

/* accept() failed other than for a connection gone at once: out of
 * descriptors (EMFILE, ENFILE) or memory. The connection stays in the
 * backlog, so the listener would wake again at once and spin; this loop
 * stops accepting for 100 ms instead (nginx does the same), and the
 * connection is taken once something was closed. */
static void accept_error_cb(struct evconnlistener *l UNUSED, void *arg UNUSED)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct net_loop *nl = tl_net;
	log_warn("event=accept_failed error=\"%s\" note=\"not accepting for 100 ms\"",
		 evutil_socket_error_to_string(err));
	if (nl == NULL || nl->accept_resume_ev == NULL)
		return;
	for (size_t i = 0; i < nl->listener_count; i++)
		evconnlistener_disable(nl->listeners[i]);
	struct timeval tv = { 0, 100 * 1000 };
	evtimer_add(nl->accept_resume_ev, &tv);
}

void net_listen_start(struct loop *loop, struct listen_socket *socks, size_t count)
{
	struct net_loop *nl = net_loop_get(loop);
	if (nl->accept_resume_ev == NULL)
		nl->accept_resume_ev = evtimer_new(loop_base(loop), accept_resume_cb, nl);
	for (size_t i = 0; i < count; i++) {
		struct evconnlistener *l = evconnlistener_new(loop_base(loop), accept_cb,
							      &socks[i], 0, -1, socks[i].fd);
		if (l == NULL)
			log_fatal("event=listen_failed listener=%s", socks[i].name);
		evconnlistener_set_error_cb(l, accept_error_cb);
		nl->listeners = xrealloc(nl->listeners, (nl->listener_count + 1) * sizeof(*nl->listeners));
		nl->listeners[nl->listener_count++] = l;
	}
}

void net_listen_stop(struct loop *loop UNUSED)
{
	struct net_loop *nl = tl_net;
	if (nl == NULL)
		return;
	if (nl->accept_resume_ev != NULL) {
		event_free(nl->accept_resume_ev);
		nl->accept_resume_ev = NULL;
	}
	for (size_t i = 0; i < nl->listener_count; i++)
		evconnlistener_free(nl->listeners[i]);
	free(nl->listeners);
	nl->listeners = NULL;
	nl->listener_count = 0;
}

void net_close_all(struct loop *loop)
{
	struct net_loop *nl = tl_net;
	if (nl == NULL)
		return;
	while (nl->conns)
		conn_destroy(nl->conns, CONN_CLOSE_SHUTDOWN);
	free(nl);
	tl_net = NULL;
	/* A freed bufferevent that still had a deferred callback queued (a
	 * TLS one, typically) is only released when that callback runs: let
	 * the loop run what is ready, twice (the release itself is deferred). */
	for (int i = 0; i < 2; i++)
		event_base_loop(loop_base(loop), EVLOOP_NONBLOCK);
}

struct evbuffer *conn_input(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	if (!c->closing)
		bufferevent_write(c->bev, data, len);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	if (c->closing)
		return;
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

size_t conn_output_pending(struct conn *c)
{
	/* Compressed, the layers below hold at most their write watermark
	 * and the DEFLATE layer waits for them: only its input counts, so
	 * on_drain (it is empty) always finds room. */
	if (c->zf)
		return evbuffer_get_length(bufferevent_get_output(c->bev));
	return output_pending(c);
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	/* A deadline reached now would destroy the connection before the
	 * goodbye is sent; the flush has its own bound. */
	evtimer_del(c->deadline_ev);
	event_active(c->close_ev, 0, 0);
}

bool conn_closing(struct conn *c)
{
	return c->closing;
}

void conn_pause_read(struct conn *c)
{
	c->paused = true;
	bufferevent_disable(c->bev, EV_READ);
}

static void resume_cb(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct conn *c = arg;
	/* Input that arrived before the pause is still waiting. */
	if (!c->closing && !c->paused && evbuffer_get_length(conn_input(c)) > 0) {
		c->h->on_read(c);
		if (c->zf && !c->closing)
			deflate_filter_check(c->zf);
	}
}

void conn_resume_read(struct conn *c)
{
	if (c->closing)
		return;
	c->paused = false;
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(conn_input(c)) > 0)
		event_active(c->resume_ev, 0, 0);
	if (c->zf) {
		/* Compressed input left below while paused is only looked at
		 * when more arrives: have the filter read it now. */
		struct bufferevent *under = bufferevent_get_underlying(c->bev);
		if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
			bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
					    BEV_TRIG_DEFER_CALLBACKS);
	}
}

void conn_set_timeout(struct conn *c, unsigned seconds)
{
	c->timeout = seconds;
	struct timeval tv = { seconds, 0 };
	bufferevent_set_timeouts(c->bev, seconds ? &tv : NULL, seconds ? &tv : NULL);
}

static void deadline_cb(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct conn *c = arg;
	event_cb(c->bev, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, c);
}

void conn_set_deadline(struct conn *c, unsigned seconds)
{
	if (seconds == 0) {
		evtimer_del(c->deadline_ev);
		return;
	}
	struct timeval tv = { seconds, 0 };
	evtimer_add(c->deadline_ev, &tv);
}

/* Puts a TLS filter over the connection's bufferevent; the handshake
 * starts at once. Takes ssl. Returns 0 or -1. */
static int add_tls_filter(struct conn *c, SSL *ssl, enum bufferevent_ssl_state state)
{
	struct bufferevent *f = bufferevent_openssl_filter_new(bufferevent_get_base(c->bev),
							       c->bev, ssl, state,
							       BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	/* Without a limit below the filter, a peer that stops reading would
	 * make the whole reply pile up, encrypted, in our memory. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, READ_HIGH_WATERMARK);
	/* Timeouts are the top layer's: one left below (IMAP's 60 s login
	 * timeout) would cut a quiet session (IDLE) that STARTTLS began. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	c->bev = f;
	c->tls = true;
	setup_bev(c);
	struct timeval tv = { HANDSHAKE_TIMEOUT_S, 0 };
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (state == BUFFEREVENT_SSL_ACCEPTING)
		handshake_deadline(c);
	return 0;
}

int conn_starttls(struct conn *c)
{
	if (c->tls)
		return -1;
	/* Under an ended DEFLATE layer only (UNAUTHENTICATE then STARTTLS):
	 * the TLS goes over it, and it passes bytes through. */
	if (c->zf && !deflate_filter_ended(c->zf))
		return -1;
	SSL *ssl = tls_ssl_new();
	if (ssl == NULL)
		return -1;
	/* RFC 3207 4.2: nothing sent before the handshake may be acted on
	 * (nor what waits below an ended DEFLATE layer). */
	size_t injected = 0;
	for (struct bufferevent *b = c->bev; b; b = bufferevent_get_underlying(b)) {
		struct evbuffer *in = bufferevent_get_input(b);
		injected += evbuffer_get_length(in);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	if (injected > 0)
		log_warn("event=starttls_injection session=%s ip=%s bytes=%zu", c->id, c->ip, injected);
	if (add_tls_filter(c, ssl, BUFFEREVENT_SSL_ACCEPTING) < 0)
		return -1;
	if (c->zf) {
		c->zf_below = c->zf;
		c->zf = NULL;
	}
	return 0;
}

bool conn_tls_available(void)
{
	return tls_loaded();
}

bool conn_is_tls(struct conn *c)
{
	return c->tls;
}

static SSL *conn_ssl(struct conn *c)
{
	struct bufferevent *b = tls_bev(c);
	return b ? bufferevent_openssl_get_ssl(b) : NULL;
}

static void compress_error(void *arg, const char *why)
{
	struct conn *c = arg;
	log_info("event=compress_error session=%s ip=%s error=\"%s\"", c->id, c->ip, why);
	snprintf(c->error, sizeof(c->error), "DEFLATE: %s", why);
	conn_close(c);
}

int conn_compress(struct conn *c)
{
	if (c->closing)
		return -1;
	if (c->zf) {
		/* Again after conn_compress_end(): the same layer, fresh
		 * streams (RFC 8437 3 ended them, RFC 4978 starts anew). */
		if (deflate_filter_restart(c->zf) < 0)
			return -1;
		log_debug("event=compress session=%s again=yes", c->id);
		return 0;
	}
	struct bufferevent *under = c->bev;
	struct deflate_filter *zf;
	struct bufferevent *f = deflate_filter_new(under, compress_error, c, &zf);
	if (f == NULL)
		return -1;
	/* The filter stops deflating when the layer below holds this much;
	 * timeouts are kept by the top layer only. */
	bufferevent_setwatermark(under, EV_WRITE, 0, READ_HIGH_WATERMARK);
	for (struct bufferevent *b = under; b; b = bufferevent_get_underlying(b))
		bufferevent_set_timeouts(b, NULL, NULL);
	c->bev = f;
	c->zf = zf;
	setup_bev(c);
	conn_set_timeout(c, c->timeout);
	if (c->paused)
		bufferevent_disable(c->bev, EV_READ);
	/* Compressed bytes that came with the command. */
	if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
	log_debug("event=compress session=%s", c->id);
	return 0;
}

int conn_compress_end(struct conn *c)
{
	if (c->zf == NULL || !deflate_filter_on(c->zf) || c->closing)
		return -1;
	/* queued: output not yet deflated, to go out before the end. */
	log_debug("event=compress_end session=%s queued=%zu", c->id,
		  evbuffer_get_length(bufferevent_get_output(c->bev)));
	deflate_filter_end(c->zf);
	return 0;
}

bool conn_is_compressed(struct conn *c)
{
	return c->zf != NULL && deflate_filter_on(c->zf);
}

const char *conn_tls_version(struct conn *c)
{
	SSL *ssl = conn_ssl(c);
	return ssl ? SSL_get_version(ssl) : NULL;
}

const char *conn_tls_cipher(struct conn *c)
{
	SSL *ssl = conn_ssl(c);
	return ssl ? SSL_get_cipher_name(ssl) : NULL;
}

int conn_tls_bits(struct conn *c)
{
	SSL *ssl = conn_ssl(c);
	return ssl ? SSL_get_cipher_bits(ssl, NULL) : 0;
}

/* ---- outbound ---- */

struct conn *conn_connect(struct loop *loop, const struct sockaddr *sa, unsigned salen,
			  unsigned timeout, const struct conn_handler *h, void *data)
{
	struct net_loop *nl = net_loop_get(loop);
	struct conn *c = xcalloc(1, sizeof(*c));
	c->nl = nl;
	c->h = h;
	c->data = data;
	c->outbound = true;
	c->connecting = true;
	c->kind = -1;
	c->timeout = timeout;
	snprintf(c->id, sizeof(c->id), "%012llx",
		 (unsigned long long)atomic_fetch_add(&conn_counter, 1) + 1);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->ip, sizeof(c->ip));
		c->port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, c->ip, sizeof(c->ip));
		c->port = ntohs(s4->sin_port);
	}
	struct event_base *base = loop_base(loop);
	c->close_ev = event_new(base, -1, 0, close_cb, c);
	c->resume_ev = event_new(base, -1, 0, resume_cb, c);
	c->deadline_ev = evtimer_new(base, deadline_cb, c);
	c->next = nl->conns;
	if (nl->conns)
		nl->conns->prev = c;
	nl->conns = c;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	setup_bev(c);
	/* The connect itself is bounded by the same timeout. */
	struct timeval tv = { timeout ? timeout : 30, 0 };
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	log_info("event=connect_out session=%s ip=%s port=%u", c->id, c->ip, c->port);
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) < 0) {
		/* Failed at once; on_close from the loop, not from inside this
		 * call, so the caller never sees its callback reentered. */
		snprintf(c->error, sizeof(c->error), "%s", strerror(errno ? errno : ECONNREFUSED));
		c->closing = true;
		event_active(c->close_ev, 0, 0);
		return c;
	}
	/* The socket exists now (libevent made it for the connect). */
	set_nodelay(bufferevent_getfd(c->bev));
	return c;
}

int conn_starttls_client(struct conn *c, const char *host, bool verify)
{
	if (c->tls)
		return -1;
	SSL *ssl = tls_client_ssl_new(host, verify);
	if (ssl == NULL)
		return -1;
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	c->client_tls = true;
	return add_tls_filter(c, ssl, BUFFEREVENT_SSL_CONNECTING);
}

bool conn_tls_verified(struct conn *c)
{
	SSL *ssl = conn_ssl(c);
	return ssl != NULL && SSL_get_verify_result(ssl) == X509_V_OK &&
	       SSL_get0_peer_certificate(ssl) != NULL;
}

const char *conn_tls_verify_error(struct conn *c)
{
	SSL *ssl = conn_ssl(c);
	return ssl ? X509_verify_cert_error_string(SSL_get_verify_result(ssl)) : NULL;
}

const char *conn_error(struct conn *c)
{
	return c->error[0] ? c->error : NULL;
}

bool conn_is_open(struct conn *c)
{
	return c->opened && !c->connecting && !c->closing;
}

const char *conn_peer_ip(struct conn *c) { return c->ip; }
uint16_t conn_peer_port(struct conn *c) { return c->port; }
bool conn_peer_is_loopback(struct conn *c) { return c->loopback; }
int conn_listener_kind(struct conn *c) { return c->kind; }
const char *conn_id(struct conn *c) { return c->id; }
struct loop *conn_loop(struct conn *c) { return c->nl->loop; }
void conn_set_data(struct conn *c, void *data) { c->data = data; }
void *conn_data(struct conn *c) { return c->data; }
