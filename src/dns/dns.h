/* The asynchronous resolver: MX and address lookups for the relay, on
 * c-ares, inside our event loops.
 *
 * Each loop (I/O thread) has its own c-ares channel: dns_thread_init() on
 * the loop's thread makes it, dns_thread_deinit() ends it. A lookup is
 * started on that thread and its callback runs there too, always from the
 * event loop and never from inside the dns_*() call that started it, so a
 * callback may start new lookups or cancel other ones freely.
 *
 *   dns_init(&settings, &error)              once, before the threads start
 *   dns_thread_init(loop)                    on each loop's thread
 *   l = dns_mx("example.com", cb, ctx)       any number, on that thread
 *   dns_cancel(&l)                           the session went away: cb never runs
 *   dns_thread_deinit()                      on the thread, after its loop ran
 *   dns_deinit()                             once, after the threads ended
 *
 * Ownership: the lookup handle belongs to the library. It stays valid until
 * its callback is called or it is cancelled, whichever comes first; after
 * that it must not be used (in particular, never cancel a lookup from its
 * own callback: forget the handle there instead). A result and every
 * pointer in it are valid during the callback only: copy what you keep.
 *
 * Permanent and temporary failures are distinct results, so the queue can
 * bounce at once (NXDOMAIN, null MX, no address, a malformed name) or
 * retry later (SERVFAIL, REFUSED, timeout, no server reachable). */
#ifndef YUBIN_DNS_H
#define YUBIN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct loop;

#define DNS_NAME_MAX 253	/* RFC 1035 2.3.4, without the final dot */
#define DNS_MX_MAX 32		/* exchangers kept from one answer, the best ones */
#define DNS_ADDR_MAX 32		/* addresses kept per family from one answer */
#define DNS_SERVERS_MAX 8	/* resolvers in [dns] servers */
#define DNS_ADDRSTRLEN 64	/* dns_addr_text(): "[ffff:...:ffff]:65535" fits */

enum dns_status {
	DNS_OK,		/* found: the result lists it */
	DNS_NULL_MX,	/* RFC 7505: the domain says it accepts no mail (permanent) */
	DNS_NXDOMAIN,	/* the name does not exist (permanent) */
	DNS_NODATA,	/* the name exists but has no A nor AAAA (permanent; dns_addr only) */
	DNS_BADNAME,	/* not a valid domain name: empty, too long, bad bytes (permanent) */
	DNS_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, network error: try again later */
};

/* True for the results that will not change by asking again soon. */
bool dns_status_permanent(enum dns_status status);
/* "ok", "null-mx", "nxdomain", "nodata", "badname", "tempfail": for logs. */
const char *dns_status_name(enum dns_status status);

struct dns_settings {
	/* Comma-separated resolvers, "ADDR[:PORT]" with IPv6 as "[ADDR]:PORT",
	 * as checked by dns_servers_parse(); NULL or "": /etc/resolv.conf. */
	const char *servers;
	unsigned timeout_ms;	/* first try per server; c-ares doubles it per round */
	unsigned attempts;	/* rounds over all servers */
};

/* Checks one "ADDR[:PORT]" (numeric address: a resolver cannot be found by
 * name) and appends its canonical form to *csv (a malloc'd string, may be
 * NULL), comma-separated. Returns 0, or -1 with *error_r (to be freed). */
int dns_servers_append(char **csv, const char *server, char **error_r);

/* Once per process, before any dns_thread_init(): c-ares library set-up and
 * the settings (copied). Checks that c-ares takes the servers. Returns 0 or
 * -1 with *error_r (to be freed). */
int dns_init(const struct dns_settings *settings, char **error_r);
void dns_deinit(void);

/* On the loop's own thread: the thread's channel. Fatal if c-ares cannot
 * start (out of memory, no usable configuration). */
void dns_thread_init(struct loop *loop);
/* On the same thread, with its loop no longer running callbacks of ours
 * (after loop_run returned). Lookups still open are cancelled silently:
 * their callbacks never run. */
void dns_thread_deinit(void);

struct dns_lookup;

struct dns_mx {
	char *host;		/* lower case, no final dot */
	unsigned preference;
};

struct dns_mx_result {
	enum dns_status status;
	const char *domain;	/* as asked, lower case, without a final dot */
	/* DNS_OK: the exchangers to try, in order: by preference, equal
	 * preferences in random order (RFC 5321 5.1), at most DNS_MX_MAX. */
	size_t count;
	const struct dns_mx *mx;
	/* No MX record (NODATA): mx is the implicit MX, the domain itself
	 * with preference 0, whose A/AAAA the caller looks up next. */
	bool implicit;
	const char *detail;	/* why, for logs ("SERVFAIL", "timeout"); "" if OK */
};

