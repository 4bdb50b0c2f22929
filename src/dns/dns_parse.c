/* From c-ares answers to dns/ results: the MX rules of RFC 5321 5.1 and RFC
 * 7505, and the merging of A and AAAA. No sockets here, so the unit tests
 * and the fuzz target can feed it any bytes.
 *
 * The wire format itself is parsed by c-ares (ares_parse_mx_reply,
 * ares_parse_a_reply, ares_parse_aaaa_reply), which follows CNAME chains
 * for addresses and takes every MX record of the answer section for MX,
 * i.e. the records of the CNAME's target when a recursive resolver
 * returns the chain. What c-ares hands back is still untrusted text: an
 * exchanger name is checked here before it reaches the queue and the logs. */
#include "dns/dns_private.h"
#include "core/util.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool dns_status_permanent(enum dns_status status)
{
	return status != DNS_OK && status != DNS_TEMPFAIL;
}

const char *dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "ok";
	case DNS_NULL_MX:
		return "null-mx";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_BADNAME:
		return "badname";
	case DNS_TEMPFAIL:
		return "tempfail";
	}
	return "unknown";
}

enum dns_status dns_status_from_ares(int ares_status, const char **detail_r)
{
	const char *d;
	enum dns_status s = DNS_TEMPFAIL;
	switch (ares_status) {
	case ARES_SUCCESS:
		s = DNS_OK;
		d = "";
		break;
	case ARES_ENODATA:
		s = DNS_NODATA;
		d = "no such record";
		break;
	case ARES_ENOTFOUND:
		s = DNS_NXDOMAIN;
		d = "NXDOMAIN";
		break;
	case ARES_EBADNAME:
		s = DNS_BADNAME;
		d = "bad domain name";
		break;
	case ARES_ESERVFAIL:
		d = "SERVFAIL";
		break;
	case ARES_EREFUSED:
		d = "REFUSED";
		break;
	case ARES_ENOTIMP:
		d = "NOTIMP";
		break;
	case ARES_EFORMERR:
		d = "FORMERR";
		break;
	case ARES_ETIMEOUT:
		d = "timeout";
		break;
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 also ends here after SERVFAIL or REFUSED from every
		 * server (it tries the next one on those, ARES_FLAG_NOCHECKRESP unset). */
		d = "no server answered: SERVFAIL, REFUSED or unreachable";
		break;
	case ARES_EBADRESP:
		d = "malformed answer";
		break;
	case ARES_ENOMEM:
		d = "out of memory";
		break;
	default:
		d = "resolver error";
		break;
	}
	if (detail_r != NULL)
		*detail_r = d;
	return s;
}

int dns_name_normalize(const char *name, char out[DNS_NAME_MAX + 1])
{
	size_t len = strlen(name), label = 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (char)(c | 0x20);
			label++;
		} else {
			return -1;
		}
		if (label > 63)
			return -1;
		out[i] = c;
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

static uint32_t sodium_rnd(uint32_t n)
{
	return randombytes_uniform(n);
}

/* Stable by preference (answers are small: insertion sort), then each run
 * of equal preferences shuffled (Fisher-Yates). */
static void sort_and_shuffle(struct dns_mx *mx, size_t n, uint32_t (*rnd)(uint32_t))
{
	for (size_t i = 1; i < n; i++) {
		struct dns_mx t = mx[i];
		size_t j = i;
		for (; j > 0 && mx[j - 1].preference > t.preference; j--)
			mx[j] = mx[j - 1];
		mx[j] = t;
	}
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;
		while (end < n && mx[end].preference == mx[start].preference)
			end++;
		for (size_t i = end - 1; i > start; i--) {
			size_t k = start + rnd((uint32_t)(i - start + 1));
			struct dns_mx t = mx[i];
			mx[i] = mx[k];
			mx[k] = t;
		}
		start = end;
	}
}

static void set_implicit(const char *domain, struct dns_mx_set *set)
{
	set->status = DNS_OK;
	set->implicit = true;
	set->count = 1;
	set->mx = xcalloc(1, sizeof(*set->mx));
	set->mx[0].host = xstrdup(domain);
	set->mx[0].preference = 0;
	set->detail = "no MX: implicit MX";
}

