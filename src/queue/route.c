/* Where a domain's mail goes: the smarthost, or the domain's mail
 * exchangers (RFC 5321 5.1). */
#include "queue/queue_private.h"
#include "core/log.h"
#include "core/util.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Splits "host:port", "[v6]:port" or "host" (port def). Returns 0 or -1. */
static int split_host_port(const char *s, const char *def, char **host_r, char **port_r)
{
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		*host_r = xstrndup(s + 1, (size_t)(close - s - 1));
		*port_r = xstrdup(close[1] == ':' ? close + 2 : def);
		return 0;
	}
	colon = strrchr(s, ':');
	if (colon != NULL && strchr(s, ':') != colon)
		colon = NULL;	/* a bare IPv6 address */
	*host_r = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
	*port_r = xstrdup(colon ? colon + 1 : def);
	return 0;
}

/* The addresses of host:port into h. Returns 0, or -1 with *permanent_r
 * (the name does not exist) and *error_r. */
static int resolve_host(const char *host, const char *port, struct route_host *h,
			bool *permanent_r, char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int e = getaddrinfo(host, port, &hints, &res);
	if (e != 0) {
		*permanent_r = e == EAI_NONAME;
		*error_r = xasprintf("%s %s: %s", *permanent_r ? "550 5.1.2" : "451 4.4.3",
				     host, gai_strerror(e));
		return -1;
	}
	h->name = xstrdup(host);
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		h->addrs = xrealloc(h->addrs, (h->count + 1) * sizeof(*h->addrs));
		h->lens = xrealloc(h->lens, (h->count + 1) * sizeof(*h->lens));
		memset(&h->addrs[h->count], 0, sizeof(h->addrs[0]));
		memcpy(&h->addrs[h->count], ai->ai_addr, ai->ai_addrlen);
		h->lens[h->count++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
}

void route_lookup(const struct config *cfg, struct loop *loop UNUSED, const char *domain,
		  struct route *r, route_done_fn *done, void *arg)
{
	memset(r, 0, sizeof(*r));
	char *host = NULL, *port = NULL, *error = NULL;
	bool permanent = false;
	if (cfg->smarthost != NULL) {
		r->smarthost = true;
		r->tls = cfg->smarthost_tls;
		/* RFC 6409: a smarthost is a submission server. */
		if (split_host_port(cfg->smarthost, "587", &host, &port) < 0) {
			done(arg, "451 4.3.5 [relay] smarthost is not HOST:PORT", false);
			return;
		}
	} else {
		r->tls = cfg->relay_tls;
		host = xstrdup(domain);
		port = xstrdup("25");
	}
	r->hosts = xcalloc(1, sizeof(*r->hosts));
	if (resolve_host(host, port, &r->hosts[0], &permanent, &error) < 0) {
		free(r->hosts);
		r->hosts = NULL;
		done(arg, error, permanent && !r->smarthost);
		free(error);
	} else {
		r->count = 1;
		done(arg, NULL, false);
	}
	free(host);
	free(port);
}
