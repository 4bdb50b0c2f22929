/* The resolver: one c-ares channel per event loop, driven by libevent.
 *
 * c-ares tells us which sockets it wants watched through its socket state
 * callback (ARES_OPT_SOCK_STATE_CB); each becomes a persistent libevent
 * event that calls ares_process_fd(). One timer per channel, re-armed from
 * ares_timeout() after every call into c-ares, drives retransmissions and
 * timeouts. Nothing here blocks: c-ares sends UDP (TCP when an answer is
 * truncated) and we wait for the loop.
 *
 * A finished lookup is not reported from inside c-ares: its result is
 * stored and a per-lookup event is made active, so the caller's callback
 * runs from the loop proper. c-ares may complete a query inside
 * ares_query() itself (a bad name, no server reachable), and a callback
 * run there could free what the caller is still using; run from the loop,
 * it can do anything.
 *
 * c-ares has no way to cancel one query (ares_cancel() ends all of them),
 * so a cancelled lookup stays allocated, marked, until c-ares reports its
 * queries done (answer, timeout, or ARES_EDESTRUCTION when the channel
 * ends); only then is it freed, and its caller is never called. */
#include "dns/dns_private.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The settings of dns_init(), read by every thread's dns_thread_init(). */
static struct {
	bool ready;
	char *servers;		/* c-ares CSV, NULL: /etc/resolv.conf */
	unsigned timeout_ms;
	unsigned attempts;
} g_dns;

/* A socket c-ares asked us to watch. Kept (unused) after c-ares closes it,
 * and reused: an event is never freed from inside its own callback. */
struct sock_watch {
	struct sock_watch *next;
	struct resolver *res;
	ares_socket_t fd;
	bool used;
	short what;
	struct event ev;
};

struct resolver {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct sock_watch *socks;
	struct dns_lookup *lookups;	/* every live lookup, cancelled ones too */
};

struct dns_lookup {
	struct resolver *res;
	struct dns_lookup *prev, *next;
	bool is_mx;
	bool is_rr;		/* dns_query() */
	bool cancelled;
	int pending;		/* c-ares queries not yet reported */
	char name[DNS_NAME_MAX + 1];
	dns_mx_cb *mx_cb;
	dns_addr_cb *addr_cb;
	dns_rr_cb *rr_cb;
	enum dns_rr_type rr_type;
	struct dns_rr_set *rrs;	/* dns_query(): its answer */
	void *ctx;
	struct event *done;	/* made active once the result is complete */
	enum dns_status early;	/* DNS_BADNAME before any query, else DNS_OK */
	struct dns_mx_set mx;
	struct dns_family v6, v4;
};

static _Thread_local struct resolver *tl_res;

/* ---- settings ---- */

int dns_servers_append(char **csv, const char *server, char **error_r)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *port = NULL;
	bool v6;
	size_t len;
	struct in6_addr a6;
	struct in_addr a4;

	if (server[0] == '[') {
		const char *close = strchr(server, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto bad;
		len = (size_t)(close - server - 1);
		if (len == 0 || len >= sizeof(addr))
			goto bad;
		memcpy(addr, server + 1, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			goto bad;
		v6 = true;
		port = close[1] == ':' ? close + 2 : NULL;
	} else if (inet_pton(AF_INET6, server, &a6) == 1) {
		/* A bare IPv6 address: every colon belongs to it. */
		snprintf(addr, sizeof(addr), "%s", server);
		v6 = true;
	} else {
		const char *colon = strchr(server, ':');
		len = colon ? (size_t)(colon - server) : strlen(server);
		if (len == 0 || len >= sizeof(addr))
			goto bad;
		memcpy(addr, server, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET, addr, &a4) != 1)
			goto bad;
		v6 = false;
		port = colon ? colon + 1 : NULL;
	}
	uint64_t n = 53;
	if (port != NULL && (str_to_u64(port, &n) < 0 || n < 1 || n > 65535)) {
		*error_r = xasprintf("\"%s\": the port must be a number from 1 to 65535", server);
		return -1;
	}
	/* Canonical text of the address, as inet_ntop writes it. */
	char text[INET6_ADDRSTRLEN];
	inet_ntop(v6 ? AF_INET6 : AF_INET, v6 ? (void *)&a6 : (void *)&a4, text, sizeof(text));
	size_t count = *csv == NULL ? 0 : 1;
	for (const char *p = *csv; p && *p; p++)
		count += *p == ',';
	if (count >= DNS_SERVERS_MAX) {
		*error_r = xasprintf("more than %d servers", DNS_SERVERS_MAX);
		return -1;
	}
	char *entry = v6 ? xasprintf("[%s]:%u", text, (unsigned)n) :
		xasprintf("%s:%u", text, (unsigned)n);
	if (*csv == NULL) {
		*csv = entry;
	} else {
		char *joined = xasprintf("%s,%s", *csv, entry);
		free(entry);
		free(*csv);
		*csv = joined;
	}
	return 0;
bad:
	*error_r = xasprintf("\"%s\": expected a numeric ADDRESS[:PORT], e.g. 192.0.2.53, "
			     "127.0.0.1:5353 or [2001:db8::53]:53", server);
	return -1;
}

