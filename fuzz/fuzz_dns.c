/* libFuzzer target: DNS answers into dns/ results (src/dns/dns_parse.c).
 *
 * The input is a DNS message, taken as the answer to an MX query, to an A
 * query and to an AAAA query (c-ares parses the wire format; we check
 * what it hands back and apply the RFC 5321 / RFC 7505 rules). The
 * invariants checked:
 *   - an MX result is sorted by preference, holds at most DNS_MX_MAX
 *     exchangers, each a valid lower-case host name, and is either found,
 *     null MX or a temporary failure (a message cannot make it NXDOMAIN:
 *     that comes from the status);
 *   - the implicit MX is the domain itself;
 *   - merged addresses are IPv6 and IPv4 alternating from IPv6 while both
 *     last, within 2 * DNS_ADDR_MAX, and found means at least one;
 *   - the raw answers of dns_query() (TXT, A, AAAA, MX, PTR) keep at most
 *     DNS_RR_MAX records of the right shape, none when malformed.
 * Seeds in fuzz/corpus/dns/. */
#include "dns/dns_private.h"
#include "core/util.h"

#include <ares.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rnd_first(uint32_t n)
{
	return n - 1;
}

static void check_mx(const struct dns_mx_set *set)
{
	if (set->status != DNS_OK && set->status != DNS_NULL_MX && set->status != DNS_TEMPFAIL)
		abort();
	if (set->status != DNS_OK && set->count != 0)
		abort();
	if (set->status == DNS_OK && (set->count == 0 || set->count > DNS_MX_MAX))
		abort();
	if (set->implicit && (set->count != 1 || strcmp(set->mx[0].host, "fuzz.example") != 0))
		abort();
	for (size_t i = 0; i < set->count; i++) {
		char norm[DNS_NAME_MAX + 1];
		if (dns_name_normalize(set->mx[i].host, norm) < 0 ||
		    strcmp(norm, set->mx[i].host) != 0)
			abort();
		if (i > 0 && set->mx[i - 1].preference > set->mx[i].preference)
			abort();
	}
	if (set->detail == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65535)
		return 0;
	struct dns_mx_set set;
	dns_mx_parse("fuzz.example", ARES_SUCCESS, data, (int)size, rnd_first, &set);
	check_mx(&set);
	dns_mx_set_free(&set);

	struct dns_family v6, v4;
	dns_family_parse(AF_INET6, ARES_SUCCESS, data, (int)size, &v6);
	dns_family_parse(AF_INET, ARES_SUCCESS, data, (int)size, &v4);
	if (v6.count > DNS_ADDR_MAX || v4.count > DNS_ADDR_MAX)
		abort();
	struct sockaddr_storage addrs[2 * DNS_ADDR_MAX];
	struct dns_addr_result r;
	dns_addr_merge(&v6, &v4, addrs, &r);
	if (r.count != v6.count + v4.count)
		abort();
	if ((r.status == DNS_OK) != (r.count > 0))
		abort();
	size_t both = v6.count < v4.count ? v6.count : v4.count;
	for (size_t i = 0; i < r.count; i++) {
		int want = i < 2 * both ? (i % 2 == 0 ? AF_INET6 : AF_INET) :
			(v6.count > v4.count ? AF_INET6 : AF_INET);
		if (r.addrs[i].ss_family != want)
			abort();
		char text[DNS_ADDRSTRLEN];
		dns_addr_text(&r.addrs[i], text);
	}

	/* dns_query()'s answers (dns_rr_parse): for each type, at most
	 * DNS_RR_MAX records, found means at least one, a malformed answer
	 * holds none; TXT is len bytes with a NUL after, names are lower case. */
	static const enum dns_rr_type types[] = { DNS_RR_TXT, DNS_RR_A, DNS_RR_AAAA, DNS_RR_MX,
						  DNS_RR_PTR };
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct dns_rr_set rs;
		dns_rr_parse("fuzz.example", types[t], ARES_SUCCESS, data, (int)size, &rs);
		if (rs.count > DNS_RR_MAX || (rs.status == DNS_OK) != (rs.count > 0))
			abort();
		if (rs.status != DNS_OK && rs.status != DNS_NODATA && rs.status != DNS_TEMPFAIL)
			abort();
		for (size_t i = 0; i < rs.count; i++) {
			const struct dns_rr *rr = &rs.rr[i];
			if (types[t] == DNS_RR_A || types[t] == DNS_RR_AAAA) {
				if (rr->text != NULL ||
				    rr->family != (types[t] == DNS_RR_A ? AF_INET : AF_INET6))
					abort();
				continue;
			}
			if (rr->text == NULL || rr->text[rr->len] != '\0')
				abort();
			if (types[t] != DNS_RR_TXT) {
				if (strlen(rr->text) != rr->len)
					abort();
				for (size_t k = 0; k < rr->len; k++)
					if (rr->text[k] >= 'A' && rr->text[k] <= 'Z')
						abort();
			}
		}
		dns_rr_set_free(&rs);
	}
	return 0;
}
