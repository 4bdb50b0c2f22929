/* Where a domain's mail goes: the smarthost, or the domain's mail
 * exchangers (RFC 5321 5.1): MX records by preference (equal ones in random
 * order, dns.h), the implicit MX (the domain's own address) when there is
 * no MX record, nothing for a null MX (RFC 7505). Each host's A and AAAA
 * are looked up at once; hosts without an address are skipped. */
#include "queue/queue_private.h"
#include "core/log.h"
#include "core/util.h"
#include "dns/dns.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MX hosts whose addresses are looked up: more is never useful. */
#define ROUTE_HOSTS_MAX 10

struct addr_req {
	struct route_ctx *x;
	size_t index;
	struct dns_lookup *lookup;	/* NULL once answered */
};

struct route_ctx {
	struct route *r;
	struct dns_lookup *mx_lookup;	/* NULL once answered */
	struct addr_req *reqs;
	route_done_fn *done;
	void *arg;
	uint16_t port;
	size_t pending;
	size_t count;
	struct route_host *hosts;	/* in MX order, filled as answers come */
	bool any_temp;			/* some lookup failed temporarily */
	char *detail;
};

void route_free(struct route *r)
{
	for (size_t i = 0; i < r->count; i++) {
		free(r->hosts[i].name);
		free(r->hosts[i].addrs);
		free(r->hosts[i].lens);
	}
	free(r->hosts);
	memset(r, 0, sizeof(*r));
}

static void set_port(struct sockaddr_storage *ss, uint16_t port, socklen_t *len_r)
{
	if (ss->ss_family == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		*len_r = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)ss)->sin_port = htons(port);
		*len_r = sizeof(struct sockaddr_in);
	}
}

static void host_add_addrs(struct route_host *h, const struct sockaddr_storage *addrs,
			   size_t n, uint16_t port)
{
	h->addrs = xrealloc(h->addrs, (h->count + n) * sizeof(*h->addrs));
	h->lens = xrealloc(h->lens, (h->count + n) * sizeof(*h->lens));
	for (size_t i = 0; i < n; i++) {
		h->addrs[h->count] = addrs[i];
		set_port(&h->addrs[h->count], port, &h->lens[h->count]);
		h->count++;
	}
}

static void ctx_free(struct route_ctx *x)
{
	free(x->reqs);
	free(x->detail);
	free(x);
}

void route_cancel(struct route *r)
{
	struct route_ctx *x = r->pending;
	if (x == NULL)
		return;
	r->pending = NULL;
	dns_cancel(&x->mx_lookup);
	for (size_t i = 0; x->reqs != NULL && i < x->count; i++)
		dns_cancel(&x->reqs[i].lookup);
	for (size_t i = 0; i < x->count; i++) {
		free(x->hosts[i].name);
		free(x->hosts[i].addrs);
		free(x->hosts[i].lens);
	}
	free(x->hosts);
	ctx_free(x);
}

/* All answers are in: the hosts with addresses, in order, or the reason
 * there is none. */
static void ctx_finish(struct route_ctx *x)
{
	struct route *r = x->r;
	r->pending = NULL;
	for (size_t i = 0; i < x->count; i++) {
		if (x->hosts[i].count == 0) {
			free(x->hosts[i].name);
			free(x->hosts[i].addrs);
			free(x->hosts[i].lens);
			continue;
		}
		r->hosts = xrealloc(r->hosts, (r->count + 1) * sizeof(*r->hosts));
		r->hosts[r->count++] = x->hosts[i];
	}
	free(x->hosts);
	if (r->count > 0) {
		x->done(x->arg, NULL, false);
	} else if (x->any_temp) {
		char *why = xasprintf("451 4.4.3 Address lookup failed: %s", x->detail ? x->detail : "");
		x->done(x->arg, why, false);
		free(why);
	} else {
		x->done(x->arg, "550 5.4.4 The mail exchangers have no address", true);
	}
	ctx_free(x);
}