int dns_init(const struct dns_settings *settings, char **error_r)
{
	int r = ares_library_init(ARES_LIB_INIT_ALL);
	if (r != ARES_SUCCESS) {
		*error_r = xasprintf("c-ares: %s", ares_strerror(r));
		return -1;
	}
	free(g_dns.servers);
	g_dns.servers = settings->servers != NULL && settings->servers[0] != '\0' ?
		xstrdup(settings->servers) : NULL;
	g_dns.timeout_ms = settings->timeout_ms ? settings->timeout_ms : 5000;
	g_dns.attempts = settings->attempts ? settings->attempts : 2;
	if (g_dns.servers != NULL) {
		/* A channel only to see c-ares take the list. */
		ares_channel ch;
		r = ares_init(&ch);
		if (r == ARES_SUCCESS) {
			r = ares_set_servers_ports_csv(ch, g_dns.servers);
			ares_destroy(ch);
		}
		if (r != ARES_SUCCESS) {
			*error_r = xasprintf("[dns] servers %s: %s", g_dns.servers,
					     ares_strerror(r));
			xfree(&g_dns.servers);
			ares_library_cleanup();
			return -1;
		}
	}
	g_dns.ready = true;
	return 0;
}

void dns_deinit(void)
{
	if (!g_dns.ready)
		return;
	xfree(&g_dns.servers);
	g_dns.ready = false;
	ares_library_cleanup();
}

/* ---- sockets and the timer ---- */

static void update_timer(struct resolver *res)
{
	struct timeval tv, *tvp = ares_timeout(res->channel, NULL, &tv);
	if (tvp != NULL)
		evtimer_add(res->timer, tvp);
	else
		evtimer_del(res->timer);
}

