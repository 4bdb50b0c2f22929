/* Internals of dns/ shared by dns.c, the unit tests and the fuzz target:
 * turning what c-ares returns (a status and the raw answer) into results,
 * without any socket or loop. */
#ifndef YUBIN_DNS_PRIVATE_H
#define YUBIN_DNS_PRIVATE_H

#include "dns/dns.h"

#include <stdint.h>

/* Maps the status c-ares gave a query to ours; *detail_r is a static text
 * for logs ("SERVFAIL", "timeout", ...). ARES_SUCCESS maps to DNS_OK. */
enum dns_status dns_status_from_ares(int ares_status, const char **detail_r);

/* Checks a domain name and writes it lower case without a final dot into
 * out. Letters, digits, '-' and '_' in labels of 1 to 63, 253 in all (RFC
 * 1035 2.3.4; '_' is not for hosts but harmless to ask). Returns 0 or -1. */
int dns_name_normalize(const char *name, char out[DNS_NAME_MAX + 1]);

/* An MX answer made into a result. The arrays belong to the set. */
struct dns_mx_set {
	enum dns_status status;
	bool implicit;
	size_t count;
	struct dns_mx *mx;
	const char *detail;
};

/* The answer to "domain MX" with the query's c-ares status: sorted,
 * shuffled among equal preferences with rnd (a uniform random number
 * below n; NULL: libsodium), null MX and the implicit MX recognised.
 * domain is already normalized. */
void dns_mx_parse(const char *domain, int ares_status, const unsigned char *abuf,
		  int alen, uint32_t (*rnd)(uint32_t n), struct dns_mx_set *set_r);
void dns_mx_set_free(struct dns_mx_set *set);

/* The addresses of one family from an A (AF_INET) or AAAA (AF_INET6)
 * answer, in the answer's order, at most DNS_ADDR_MAX. */
struct dns_family {
	int ares_status;	/* of the query, or of parsing the answer */
	size_t count;
	struct sockaddr_storage addrs[DNS_ADDR_MAX];
};

void dns_family_parse(int family, int ares_status, const unsigned char *abuf, int alen,
		      struct dns_family *fam_r);

/* Both families into one result: interleaved, IPv6 first. addrs must hold
 * 2 * DNS_ADDR_MAX. Fills status, count, partial, detail of *res. */
void dns_addr_merge(const struct dns_family *v6, const struct dns_family *v4,
		    struct sockaddr_storage *addrs, struct dns_addr_result *res);

/* A name for dns_query(): printable ASCII bytes (space too) but the
 * backslash, in labels of 1 to 63, 253 in all; ASCII upper case made
 * lower, a final dot dropped. Returns 0 or -1. */
int dns_qname_normalize(const char *name, char out[DNS_NAME_MAX + 1]);

/* The records of one answer, owned by the set. */
struct dns_rr_set {
	enum dns_status status;
	size_t count;
	struct dns_rr rr[DNS_RR_MAX];
	bool truncated;
	const char *detail;
};

/* The answer to "name type" (name normalized) with the query's c-ares
 * status: the answer section read (names through ares_expand_name, so
 * compression is handled), a CNAME chain from name followed (at most
 * DNS_CNAME_HOPS), records of type owned by the chain's end kept. An
 * answer that cannot be read is DNS_TEMPFAIL ("malformed answer"). */
#define DNS_CNAME_HOPS 8
void dns_rr_parse(const char *name, enum dns_rr_type type, int ares_status,
		  const unsigned char *abuf, int alen, struct dns_rr_set *set_r);
void dns_rr_set_free(struct dns_rr_set *set);

#endif