static void on_addr(const struct dns_addr_result *res, void *ctx)
{
	struct addr_req *q = ctx;
	struct route_ctx *x = q->x;
	q->lookup = NULL;	/* answered: the handle is gone */
	if (res->status == DNS_OK) {
		host_add_addrs(&x->hosts[q->index], res->addrs, res->count, x->port);
	} else {
		if (!dns_status_permanent(res->status))
			x->any_temp = true;
		free(x->detail);
		x->detail = xasprintf("%s: %s%s%s", res->host, dns_status_name(res->status),
				      res->detail && *res->detail ? " " : "",
				      res->detail ? res->detail : "");
		log_info("event=route_addr_failed host=%s status=%s", res->host,
			 dns_status_name(res->status));
	}
	if (--x->pending == 0)
		ctx_finish(x);
}

static void lookup_addrs(struct route_ctx *x)
{
	x->pending = x->count;
	x->reqs = xcalloc(x->count, sizeof(*x->reqs));
	for (size_t i = 0; i < x->count; i++) {
		x->reqs[i].x = x;
		x->reqs[i].index = i;
		x->reqs[i].lookup = dns_addr(x->hosts[i].name, on_addr, &x->reqs[i]);
	}
}

static void on_mx(const struct dns_mx_result *res, void *ctx)
{
	struct route_ctx *x = ctx;
	char *why = NULL;
	x->mx_lookup = NULL;
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NULL_MX:
		/* RFC 7505 3.2 */
		why = xasprintf("556 5.1.10 %s does not accept mail (null MX)", res->domain);
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
	case DNS_BADNAME:
		why = xasprintf("550 5.1.2 The domain %s does not exist (%s)", res->domain,
				dns_status_name(res->status));
		break;
	case DNS_TEMPFAIL:
		why = xasprintf("451 4.4.3 MX lookup for %s failed: %s", res->domain,
				res->detail ? res->detail : "temporary failure");
		break;
	}
	if (why != NULL) {
		x->r->pending = NULL;
		x->done(x->arg, why, dns_status_permanent(res->status));
		free(why);
		ctx_free(x);
		return;
	}
	x->count = res->count < ROUTE_HOSTS_MAX ? res->count : ROUTE_HOSTS_MAX;
	x->hosts = xcalloc(x->count, sizeof(*x->hosts));
	for (size_t i = 0; i < x->count; i++)
		x->hosts[i].name = xstrdup(res->mx[i].host);
	lookup_addrs(x);
}

/* Splits "host:port", "[v6]:port" or "host" (port def). Returns 0 or -1. */
static int split_host_port(const char *s, const char *def, char **host_r, uint16_t *port_r)
{
	const char *port = def;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		*host_r = xstrndup(s + 1, (size_t)(close - s - 1));
		if (close[1] == ':')
			port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon)
			colon = NULL;	/* a bare IPv6 address */
		*host_r = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
		if (colon)
			port = colon + 1;
	}
	char *end;
	unsigned long p = strtoul(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p == 0 || p > 65535) {
		free(*host_r);
		return -1;
	}
	*port_r = (uint16_t)p;
	return 0;
}

void route_lookup(const struct config *cfg, struct loop *loop UNUSED, const char *domain,
		  struct route *r, route_done_fn *done, void *arg)
{
	memset(r, 0, sizeof(*r));
	struct route_ctx *x = xcalloc(1, sizeof(*x));
	x->r = r;
	x->done = done;
	x->arg = arg;
	r->pending = x;
	if (cfg->smarthost == NULL) {
		r->tls = cfg->relay_tls;
		x->port = 25;
		x->mx_lookup = dns_mx(domain, on_mx, x);
		return;
	}
	r->smarthost = true;
	r->tls = cfg->smarthost_tls;
	char *host;
	/* RFC 6409: a smarthost is a submission server. */
	if (split_host_port(cfg->smarthost, "587", &host, &x->port) < 0) {
		r->pending = NULL;
		free(x);
		done(arg, "451 4.3.5 [relay] smarthost is not HOST:PORT", false);
		return;
	}
	x->count = 1;
	x->hosts = xcalloc(1, sizeof(*x->hosts));
	x->hosts[0].name = host;
	/* A literal address needs no lookup. */
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		ss.ss_family = AF_INET;
	} else {
		lookup_addrs(x);
		return;
	}
	host_add_addrs(&x->hosts[0], &ss, 1, x->port);
	ctx_finish(x);
}