static void on_timer(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct resolver *res = arg;
	ares_process_fd(res->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(res);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct sock_watch *w = arg;
	struct resolver *res = w->res;
	ares_process_fd(res->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	update_timer(res);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *res = data;
	struct sock_watch *w = NULL, *free_w = NULL;
	for (struct sock_watch *s = res->socks; s != NULL; s = s->next) {
		if (s->used && s->fd == fd) {
			w = s;
			break;
		}
		if (!s->used && free_w == NULL)
			free_w = s;
	}
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	if (w != NULL && w->what == what)
		return;
	if (w != NULL) {
		event_del(&w->ev);
		if (what == 0) {
			w->used = false;
			return;
		}
	} else {
		if (what == 0)
			return;
		w = free_w;
		if (w == NULL) {
			w = xcalloc(1, sizeof(*w));
			w->res = res;
			w->next = res->socks;
			res->socks = w;
		}
		w->used = true;
		w->fd = fd;
	}
	w->what = what;
	event_assign(&w->ev, res->base, fd, (short)(what | EV_PERSIST), on_socket, w);
	event_add(&w->ev, NULL);
}

/* ---- per thread ---- */

void dns_thread_init(struct loop *loop)
{
	if (!g_dns.ready)
		log_panic("dns_thread_init before dns_init");
	if (tl_res != NULL)
		log_panic("dns_thread_init twice on one thread");
	struct resolver *res = xcalloc(1, sizeof(*res));
	res->base = loop_base(loop);
	struct ares_options opts;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = sock_state;
	opts.sock_state_cb_data = res;
	opts.timeout = (int)g_dns.timeout_ms;
	opts.tries = (int)g_dns.attempts;
	int r = ares_init_options(&res->channel, &opts,
				  ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (r != ARES_SUCCESS)
		log_fatal("event=dns_init error=\"%s\"", ares_strerror(r));
	if (g_dns.servers != NULL) {
		r = ares_set_servers_ports_csv(res->channel, g_dns.servers);
		if (r != ARES_SUCCESS)
			log_fatal("event=dns_init servers=%s error=\"%s\"", g_dns.servers,
				  ares_strerror(r));
	}
	res->timer = evtimer_new(res->base, on_timer, res);
	tl_res = res;
}

static void lookup_unlink(struct dns_lookup *l)
{
	struct resolver *res = l->res;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else if (res->lookups == l)
		res->lookups = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

static void lookup_release(struct dns_lookup *l)
{
	event_free(l->done);
	dns_mx_set_free(&l->mx);
	if (l->rrs != NULL) {
		dns_rr_set_free(l->rrs);
		free(l->rrs);
	}
	free(l);
}

static void lookup_free(struct dns_lookup *l)
{
	lookup_unlink(l);
	lookup_release(l);
}

void dns_thread_deinit(void)
{
	struct resolver *res = tl_res;
	if (res == NULL)
		return;
	/* Cancel everything first, so ares_destroy()'s ARES_EDESTRUCTION
	 * reports only free memory and call nobody. */
	for (struct dns_lookup *l = res->lookups, *next; l != NULL; l = next) {
		next = l->next;
		l->cancelled = true;
		if (l->pending == 0)
			lookup_free(l);
	}
	ares_destroy(res->channel);
	if (res->lookups != NULL)
		log_panic("dns: lookups left after ares_destroy");
	for (struct sock_watch *w = res->socks, *next; w != NULL; w = next) {
		next = w->next;
		if (w->used)
			event_del(&w->ev);
		free(w);
	}
	event_free(res->timer);
	free(res);
	tl_res = NULL;
}

/* ---- lookups ---- */

static void on_done(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct dns_lookup *l = arg;
	lookup_unlink(l);
	if (l->is_rr) {
		struct dns_rr_result r = {
			.status = l->rrs->status,
			.name = l->name,
			.type = l->rr_type,
			.count = l->rrs->count,
			.rr = l->rrs->rr,
			.truncated = l->rrs->truncated,
			.detail = l->rrs->detail ? l->rrs->detail : "",
		};
		if (l->early != DNS_OK) {
			r.status = l->early;
			r.count = 0;
			r.detail = "bad domain name";
		}
		log_debug("event=dns_query name=%s type=%d status=%s count=%zu detail=\"%s\"",
			  l->name, (int)l->rr_type, dns_status_name(r.status), r.count, r.detail);
		l->rr_cb(&r, l->ctx);
	} else if (l->is_mx) {
		struct dns_mx_result r = {
			.status = l->mx.status,
			.domain = l->name,
			.count = l->mx.count,
			.mx = l->mx.mx,
			.implicit = l->mx.implicit,
			.detail = l->mx.detail ? l->mx.detail : "",
		};
		if (l->early != DNS_OK) {
			r.status = l->early;
			r.detail = "bad domain name";
		}
		log_debug("event=dns_mx domain=%s status=%s count=%zu implicit=%d detail=\"%s\"",
			  l->name, dns_status_name(r.status), r.count, (int)r.implicit, r.detail);
		l->mx_cb(&r, l->ctx);
	} else {
		struct sockaddr_storage addrs[2 * DNS_ADDR_MAX];
		struct dns_addr_result r = { .host = l->name };
		dns_addr_merge(&l->v6, &l->v4, addrs, &r);
		if (l->early != DNS_OK) {
			r.status = l->early;
			r.detail = "bad domain name";
		}
		log_debug("event=dns_addr host=%s status=%s count=%zu partial=%d detail=\"%s\"",
			  l->name, dns_status_name(r.status), r.count, (int)r.partial, r.detail);
		l->addr_cb(&r, l->ctx);
	}
	/* l was unlinked: the callback could not reach it through the list. */
	lookup_release(l);
}

static struct dns_lookup *lookup_new(const char *name, bool is_mx, bool is_rr)
{
	struct resolver *res = tl_res;
	if (res == NULL)
		log_panic("dns lookup on a thread without dns_thread_init");
	struct dns_lookup *l = xcalloc(1, sizeof(*l));
	l->res = res;
	l->is_mx = is_mx;
	l->is_rr = is_rr;
	if (is_rr)
		l->rrs = xcalloc(1, sizeof(*l->rrs));
	l->done = event_new(res->base, -1, 0, on_done, l);
	l->next = res->lookups;
	if (res->lookups != NULL)
		res->lookups->prev = l;
	res->lookups = l;
	if ((is_rr ? dns_qname_normalize(name, l->name) : dns_name_normalize(name, l->name)) < 0) {
		/* Reported from the loop like any other result. */
		l->early = DNS_BADNAME;
		snprintf(l->name, sizeof(l->name), "%.*s", DNS_NAME_MAX, name);
		event_active(l->done, 0, 0);
	}
	return l;
}

/* One c-ares query finished. */
static bool query_finished(struct dns_lookup *l)
{
	l->pending--;
	if (l->cancelled) {
		if (l->pending == 0)
			lookup_free(l);
		return false;
	}
	return true;
}

static void on_mx_answer(void *arg, int status, int timeouts UNUSED, unsigned char *abuf,
			 int alen)
{
	struct dns_lookup *l = arg;
	if (!query_finished(l))
		return;
	dns_mx_parse(l->name, status, abuf, alen, NULL, &l->mx);
	event_active(l->done, 0, 0);
}

static void on_addr_answer(struct dns_lookup *l, int family, int status,
			   const unsigned char *abuf, int alen)
{
	if (!query_finished(l))
		return;
	dns_family_parse(family, status, abuf, alen, family == AF_INET6 ? &l->v6 : &l->v4);
	if (l->pending == 0)
		event_active(l->done, 0, 0);
}

static void on_aaaa_answer(void *arg, int status, int timeouts UNUSED, unsigned char *abuf,
			   int alen)
{
	on_addr_answer(arg, AF_INET6, status, abuf, alen);
}

static void on_a_answer(void *arg, int status, int timeouts UNUSED, unsigned char *abuf,
			int alen)
{
	on_addr_answer(arg, AF_INET, status, abuf, alen);
}

struct dns_lookup *dns_mx(const char *domain, dns_mx_cb *cb, void *ctx)
{
	struct dns_lookup *l = lookup_new(domain, true, false);
	l->mx_cb = cb;
	l->ctx = ctx;
	if (l->early != DNS_OK)
		return l;
	struct resolver *res = l->res;
	/* ares_query, not ares_search: the domain of an address is absolute,
	 * and resolv.conf's search list must not be tried after it. */
	l->pending = 1;
	ares_query(res->channel, l->name, ns_c_in, ns_t_mx, on_mx_answer, l);
	update_timer(res);
	return l;
}

struct dns_lookup *dns_addr(const char *host, dns_addr_cb *cb, void *ctx)
{
	struct dns_lookup *l = lookup_new(host, false, false);
	l->addr_cb = cb;
	l->ctx = ctx;
	if (l->early != DNS_OK)
		return l;
	struct resolver *res = l->res;
	/* Both before either can finish: c-ares may report one at once. */
	l->pending = 2;
	ares_query(res->channel, l->name, ns_c_in, ns_t_aaaa, on_aaaa_answer, l);
	ares_query(res->channel, l->name, ns_c_in, ns_t_a, on_a_answer, l);
	update_timer(res);
	return l;
}

static void on_rr_answer(void *arg, int status, int timeouts UNUSED, unsigned char *abuf,
			 int alen)
{
	struct dns_lookup *l = arg;
	if (!query_finished(l))
		return;
	dns_rr_parse(l->name, l->rr_type, status, abuf, alen, l->rrs);
	event_active(l->done, 0, 0);
}

struct dns_lookup *dns_query(const char *name, enum dns_rr_type type, dns_rr_cb *cb,
			     void *ctx)
{
	struct dns_lookup *l = lookup_new(name, false, true);
	l->rr_cb = cb;
	l->rr_type = type;
	l->ctx = ctx;
	if (l->early != DNS_OK)
		return l;
	struct resolver *res = l->res;
	l->pending = 1;
	ares_query(res->channel, l->name, ns_c_in, (int)type, on_rr_answer, l);
	update_timer(res);
	return l;
}

/* ---- timers ---- */

struct dns_timer {
	struct event *ev;
	dns_timer_cb *cb;
	void *ctx;
};

static void on_dns_timer(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct dns_timer *t = arg;
	t->cb(t->ctx);
}

struct dns_timer *dns_timer_new(unsigned ms, dns_timer_cb *cb, void *ctx)
{
	struct resolver *res = tl_res;
	if (res == NULL)
		log_panic("dns_timer_new on a thread without dns_thread_init");
	struct dns_timer *t = xcalloc(1, sizeof(*t));
	t->cb = cb;
	t->ctx = ctx;
	t->ev = evtimer_new(res->base, on_dns_timer, t);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	evtimer_add(t->ev, &tv);
	return t;
}

void dns_timer_free(struct dns_timer **tp)
{
	struct dns_timer *t = *tp;
	if (t == NULL)
		return;
	*tp = NULL;
	event_free(t->ev);
	free(t);
}

void dns_cancel(struct dns_lookup **lookupp)
{
	struct dns_lookup *l = *lookupp;
	if (l == NULL)
		return;
	*lookupp = NULL;
	if (l->pending == 0) {
		/* Answered, its callback not yet run: the event goes too. */
		lookup_free(l);
		return;
	}
	l->cancelled = true;
}