void dns_mx_parse(const char *domain, int ares_status, const unsigned char *abuf,
		  int alen, uint32_t (*rnd)(uint32_t n), struct dns_mx_set *set)
{
	memset(set, 0, sizeof(*set));
	if (rnd == NULL)
		rnd = sodium_rnd;
	set->status = dns_status_from_ares(ares_status, &set->detail);
	if (set->status == DNS_NODATA) {
		/* RFC 5321 5.1: no MX at all means the domain itself. */
		set_implicit(domain, set);
		return;
	}
	if (set->status != DNS_OK)
		return;
	if (abuf == NULL || alen <= 0) {
		set->status = dns_status_from_ares(ARES_EBADRESP, &set->detail);
		return;
	}

	struct ares_mx_reply *head = NULL;
	int r = ares_parse_mx_reply(abuf, alen, &head);
	if (r == ARES_ENODATA || (r == ARES_SUCCESS && head == NULL)) {
		/* Only a CNAME (or other records) in the answer section. */
		if (head != NULL)
			ares_free_data(head);
		set_implicit(domain, set);
		return;
	}
	if (r != ARES_SUCCESS) {
		if (head != NULL)
			ares_free_data(head);
		set->status = dns_status_from_ares(r == ARES_ENOMEM ? r : ARES_EBADRESP,
						   &set->detail);
		return;
	}

	size_t total = 0, roots = 0, bad = 0, n = 0;
	for (struct ares_mx_reply *m = head; m != NULL; m = m->next) {
		total++;
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0)
			roots++;
	}
	/* RFC 7505 3: a domain with a null MX has that one record. Its
	 * preference should be 0; any preference is taken, since the root
	 * cannot be a host either way. */
	if (total == 1 && roots == 1) {
		ares_free_data(head);
		set->status = DNS_NULL_MX;
		set->detail = "null MX, RFC 7505";
		return;
	}
	set->mx = xcalloc(total, sizeof(*set->mx));
	for (struct ares_mx_reply *m = head; m != NULL; m = m->next) {
		char host[DNS_NAME_MAX + 1];
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0)
			continue;	/* a null MX among others: no host to try */
		if (dns_name_normalize(m->host, host) < 0) {
			bad++;
			continue;
		}
		set->mx[n].host = xstrdup(host);
		set->mx[n].preference = m->priority;
		n++;
	}
	ares_free_data(head);
	if (n == 0) {
		/* As Postfix does with malformed MX data: the domain's owner can
		 * fix it, so retry rather than bounce. */
		free(set->mx);
		set->mx = NULL;
		set->status = DNS_TEMPFAIL;
		set->detail = bad ? "no usable MX host name" : "null MX among other MX records";
		return;
	}
	sort_and_shuffle(set->mx, n, rnd);
	if (n > DNS_MX_MAX) {
		for (size_t i = DNS_MX_MAX; i < n; i++)
			free(set->mx[i].host);
		n = DNS_MX_MAX;
	}
	set->count = n;
	set->detail = "";
}

void dns_mx_set_free(struct dns_mx_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->mx[i].host);
	free(set->mx);
	set->mx = NULL;
	set->count = 0;
}

void dns_family_parse(int family, int ares_status, const unsigned char *abuf, int alen,
		      struct dns_family *fam)
{
	memset(fam, 0, sizeof(*fam));
	fam->ares_status = ares_status;
	if (ares_status != ARES_SUCCESS)
		return;
	if (abuf == NULL || alen <= 0) {
		fam->ares_status = ARES_EBADRESP;
		return;
	}
	int n = DNS_ADDR_MAX, r;
	if (family == AF_INET6) {
		struct ares_addr6ttl ttls[DNS_ADDR_MAX];
		r = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n);
		for (int i = 0; r == ARES_SUCCESS && i < n && i < DNS_ADDR_MAX; i++) {
			struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&fam->addrs[fam->count++];
			sa->sin6_family = AF_INET6;
			memcpy(&sa->sin6_addr, &ttls[i].ip6addr, sizeof(sa->sin6_addr));
		}
	} else {
		struct ares_addrttl ttls[DNS_ADDR_MAX];
		r = ares_parse_a_reply(abuf, alen, NULL, ttls, &n);
		for (int i = 0; r == ARES_SUCCESS && i < n && i < DNS_ADDR_MAX; i++) {
			struct sockaddr_in *sa = (struct sockaddr_in *)&fam->addrs[fam->count++];
			sa->sin_family = AF_INET;
			memcpy(&sa->sin_addr, &ttls[i].ipaddr, sizeof(sa->sin_addr));
		}
	}
	if (r == ARES_SUCCESS && fam->count == 0)
		r = ARES_ENODATA;
	fam->ares_status = r == ARES_SUCCESS || r == ARES_ENODATA || r == ARES_ENOMEM ?
		r : ARES_EBADRESP;
}