struct dns_addr_result {
	enum dns_status status;	/* DNS_OK when at least one address was found */
	const char *host;
	/* Both families, interleaved starting with IPv6 (RFC 8305 4): a host
	 * whose IPv6 path is broken costs one attempt before an IPv4 one, and
	 * a sender without IPv6 skips those fast (ENETUNREACH). Within a
	 * family, the order of the answer. Ports are 0. */
	size_t count;
	const struct sockaddr_storage *addrs;
	/* One family failed temporarily while the other answered: the list
	 * may be incomplete (worth a log line, not a retry). */
	bool partial;
	const char *detail;
};

typedef void dns_mx_cb(const struct dns_mx_result *result, void *ctx);
typedef void dns_addr_cb(const struct dns_addr_result *result, void *ctx);

/* MX of domain (RFC 5321 5.1, RFC 7505). A CNAME is followed as the
 * recursive resolver answers it. Returns the handle; the callback runs
 * later, exactly once unless cancelled. A bad name is DNS_BADNAME through
 * the callback, too. */
struct dns_lookup *dns_mx(const char *domain, dns_mx_cb *cb, void *ctx);
/* A and AAAA of host, both asked at once. */
struct dns_lookup *dns_addr(const char *host, dns_addr_cb *cb, void *ctx);
/* A raw query of one record type, for the mail-authentication checks
 * (SPF, DKIM, DMARC; mailauth/ma_resolve.c): TXT, A, AAAA, MX or PTR. */
enum dns_rr_type {
	DNS_RR_A = 1,
	DNS_RR_PTR = 12,
	DNS_RR_MX = 15,
	DNS_RR_TXT = 16,
	DNS_RR_AAAA = 28,
};

#define DNS_RR_MAX 64		/* records kept from one answer, in its order */
#define DNS_TXT_MAX 65535	/* one TXT record, its strings concatenated */

struct dns_rr {
	/* TXT: the record's character-strings concatenated, len bytes and a
	 * NUL after them (a NUL inside is the caller's to refuse). MX, PTR:
	 * the host name, lower case, no final dot (len is its length).
	 * A/AAAA: text NULL, family and addr set. */
	const char *text;
	size_t len;
	unsigned preference;	/* MX */
	int family;		/* A: AF_INET, AAAA: AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

struct dns_rr_result {
	/* DNS_OK: count >= 1 records. DNS_NODATA: the name exists (or is an
	 * alias) without a record of that type, DNS_NXDOMAIN: it does not,
	 * DNS_BADNAME: the name cannot be asked, DNS_TEMPFAIL: no answer. */
	enum dns_status status;
	const char *name;	/* as asked, lower case, without a final dot */
	enum dns_rr_type type;
	size_t count;
	const struct dns_rr *rr;
	bool truncated;		/* more than DNS_RR_MAX records: the rest dropped */
	const char *detail;
};

typedef void dns_rr_cb(const struct dns_rr_result *result, void *ctx);

/* Records of type for name. A CNAME chain is followed as the recursive
 * resolver returns it (the records of the chain's end are taken). name may
 * hold any printable ASCII byte but a backslash in its labels (SPF's
 * macros make such names, RFC 7208 7.3); labels of 1 to 63 bytes, 253 in
 * all. */
struct dns_lookup *dns_query(const char *name, enum dns_rr_type type, dns_rr_cb *cb,
			     void *ctx);

/* Forgets the lookup: its callback will not run, and ctx may be freed
 * right after. Sets *lookup to NULL; NULL is fine. */
void dns_cancel(struct dns_lookup **lookup);

/* A one-shot timer on the calling thread's loop (the one given to
 * dns_thread_init), for callers that bound a series of lookups as a whole
 * (SPF: RFC 7208 4.6.4's limit on the elapsed time). cb runs once from
 * the loop, after ms milliseconds, unless the timer is freed first. */
struct dns_timer;
typedef void dns_timer_cb(void *ctx);
struct dns_timer *dns_timer_new(unsigned ms, dns_timer_cb *cb, void *ctx);
/* Stops and frees the timer (also from inside its callback). Sets *timer
 * to NULL; NULL is fine. */
void dns_timer_free(struct dns_timer **timer);

/* "192.0.2.1" or "2001:db8::1" (port 0), else "192.0.2.1:25" or
 * "[2001:db8::1]:25". buf holds DNS_ADDRSTRLEN bytes. */
const char *dns_addr_text(const struct sockaddr_storage *addr, char *buf);

#endif