void dns_addr_merge(const struct dns_family *v6, const struct dns_family *v4,
		    struct sockaddr_storage *addrs, struct dns_addr_result *res)
{
	const char *d6, *d4;
	enum dns_status s6 = dns_status_from_ares(v6->ares_status, &d6);
	enum dns_status s4 = dns_status_from_ares(v4->ares_status, &d4);
	size_t n = 0;
	for (size_t i = 0; i < v6->count || i < v4->count; i++) {
		if (i < v6->count)
			addrs[n++] = v6->addrs[i];
		if (i < v4->count)
			addrs[n++] = v4->addrs[i];
	}
	res->addrs = addrs;
	res->count = n;
	res->partial = false;
	if (n > 0) {
		res->status = DNS_OK;
		res->partial = s6 == DNS_TEMPFAIL || s4 == DNS_TEMPFAIL;
		res->detail = s6 == DNS_TEMPFAIL ? d6 : s4 == DNS_TEMPFAIL ? d4 : "";
	} else if (s6 == DNS_TEMPFAIL || s4 == DNS_TEMPFAIL) {
		/* One family unanswered: its addresses may exist. */
		res->status = DNS_TEMPFAIL;
		res->detail = s6 == DNS_TEMPFAIL ? d6 : d4;
	} else if (s6 == DNS_BADNAME || s4 == DNS_BADNAME) {
		res->status = DNS_BADNAME;
		res->detail = s6 == DNS_BADNAME ? d6 : d4;
	} else if (s6 == DNS_NXDOMAIN || s4 == DNS_NXDOMAIN) {
		res->status = DNS_NXDOMAIN;
		res->detail = "NXDOMAIN";
	} else {
		res->status = DNS_NODATA;
		res->detail = "no A nor AAAA record";
	}
}

const char *dns_addr_text(const struct sockaddr_storage *addr, char *buf)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port = 0;
	if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)addr;
		inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof(ip));
		port = ntohs(sa->sin6_port);
		if (port != 0)
			snprintf(buf, DNS_ADDRSTRLEN, "[%s]:%u", ip, port);
		else
			snprintf(buf, DNS_ADDRSTRLEN, "%s", ip);
	} else if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *sa = (const struct sockaddr_in *)addr;
		inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
		port = ntohs(sa->sin_port);
		if (port != 0)
			snprintf(buf, DNS_ADDRSTRLEN, "%s:%u", ip, port);
		else
			snprintf(buf, DNS_ADDRSTRLEN, "%s", ip);
	} else {
		snprintf(buf, DNS_ADDRSTRLEN, "(family %d)", (int)addr->ss_family);
	}
	return buf;
}

/* ---- raw queries (mail authentication) ---- */

int dns_qname_normalize(const char *name, char out[DNS_NAME_MAX + 1])
{
	size_t len = strlen(name), label = 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (c >= ' ' && c < 0x7f && c != '\\') {
			/* c-ares reads a backslash as an escape: refused, as are
			 * controls and 8-bit bytes (RFC 7208 4.3 domains are ASCII
			 * after the A-label conversion). A space is a byte like
			 * another in a label (SPF's "%_" macro makes them). */
			if (c >= 'A' && c <= 'Z')
				c = (unsigned char)(c | 0x20);
			label++;
		} else {
			return -1;
		}
		if (label > 63)
			return -1;
		out[i] = (char)c;
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* One resource record of the answer section, its owner expanded. */
struct wire_rr {
	char *owner;		/* ares_malloc'd, lower case, no final dot */
	unsigned type;
	const unsigned char *rdata;
	size_t rdlen;
};

/* ares_expand_name() writes no final dot (a dot at the end is an escaped
 * one, part of a label): only the case is folded. */
static void lower_nodot(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s | 0x20);
}

/* Reads the RR at *pos; returns 0 or -1 (malformed). */
static int wire_rr_read(const unsigned char *abuf, int alen, size_t *pos, struct wire_rr *rr)
{
	char *owner = NULL;
	long enclen = 0;
	if (*pos >= (size_t)alen ||
	    ares_expand_name(abuf + *pos, abuf, alen, &owner, &enclen) != ARES_SUCCESS)
		return -1;
	size_t p = *pos + (size_t)enclen;
	if (p + 10 > (size_t)alen) {
		ares_free_string(owner);
		return -1;
	}
	rr->type = get16(abuf + p);
	rr->rdlen = get16(abuf + p + 8);
	p += 10;
	if (p + rr->rdlen > (size_t)alen) {
		ares_free_string(owner);
		return -1;
	}
	rr->rdata = abuf + p;
	lower_nodot(owner);
	rr->owner = owner;
	*pos = p + rr->rdlen;
	return 0;
}

/* The name at rdata (possibly compressed, so relative to abuf). */
static char *rdata_name(const unsigned char *abuf, int alen, const unsigned char *at,
			const struct wire_rr *rr)
{
	char *name = NULL;
	long enclen = 0;
	if (at >= rr->rdata + rr->rdlen ||
	    ares_expand_name(at, abuf, alen, &name, &enclen) != ARES_SUCCESS)
		return NULL;
	if (at + enclen > rr->rdata + rr->rdlen) {
		ares_free_string(name);
		return NULL;
	}
	lower_nodot(name);
	return name;
}

/* Adds rr's data to the set; -1 if it is malformed. */
static int rr_add(const unsigned char *abuf, int alen, enum dns_rr_type type,
		  const struct wire_rr *rr, struct dns_rr_set *set)
{
	if (set->count >= DNS_RR_MAX) {
		set->truncated = true;
		return 0;
	}
	struct dns_rr *out = &set->rr[set->count];
	memset(out, 0, sizeof(*out));
	switch (type) {
	case DNS_RR_A:
		if (rr->rdlen != 4)
			return -1;
		out->family = AF_INET;
		memcpy(&out->addr.v4, rr->rdata, 4);
		break;
	case DNS_RR_AAAA:
		if (rr->rdlen != 16)
			return -1;
		out->family = AF_INET6;
		memcpy(&out->addr.v6, rr->rdata, 16);
		break;
	case DNS_RR_TXT: {
		/* RFC 1035 3.3.14: one or more <character-string>s. */
		char *text = xmalloc(rr->rdlen + 1);
		size_t n = 0;
		for (size_t i = 0; i < rr->rdlen;) {
			size_t l = rr->rdata[i++];
			if (i + l > rr->rdlen) {
				free(text);
				return -1;
			}
			memcpy(text + n, rr->rdata + i, l);
			n += l;
			i += l;
		}
		text[n] = '\0';
		out->text = text;
		out->len = n;
		break;
	}
	case DNS_RR_MX:
	case DNS_RR_PTR: {
		const unsigned char *at = rr->rdata;
		if (type == DNS_RR_MX) {
			if (rr->rdlen < 3)
				return -1;
			out->preference = get16(at);
			at += 2;
		}
		char *name = rdata_name(abuf, alen, at, rr);
		if (name == NULL)
			return -1;
		out->text = xstrdup(name);
		out->len = strlen(name);
		ares_free_string(name);
		break;
	}
	}
	set->count++;
	return 0;
}

void dns_rr_parse(const char *name, enum dns_rr_type type, int ares_status,
		  const unsigned char *abuf, int alen, struct dns_rr_set *set)
{
	memset(set, 0, sizeof(*set));
	set->status = dns_status_from_ares(ares_status, &set->detail);
	if (set->status != DNS_OK)
		return;
	if (abuf == NULL || alen < 12)
		goto malformed;
	unsigned qdcount = get16(abuf + 4), ancount = get16(abuf + 6);
	size_t pos = 12;
	for (unsigned i = 0; i < qdcount; i++) {
		char *q = NULL;
		long enclen = 0;
		if (pos >= (size_t)alen ||
		    ares_expand_name(abuf + pos, abuf, alen, &q, &enclen) != ARES_SUCCESS)
			goto malformed;
		ares_free_string(q);
		pos += (size_t)enclen + 4;
		if (pos > (size_t)alen)
			goto malformed;
	}
	size_t answers = pos;

	/* Follow the chain: a resolver lists it in order, but nothing says
	 * it must, so each hop rescans the section. */
	char current[DNS_NAME_MAX + 1];
	snprintf(current, sizeof(current), "%s", name);
	for (unsigned hop = 0; hop <= DNS_CNAME_HOPS; hop++) {
		bool moved = false;
		pos = answers;
		for (unsigned i = 0; i < ancount && !moved; i++) {
			struct wire_rr rr;
			if (wire_rr_read(abuf, alen, &pos, &rr) < 0)
				goto malformed;
			if (rr.type == 5 /* CNAME */ && strcmp(rr.owner, current) == 0) {
				char *target = rdata_name(abuf, alen, rr.rdata, &rr);
				if (target == NULL || strlen(target) > DNS_NAME_MAX) {
					if (target != NULL)
						ares_free_string(target);
					ares_free_string(rr.owner);
					goto malformed;
				}
				snprintf(current, sizeof(current), "%s", target);
				ares_free_string(target);
				moved = true;
			}
			ares_free_string(rr.owner);
		}
		if (!moved)
			break;
	}
	pos = answers;
	for (unsigned i = 0; i < ancount; i++) {
		struct wire_rr rr;
		if (wire_rr_read(abuf, alen, &pos, &rr) < 0)
			goto malformed;
		int r = 0;
		if (rr.type == (unsigned)type && strcmp(rr.owner, current) == 0)
			r = rr_add(abuf, alen, type, &rr, set);
		ares_free_string(rr.owner);
		if (r < 0)
			goto malformed;
	}
	if (set->count == 0) {
		set->status = DNS_NODATA;
		set->detail = "no such record";
	}
	return;
malformed:
	dns_rr_set_free(set);
	set->status = dns_status_from_ares(ARES_EBADRESP, &set->detail);
}

void dns_rr_set_free(struct dns_rr_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free((char *)set->rr[i].text);
	set->count = 0;
	set->truncated = false;
}
