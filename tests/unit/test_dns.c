/* dns/: the MX rules and address merging on crafted answers (no network),
 * the [dns] servers syntax, and the resolver in a real event loop against
 * a scripted DNS server on 127.0.0.1: callbacks never run inside the call
 * that started the lookup, a cancelled lookup never calls back, a thread
 * can end with lookups in flight, timeouts are temporary. Run under ASan,
 * the cancel cases also prove nothing is leaked or used after free. */
#include "test.h"
#include "config/config.h"
#include "core/loop.h"
#include "core/util.h"
#include "dns/dns.h"
#include "dns/dns_private.h"
#include "mailauth/ma_resolve.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a DNS message writer, just enough for answers ---- */

struct msg {
	unsigned char b[4096];
	size_t len;
	unsigned ancount;
};

static void put8(struct msg *m, unsigned v)
{
	m->b[m->len++] = (unsigned char)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* "a.b" as labels; "" or "." is the root. */
static void put_name(struct msg *m, const char *name)
{
	while (*name && strcmp(name, ".") != 0) {
		size_t n = strcspn(name, ".");
		put8(m, (unsigned)n);
		memcpy(m->b + m->len, name, n);
		m->len += n;
		name += n;
		if (*name == '.')
			name++;
	}
	put8(m, 0);
}

/* Header and question for qname/qtype with rcode; answers follow. */
static void msg_start(struct msg *m, unsigned id, const char *qname, unsigned qtype,
		      unsigned rcode)
{
	memset(m, 0, sizeof(*m));
	put16(m, id);
	put16(m, 0x8180 | rcode);	/* QR, RD, RA */
	put16(m, 1);
	put16(m, 0);		/* ancount, patched by msg_end */
	put16(m, 0);
	put16(m, 0);
	put_name(m, qname);
	put16(m, qtype);
	put16(m, ns_c_in);
}

/* An answer owned by the question's name (pointer 0xc00c) or by owner. */
static size_t rr_start(struct msg *m, const char *owner, unsigned type)
{
	if (owner == NULL)
		put16(m, 0xc00c);
	else
		put_name(m, owner);
	put16(m, type);
	put16(m, ns_c_in);
	put32(m, 300);
	put16(m, 0);		/* rdlength, patched by rr_end */
	m->ancount++;
	return m->len;
}

static void rr_end(struct msg *m, size_t rdata)
{
	size_t n = m->len - rdata;
	m->b[rdata - 2] = (unsigned char)(n >> 8);
	m->b[rdata - 1] = (unsigned char)(n & 0xff);
}

static void add_mx(struct msg *m, const char *owner, unsigned pref, const char *host)
{
	size_t r = rr_start(m, owner, ns_t_mx);
	put16(m, pref);
	put_name(m, host);
	rr_end(m, r);
}

static void add_cname(struct msg *m, const char *owner, const char *target)
{
	size_t r = rr_start(m, owner, ns_t_cname);
	put_name(m, target);
	rr_end(m, r);
}

static void add_addr(struct msg *m, const char *owner, const char *text)
{
	unsigned char a[16];
	bool v6 = strchr(text, ':') != NULL;
	inet_pton(v6 ? AF_INET6 : AF_INET, text, a);
	size_t r = rr_start(m, owner, v6 ? ns_t_aaaa : ns_t_a);
	memcpy(m->b + m->len, a, v6 ? 16 : 4);
	m->len += v6 ? 16 : 4;
	rr_end(m, r);
}

/* A TXT record of the given character-strings (NULL-terminated list). */
static void add_txt(struct msg *m, const char *owner, const char *const *strings)
{
	size_t r = rr_start(m, owner, ns_t_txt);
	for (; *strings != NULL; strings++) {
		size_t n = strlen(*strings);
		put8(m, (unsigned)n);
		memcpy(m->b + m->len, *strings, n);
		m->len += n;
	}
	rr_end(m, r);
}

static void add_ptr(struct msg *m, const char *owner, const char *host)
{
	size_t r = rr_start(m, owner, ns_t_ptr);
	put_name(m, host);
	rr_end(m, r);
}

static void msg_end(struct msg *m)
{
	m->b[6] = (unsigned char)(m->ancount >> 8);
	m->b[7] = (unsigned char)(m->ancount & 0xff);
}

/* ---- the MX rules on crafted answers ---- */

static uint32_t rnd_zero(uint32_t n)
{
	return 0;
}

static uint32_t rnd_libc(uint32_t n)
{
	return (uint32_t)rand() % n;
}

static void test_mx_order(void)
{
	struct msg m;
	msg_start(&m, 1, "example.com", ns_t_mx, 0);
	add_mx(&m, NULL, 30, "c.example.com");
	add_mx(&m, NULL, 10, "A1.Example.COM.");
	add_mx(&m, NULL, 20, "b.example.com");
	add_mx(&m, NULL, 10, "a2.example.com");
	msg_end(&m);
	struct dns_mx_set set;
	dns_mx_parse("example.com", ARES_SUCCESS, m.b, (int)m.len, rnd_zero, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK(!set.implicit);
	CHECK_INT(set.count, 4);
	if (set.count == 4) {
		CHECK_INT(set.mx[0].preference, 10);
		CHECK_INT(set.mx[1].preference, 10);
		CHECK_STR(set.mx[2].host, "b.example.com");
		CHECK_STR(set.mx[3].host, "c.example.com");
		/* lower case, no final dot */
		CHECK(strcmp(set.mx[0].host, "a1.example.com") == 0 ||
		      strcmp(set.mx[1].host, "a1.example.com") == 0);
	}
	dns_mx_set_free(&set);

	/* Equal preferences: every order shows up; unequal ones never move. */
	int first_a1 = 0, first_a2 = 0;
	for (int i = 0; i < 200; i++) {
		dns_mx_parse("example.com", ARES_SUCCESS, m.b, (int)m.len, rnd_libc, &set);
		CHECK_INT(set.count, 4);
		if (set.count == 4) {
			first_a1 += strcmp(set.mx[0].host, "a1.example.com") == 0;
			first_a2 += strcmp(set.mx[0].host, "a2.example.com") == 0;
			CHECK_STR(set.mx[2].host, "b.example.com");
		}
		dns_mx_set_free(&set);
	}
	CHECK(first_a1 > 20 && first_a2 > 20 && first_a1 + first_a2 == 200);
}

static void test_mx_special(void)
{
	struct msg m;
	struct dns_mx_set set;

	/* RFC 7505 null MX */
	msg_start(&m, 1, "nullmx.example", ns_t_mx, 0);
	add_mx(&m, NULL, 0, ".");
	msg_end(&m);
	dns_mx_parse("nullmx.example", ARES_SUCCESS, m.b, (int)m.len, NULL, &set);
	CHECK_INT(set.status, DNS_NULL_MX);
	CHECK(dns_status_permanent(set.status));
	CHECK_INT(set.count, 0);
	dns_mx_set_free(&set);

	/* a null MX among real ones is skipped */
	msg_start(&m, 1, "mixed.example", ns_t_mx, 0);
	add_mx(&m, NULL, 0, ".");
	add_mx(&m, NULL, 10, "mx.mixed.example");
	msg_end(&m);
	dns_mx_parse("mixed.example", ARES_SUCCESS, m.b, (int)m.len, NULL, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK_INT(set.count, 1);
	if (set.count == 1)
		CHECK_STR(set.mx[0].host, "mx.mixed.example");
	dns_mx_set_free(&set);

	/* NODATA: the implicit MX */
	dns_mx_parse("nomx.example", ARES_ENODATA, NULL, 0, NULL, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK(set.implicit);
	CHECK_INT(set.count, 1);
	if (set.count == 1) {
		CHECK_STR(set.mx[0].host, "nomx.example");
		CHECK_INT(set.mx[0].preference, 0);
	}
	dns_mx_set_free(&set);

	/* a CNAME and no MX at its target: implicit too */
	msg_start(&m, 1, "alias.example", ns_t_mx, 0);
	add_cname(&m, NULL, "target.example");
	msg_end(&m);
	dns_mx_parse("alias.example", ARES_SUCCESS, m.b, (int)m.len, NULL, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK(set.implicit);
	dns_mx_set_free(&set);

	/* a CNAME and the target's MX, as a recursive resolver answers */
	msg_start(&m, 1, "alias.example", ns_t_mx, 0);
	add_cname(&m, NULL, "target.example");
	add_mx(&m, "target.example", 5, "mx.target.example");
	msg_end(&m);
	dns_mx_parse("alias.example", ARES_SUCCESS, m.b, (int)m.len, NULL, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK(!set.implicit);
	CHECK_INT(set.count, 1);
	if (set.count == 1)
		CHECK_STR(set.mx[0].host, "mx.target.example");
	dns_mx_set_free(&set);

	/* exchanger names that are not host names: dropped; none left: retry */
	msg_start(&m, 1, "bad.example", ns_t_mx, 0);
	add_mx(&m, NULL, 10, "bad host.example");
	add_mx(&m, NULL, 20, "x\x01y.example");
	msg_end(&m);
	dns_mx_parse("bad.example", ARES_SUCCESS, m.b, (int)m.len, NULL, &set);
	CHECK_INT(set.status, DNS_TEMPFAIL);
	CHECK_INT(set.count, 0);
	dns_mx_set_free(&set);

	/* statuses */
	dns_mx_parse("x.example", ARES_ENOTFOUND, NULL, 0, NULL, &set);
	CHECK_INT(set.status, DNS_NXDOMAIN);
	CHECK(dns_status_permanent(set.status));
	dns_mx_set_free(&set);
	int temp[] = { ARES_ESERVFAIL, ARES_ETIMEOUT, ARES_EREFUSED, ARES_ECONNREFUSED,
		       ARES_EBADRESP, ARES_EFORMERR };
	for (size_t i = 0; i < ARRAY_SIZE(temp); i++) {
		dns_mx_parse("x.example", temp[i], NULL, 0, NULL, &set);
		CHECK_INT(set.status, DNS_TEMPFAIL);
		CHECK(!dns_status_permanent(set.status));
		CHECK(set.detail != NULL && set.detail[0] != '\0');
		dns_mx_set_free(&set);
	}

	/* garbage and truncated answers: temporary, never a crash */
	msg_start(&m, 1, "example.com", ns_t_mx, 0);
	add_mx(&m, NULL, 10, "mx.example.com");
	msg_end(&m);
	for (size_t n = 0; n < m.len; n++) {
		dns_mx_parse("example.com", ARES_SUCCESS, m.b, (int)n, NULL, &set);
		CHECK(set.status == DNS_TEMPFAIL || set.status == DNS_OK);
		dns_mx_set_free(&set);
	}
}

static void test_addr_merge(void)
{
	struct msg m6, m4;
	msg_start(&m6, 1, "h.example", ns_t_aaaa, 0);
	add_addr(&m6, NULL, "2001:db8::1");
	add_addr(&m6, NULL, "2001:db8::2");
	add_addr(&m6, NULL, "2001:db8::3");
	msg_end(&m6);
	msg_start(&m4, 1, "h.example", ns_t_a, 0);
	add_addr(&m4, NULL, "192.0.2.1");
	msg_end(&m4);

	struct dns_family v6, v4;
	struct sockaddr_storage addrs[2 * DNS_ADDR_MAX];
	struct dns_addr_result r;
	char t[DNS_ADDRSTRLEN];
	dns_family_parse(AF_INET6, ARES_SUCCESS, m6.b, (int)m6.len, &v6);
	dns_family_parse(AF_INET, ARES_SUCCESS, m4.b, (int)m4.len, &v4);
	dns_addr_merge(&v6, &v4, addrs, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.count, 4);
	CHECK(!r.partial);
	/* interleaved, IPv6 first */
	CHECK_STR(dns_addr_text(&r.addrs[0], t), "2001:db8::1");
	CHECK_STR(dns_addr_text(&r.addrs[1], t), "192.0.2.1");
	CHECK_STR(dns_addr_text(&r.addrs[2], t), "2001:db8::2");
	CHECK_STR(dns_addr_text(&r.addrs[3], t), "2001:db8::3");
	((struct sockaddr_in *)&addrs[1])->sin_port = htons(25);
	CHECK_STR(dns_addr_text(&r.addrs[1], t), "192.0.2.1:25");
	((struct sockaddr_in6 *)&addrs[0])->sin6_port = htons(25);
	CHECK_STR(dns_addr_text(&r.addrs[0], t), "[2001:db8::1]:25");

	/* one family timed out, the other answered: found, partial */
	dns_family_parse(AF_INET6, ARES_ETIMEOUT, NULL, 0, &v6);
	dns_addr_merge(&v6, &v4, addrs, &r);
	CHECK_INT(r.status, DNS_OK);
	CHECK_INT(r.count, 1);
	CHECK(r.partial);

	/* one timed out, the other has nothing: temporary */
	dns_family_parse(AF_INET, ARES_ENODATA, NULL, 0, &v4);
	dns_addr_merge(&v6, &v4, addrs, &r);
	CHECK_INT(r.status, DNS_TEMPFAIL);

	/* nothing in either: permanent */
	dns_family_parse(AF_INET6, ARES_ENODATA, NULL, 0, &v6);
	dns_addr_merge(&v6, &v4, addrs, &r);
	CHECK_INT(r.status, DNS_NODATA);
	CHECK(dns_status_permanent(r.status));
	dns_family_parse(AF_INET6, ARES_ENOTFOUND, NULL, 0, &v6);
	dns_family_parse(AF_INET, ARES_ENOTFOUND, NULL, 0, &v4);
	dns_addr_merge(&v6, &v4, addrs, &r);
	CHECK_INT(r.status, DNS_NXDOMAIN);

	/* an answer of the other family's type only: no address */
	dns_family_parse(AF_INET, ARES_SUCCESS, m6.b, (int)m6.len, &v4);
	CHECK_INT(v4.count, 0);
	CHECK_INT(v4.ares_status, ARES_ENODATA);
}

/* dns_query(): the answer section read for the mail-authentication
 * checks. RFC 1035 3.3.14 (TXT strings, joined for RFC 7208 3.3), the
 * CNAME chain of RFC 1034 3.6.2, NXDOMAIN apart from NODATA (RFC 2308). */
static void test_rfc1035_rr_parse(void)
{
	struct msg m;
	struct dns_rr_set set;

	/* TXT: the strings of one record joined with nothing between; two
	 * records stay two; an empty record is a record. */
	msg_start(&m, 1, "example.com", ns_t_txt, 0);
	add_txt(&m, NULL, (const char *const[]){ "v=spf1 ip4:192.0.2.1", " -all", NULL });
	add_txt(&m, NULL, (const char *const[]){ "other", NULL });
	add_txt(&m, NULL, (const char *const[]){ "", NULL });
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_TXT, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK_INT(set.count, 3);
	if (set.count == 3) {
		CHECK_STR(set.rr[0].text, "v=spf1 ip4:192.0.2.1 -all");
		CHECK_INT(set.rr[0].len, 25);
		CHECK_STR(set.rr[1].text, "other");
		CHECK_INT(set.rr[2].len, 0);
	}
	dns_rr_set_free(&set);

	/* A chain: example.com -> a.example.net -> b.example.org; only the
	 * end's records count, records of other owners are ignored, and
	 * the chain may come in any order. */
	msg_start(&m, 2, "example.com", ns_t_a, 0);
	add_addr(&m, "other.example", "192.0.2.99");
	add_cname(&m, "a.example.net", "B.Example.ORG.");
	add_addr(&m, "b.example.org", "192.0.2.5");
	add_cname(&m, NULL, "a.example.net");
	add_addr(&m, "b.example.org", "2001:db8::5");	/* AAAA in an A answer */
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_A, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.status, DNS_OK);
	CHECK_INT(set.count, 1);
	if (set.count == 1) {
		char t[INET6_ADDRSTRLEN];
		CHECK_INT(set.rr[0].family, AF_INET);
		CHECK_STR(inet_ntop(AF_INET, &set.rr[0].addr.v4, t, sizeof(t)), "192.0.2.5");
	}
	dns_rr_set_free(&set);

	/* A chain whose end has no record of the type: NODATA. */
	msg_start(&m, 3, "example.com", ns_t_txt, 0);
	add_cname(&m, NULL, "a.example.net");
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_TXT, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.status, DNS_NODATA);
	CHECK_INT(set.count, 0);
	dns_rr_set_free(&set);

	/* A CNAME loop ends (NODATA), it does not spin. */
	msg_start(&m, 4, "example.com", ns_t_txt, 0);
	add_cname(&m, NULL, "loop.example");
	add_cname(&m, "loop.example", "example.com");
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_TXT, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.status, DNS_NODATA);
	dns_rr_set_free(&set);

	/* MX and PTR: host names lower case without the final dot, in the
	 * answer's order; AAAA. */
	msg_start(&m, 5, "example.com", ns_t_mx, 0);
	add_mx(&m, NULL, 20, "MX2.example.com.");
	add_mx(&m, NULL, 10, "mx1.example.com");
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_MX, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.count, 2);
	if (set.count == 2) {
		CHECK_STR(set.rr[0].text, "mx2.example.com");
		CHECK_INT(set.rr[0].preference, 20);
		CHECK_STR(set.rr[1].text, "mx1.example.com");
	}
	dns_rr_set_free(&set);
	msg_start(&m, 6, "4.2.0.192.in-addr.arpa", ns_t_ptr, 0);
	add_ptr(&m, NULL, "Host.Example.com");
	msg_end(&m);
	dns_rr_parse("4.2.0.192.in-addr.arpa", DNS_RR_PTR, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.count, 1);
	if (set.count == 1)
		CHECK_STR(set.rr[0].text, "host.example.com");
	dns_rr_set_free(&set);
	msg_start(&m, 7, "example.com", ns_t_aaaa, 0);
	add_addr(&m, NULL, "2001:db8::1");
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_AAAA, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.count, 1);
	if (set.count == 1)
		CHECK_INT(set.rr[0].family, AF_INET6);
	dns_rr_set_free(&set);

	/* More than DNS_RR_MAX records: the first ones, flagged. */
	msg_start(&m, 8, "example.com", ns_t_a, 0);
	for (int i = 0; i < DNS_RR_MAX + 3; i++) {
		char a[32];
		snprintf(a, sizeof(a), "192.0.2.%d", i);
		add_addr(&m, NULL, a);
	}
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_A, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.count, DNS_RR_MAX);
	CHECK(set.truncated);
	dns_rr_set_free(&set);

	/* A TXT string running past its record: malformed, temporary. */
	msg_start(&m, 9, "example.com", ns_t_txt, 0);
	size_t r = rr_start(&m, NULL, ns_t_txt);
	put8(&m, 10);
	put8(&m, 'x');
	rr_end(&m, r);
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_TXT, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.status, DNS_TEMPFAIL);
	CHECK_INT(set.count, 0);
	dns_rr_set_free(&set);
	/* An A record of 3 bytes; a message cut short. */
	msg_start(&m, 10, "example.com", ns_t_a, 0);
	r = rr_start(&m, NULL, ns_t_a);
	put8(&m, 1), put8(&m, 2), put8(&m, 3);
	rr_end(&m, r);
	msg_end(&m);
	dns_rr_parse("example.com", DNS_RR_A, ARES_SUCCESS, m.b, (int)m.len, &set);
	CHECK_INT(set.status, DNS_TEMPFAIL);
	dns_rr_parse("example.com", DNS_RR_A, ARES_SUCCESS, m.b, (int)m.len - 2, &set);
	CHECK_INT(set.status, DNS_TEMPFAIL);
	dns_rr_parse("example.com", DNS_RR_A, ARES_SUCCESS, m.b, 5, &set);
	CHECK_INT(set.status, DNS_TEMPFAIL);

	/* The status c-ares gives: NXDOMAIN and NODATA apart. */
	dns_rr_parse("example.com", DNS_RR_A, ARES_ENOTFOUND, NULL, 0, &set);
	CHECK_INT(set.status, DNS_NXDOMAIN);
	dns_rr_parse("example.com", DNS_RR_A, ARES_ENODATA, NULL, 0, &set);
	CHECK_INT(set.status, DNS_NODATA);
	dns_rr_parse("example.com", DNS_RR_A, ARES_ESERVFAIL, NULL, 0, &set);
	CHECK_INT(set.status, DNS_TEMPFAIL);

	/* Names dns_query() asks: SPF's macros make odd but valid labels. */
	char out[DNS_NAME_MAX + 1];
	CHECK_INT(dns_qname_normalize("Macro%Percent  Space.Example.COM.", out), 0);
	CHECK_STR(out, "macro%percent  space.example.com");
	CHECK_INT(dns_qname_normalize("a..b", out), -1);
	CHECK_INT(dns_qname_normalize("a\\.b", out), -1);
	CHECK_INT(dns_qname_normalize("a\tb.c", out), -1);
	CHECK_INT(dns_qname_normalize("\xc3\xa9.example", out), -1);
	char label[70];
	memset(label, 'a', 64);
	label[64] = '\0';
	CHECK_INT(dns_qname_normalize(label, out), -1);
	label[63] = '\0';
	CHECK_INT(dns_qname_normalize(label, out), 0);
}

static void test_names_and_servers(void)
{
	char out[DNS_NAME_MAX + 1];
	CHECK_INT(dns_name_normalize("Example.COM.", out), 0);
	CHECK_STR(out, "example.com");
	CHECK_INT(dns_name_normalize("_dmarc.x-y.example", out), 0);
	const char *bad[] = { "", ".", "a..b", ".a", "a b", "a\xc3\xa9.example", "a/b",
			      "a.b..", NULL };
	for (size_t i = 0; bad[i] != NULL; i++)
		CHECK_INT(dns_name_normalize(bad[i], out), -1);
	char label[80];
	memset(label, 'a', 64);
	label[64] = '\0';
	CHECK_INT(dns_name_normalize(label, out), -1);
	label[63] = '\0';
	CHECK_INT(dns_name_normalize(label, out), 0);
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	for (size_t i = 50; i < sizeof(longname); i += 50)
		longname[i] = '.';
	longname[254] = '\0';
	CHECK_INT(dns_name_normalize(longname, out), -1);
	longname[253] = '\0';
	CHECK_INT(dns_name_normalize(longname, out), 0);

	char *csv = NULL, *err = NULL;
	CHECK_INT(dns_servers_append(&csv, "192.0.2.53", &err), 0);
	CHECK_INT(dns_servers_append(&csv, "127.0.0.1:5353", &err), 0);
	CHECK_INT(dns_servers_append(&csv, "[2001:DB8::53]:54", &err), 0);
	CHECK_INT(dns_servers_append(&csv, "::1", &err), 0);
	CHECK_INT(dns_servers_append(&csv, "[::1]", &err), 0);
	CHECK_STR(csv, "192.0.2.53:53,127.0.0.1:5353,[2001:db8::53]:54,[::1]:53,[::1]:53");
	const char *bad_servers[] = { "dns.example", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:",
				      "[::1", "[::1]x", "[1.2.3.4]:53", "1.2.3:53", "", NULL };
	for (size_t i = 0; bad_servers[i] != NULL; i++) {
		CHECK_INT(dns_servers_append(&csv, bad_servers[i], &err), -1);
		CHECK(err != NULL);
		xfree(&err);
	}
	free(csv);
	csv = NULL;
	for (int i = 0; i < DNS_SERVERS_MAX; i++)
		CHECK_INT(dns_servers_append(&csv, "127.0.0.1", &err), 0);
	CHECK_INT(dns_servers_append(&csv, "127.0.0.1", &err), -1);
	xfree(&err);
	free(csv);
}

/* [dns] in the config file: servers on one line or several, defaults. */
static void test_config_section(void)
{
	static const char base[] = "[server]\nhostname = mx.test.example\ndata_dir = /tmp\n";
	struct config *cfg = NULL;
	char *err = NULL;
	CHECK_INT(config_load_string(base, strlen(base), "/tmp/t.conf", &cfg, &err), 0);
	if (cfg != NULL) {
		CHECK(cfg->dns_servers == NULL);
		CHECK_INT(cfg->dns_timeout, 5);
		CHECK_INT(cfg->dns_attempts, 2);
		config_free(&cfg);
	}
	free(err);
	err = NULL;

	char *text = xasprintf("%s[dns]\nservers = 127.0.0.1 [::1]:5353\n"
			       "servers = 192.0.2.1:54\ntimeout = 3s\nattempts = 1\n", base);
	CHECK_INT(config_load_string(text, strlen(text), "/tmp/t.conf", &cfg, &err), 0);
	if (cfg != NULL) {
		CHECK_STR(cfg->dns_servers, "127.0.0.1:53,[::1]:5353,192.0.2.1:54");
		CHECK_INT(cfg->dns_timeout, 3);
		CHECK_INT(cfg->dns_attempts, 1);
		config_free(&cfg);
	}
	free(err);
	free(text);

	const char *bad[] = { "servers = dns.example\n", "servers = 127.0.0.1:99999\n",
			      "timeout = 0\n", "attempts = 11\n", "servers =\n",
			      "listen = 127.0.0.1:53\n", NULL };
	for (size_t i = 0; bad[i] != NULL; i++) {
		err = NULL;
		text = xasprintf("%s[dns]\n%s", base, bad[i]);
		CHECK_INT(config_load_string(text, strlen(text), "/tmp/t.conf", &cfg, &err), -1);
		CHECK(err != NULL && strstr(err, "[dns]") != NULL && strstr(err, ":5:") != NULL);
		free(err);
		free(text);
	}
}

/* ---- the resolver in a loop, against a scripted server ---- */

struct fake {
	int fd;
	struct event *ev;
	int queries;
	char servers[64];
};

/* The name in a query at off, dotted, into out. */
static size_t read_qname(const unsigned char *q, size_t len, size_t off, char *out, size_t size)
{
	size_t o = 0;
	while (off < len && q[off] != 0) {
		size_t n = q[off++];
		if (o > 0 && o < size - 1)
			out[o++] = '.';
		for (size_t i = 0; i < n && off < len; i++, off++)
			if (o < size - 1)
				out[o++] = (char)q[off];
	}
	out[o] = '\0';
	return off + 1;
}

/* slow.test never answers; mx.test has two MX; h.test an A and an AAAA;
 * fail.test is SERVFAIL; anything else NXDOMAIN. */
static void answer_one(struct fake *f, const unsigned char *q, ssize_t n,
		       const struct sockaddr_storage *peer, socklen_t plen);

/* Every query waiting, answered in order in one loop turn. */
static void on_query(evutil_socket_t fd, short what, void *arg)
{
	for (;;) {
		unsigned char q[512];
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		if (n >= 12)
			answer_one(arg, q, n, &peer, plen);
	}
}

static void answer_one(struct fake *f, const unsigned char *q, ssize_t n,
		       const struct sockaddr_storage *peer, socklen_t plen)
{
	f->queries++;
	char name[256];
	size_t off = read_qname(q, (size_t)n, 12, name, sizeof(name));
	unsigned qtype = off + 2 <= (size_t)n ? (unsigned)(q[off] << 8 | q[off + 1]) : 0;
	unsigned id = (unsigned)(q[0] << 8 | q[1]);
	struct msg m;
	if (strcmp(name, "slow.test") == 0)
		return;
	if (strcmp(name, "mx.test") == 0 && qtype == ns_t_mx) {
		msg_start(&m, id, name, qtype, 0);
		add_mx(&m, NULL, 20, "mx2.test");
		add_mx(&m, NULL, 10, "mx1.test");
	} else if (strcmp(name, "h.test") == 0) {
		msg_start(&m, id, name, qtype, 0);
		add_addr(&m, NULL, qtype == ns_t_aaaa ? "2001:db8::7" : "192.0.2.7");
	} else if (strcmp(name, "fail.test") == 0) {
		msg_start(&m, id, name, qtype, ns_r_servfail);
	} else {
		msg_start(&m, id, name, qtype, ns_r_nxdomain);
	}
	msg_end(&m);
	sendto(f->fd, m.b, m.len, 0, (const struct sockaddr *)peer, plen);
}

static void fake_start(struct fake *f, struct loop *loop)
{
	memset(f, 0, sizeof(*f));
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_INT(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t len = sizeof(sa);
	getsockname(f->fd, (struct sockaddr *)&sa, &len);
	snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%u", ntohs(sa.sin_port));
	f->ev = event_new(loop_base(loop), f->fd, EV_READ | EV_PERSIST, on_query, f);
	event_add(f->ev, NULL);
}

static void fake_stop(struct fake *f)
{
	event_free(f->ev);
	close(f->fd);
}

struct env {
	struct loop *loop;
	struct fake fake;
	struct event *deadline;
};

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	loop_stop(arg);
}

static void env_start(struct env *e, unsigned timeout_ms)
{
	char *err = NULL;
	e->loop = loop_new();
	fake_start(&e->fake, e->loop);
	struct dns_settings s = { e->fake.servers, timeout_ms, 1 };
	CHECK_INT(dns_init(&s, &err), 0);
	free(err);
	dns_thread_init(e->loop);
	/* No test runs longer than this, whatever goes wrong. */
	e->deadline = evtimer_new(loop_base(e->loop), on_deadline, e->loop);
	struct timeval five = { 5, 0 };
	evtimer_add(e->deadline, &five);
}

static void env_stop(struct env *e)
{
	dns_thread_deinit();
	dns_deinit();
	event_free(e->deadline);
	fake_stop(&e->fake);
	loop_free(&e->loop);
}

/* Runs the loop until stopped, or for ms milliseconds. */
static void env_run(struct env *e, int ms)
{
	struct event *t = NULL;
	if (ms > 0) {
		t = evtimer_new(loop_base(e->loop), on_deadline, e->loop);
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(t, &tv);
	}
	loop_run(e->loop);
	if (t != NULL)
		event_free(t);
}

struct probe {
	struct env *env;
	struct probe *other;
	bool in_call;		/* inside the dns_*() that started it */
	int calls;
	bool synchronous;	/* called while in_call */
	enum dns_status status;
	size_t count;
	char first[DNS_NAME_MAX + 1];
	int stop_after;		/* stop the loop after this many calls */
	struct dns_lookup *chained;
};

static void probe_mx(const struct dns_mx_result *r, void *ctx)
{
	struct probe *p = ctx;
	p->calls++;
	p->synchronous |= p->in_call;
	p->status = r->status;
	p->count = r->count;
	snprintf(p->first, sizeof(p->first), "%s", r->count ? r->mx[0].host : "");
	if (p->calls >= p->stop_after)
		loop_stop(p->env->loop);
}

static void probe_addr(const struct dns_addr_result *r, void *ctx)
{
	struct probe *p = ctx;
	char t[DNS_ADDRSTRLEN];
	p->calls++;
	p->synchronous |= p->in_call;
	p->status = r->status;
	p->count = r->count;
	snprintf(p->first, sizeof(p->first), "%s", r->count ? dns_addr_text(&r->addrs[0], t) : "");
	if (p->calls >= p->stop_after)
		loop_stop(p->env->loop);
}

static void test_loop_answers(void)
{
	struct env e;
	env_start(&e, 1000);
	struct probe p = { .env = &e, .stop_after = 1 };

	p.in_call = true;
	dns_mx("MX.test", probe_mx, &p);
	p.in_call = false;
	env_run(&e, 0);
	CHECK_INT(p.calls, 1);
	CHECK(!p.synchronous);
	CHECK_INT(p.status, DNS_OK);
	CHECK_INT(p.count, 2);
	CHECK_STR(p.first, "mx1.test");

	p = (struct probe){ .env = &e, .stop_after = 1, .in_call = true };
	dns_addr("h.test", probe_addr, &p);
	p.in_call = false;
	env_run(&e, 0);
	CHECK_INT(p.calls, 1);
	CHECK_INT(p.status, DNS_OK);
	CHECK_INT(p.count, 2);
	CHECK_STR(p.first, "2001:db8::7");

	p = (struct probe){ .env = &e, .stop_after = 1 };
	dns_mx("nx.test", probe_mx, &p);
	env_run(&e, 0);
	CHECK_INT(p.status, DNS_NXDOMAIN);

	p = (struct probe){ .env = &e, .stop_after = 1 };
	dns_addr("fail.test", probe_addr, &p);
	env_run(&e, 0);
	CHECK_INT(p.status, DNS_TEMPFAIL);

	/* A bad name is reported from the loop too, never from the call. */
	p = (struct probe){ .env = &e, .stop_after = 1, .in_call = true };
	int before = e.fake.queries;
	dns_mx("bad..name", probe_mx, &p);
	p.in_call = false;
	env_run(&e, 0);
	CHECK_INT(p.calls, 1);
	CHECK(!p.synchronous);
	CHECK_INT(p.status, DNS_BADNAME);
	CHECK_INT(e.fake.queries, before);
	env_stop(&e);
}

struct ma_probe {
	struct env *env;
	bool in_call;
	bool synchronous;
	int calls;
	enum ma_dns_status status;
	size_t count;
	char text[64];
};

static void probe_ma(const struct ma_answer *a, void *ctx)
{
	struct ma_probe *p = ctx;
	p->calls++;
	p->synchronous |= p->in_call;
	p->status = a->status;
	p->count = a->count;
	snprintf(p->text, sizeof(p->text), "%s",
		 a->count > 0 && a->records[0].text ? a->records[0].text : "");
	loop_stop(p->env->loop);
}

/* ma_resolve() over dns_query() in a real loop: answers, NXDOMAIN,
 * SERVFAIL, a name that cannot be asked, a cancelled lookup. */
static void test_loop_ma_resolve(void)
{
	struct env e;
	env_start(&e, 1000);
	struct ma_query q = { .type = MA_DNS_MX };
	snprintf(q.name, sizeof(q.name), "mx.test");
	struct ma_probe p = { .env = &e, .in_call = true };
	ma_resolve(&q, probe_ma, &p);
	p.in_call = false;
	env_run(&e, 0);
	CHECK_INT(p.calls, 1);
	CHECK(!p.synchronous);
	CHECK_INT(p.status, MA_DNS_OK);
	CHECK_INT(p.count, 2);
	CHECK_STR(p.text, "mx2.test");	/* the answer's order */

	q.type = MA_DNS_A;
	snprintf(q.name, sizeof(q.name), "nx.test");
	p = (struct ma_probe){ .env = &e };
	ma_resolve(&q, probe_ma, &p);
	env_run(&e, 0);
	CHECK_INT(p.status, MA_DNS_NXDOMAIN);

	snprintf(q.name, sizeof(q.name), "fail.test");
	p = (struct ma_probe){ .env = &e };
	ma_resolve(&q, probe_ma, &p);
	env_run(&e, 0);
	CHECK_INT(p.status, MA_DNS_TEMPFAIL);

	snprintf(q.name, sizeof(q.name), "bad..name");
	p = (struct ma_probe){ .env = &e, .in_call = true };
	ma_resolve(&q, probe_ma, &p);
	p.in_call = false;
	env_run(&e, 0);
	CHECK_INT(p.calls, 1);
	CHECK(!p.synchronous);
	CHECK_INT(p.status, MA_DNS_PERMFAIL);

	/* Cancelled: never called (and nothing leaks, under ASan). */
	snprintf(q.name, sizeof(q.name), "h.test");
	p = (struct ma_probe){ .env = &e };
	struct ma_lookup *l = ma_resolve(&q, probe_ma, &p);
	ma_resolve_cancel(&l);
	CHECK(l == NULL);
	env_run(&e, 300);
	CHECK_INT(p.calls, 0);
	env_stop(&e);
}

static void test_loop_timeout(void)
{
	struct env e;
	env_start(&e, 200);
	struct probe p = { .env = &e, .stop_after = 2 };
	int64_t t0 = time_mono_ms();
	dns_mx("slow.test", probe_mx, &p);
	dns_addr("slow.test", probe_addr, &p);
	env_run(&e, 0);
	int64_t took = time_mono_ms() - t0;
	CHECK_INT(p.calls, 2);
	CHECK_INT(p.status, DNS_TEMPFAIL);
	CHECK(took >= 150 && took < 3000);
	env_stop(&e);
}

static void test_loop_cancel(void)
{
	struct env e;
	env_start(&e, 300);
	struct probe p = { .env = &e, .stop_after = 1 };

	/* Before the answer: the query still goes out and comes back, to
	 * nobody. */
	struct dns_lookup *l = dns_mx("mx.test", probe_mx, &p);
	struct dns_lookup *l2 = dns_addr("h.test", probe_addr, &p);
	dns_cancel(&l);
	dns_cancel(&l2);
	CHECK(l == NULL && l2 == NULL);
	dns_cancel(&l);		/* NULL is fine */
	env_run(&e, 300);
	CHECK_INT(p.calls, 0);

	/* A bad name, cancelled before the loop reports it. */
	l = dns_mx("bad..name", probe_mx, &p);
	dns_cancel(&l);
	env_run(&e, 50);
	CHECK_INT(p.calls, 0);

	/* Cancelled while nothing will ever answer: freed at the timeout. */
	l = dns_addr("slow.test", probe_addr, &p);
	dns_cancel(&l);
	env_run(&e, 600);
	CHECK_INT(p.calls, 0);

	/* Still useful afterwards. */
	p.stop_after = 1;
	dns_mx("mx.test", probe_mx, &p);
	env_run(&e, 0);
	CHECK_INT(p.calls, 1);
	CHECK_INT(p.status, DNS_OK);
	env_stop(&e);
}

/* The answer is in, its callback waits for the loop: cancel then. */
static void cancel_other(const struct dns_mx_result *r, void *ctx)
{
	struct probe *p = ctx;
	p->calls++;
	if (p->other->calls == 0)	/* else its handle is gone */
		dns_cancel(&p->chained);
	loop_stop(p->env->loop);
}

static void test_loop_cancel_answered(void)
{
	struct env e;
	env_start(&e, 1000);
	struct probe q = { .env = &e, .stop_after = 1 }, p = { .env = &e, .other = &q };
	/* Both are answered in the same loop turn (one UDP read each); the
	 * first one's callback cancels the second, already complete. */
	dns_mx("mx.test", cancel_other, &p);
	p.chained = dns_mx("mx.test", probe_mx, &q);
	env_run(&e, 0);
	env_run(&e, 100);
	CHECK_INT(p.calls, 1);
	CHECK_INT(q.calls, 0);
	env_stop(&e);
}

/* A callback that starts the next lookup. */
static void chain_next(const struct dns_mx_result *r, void *ctx)
{
	struct probe *p = ctx;
	p->calls++;
	if (p->calls < 3)
		dns_mx("mx.test", chain_next, p);
	else
		loop_stop(p->env->loop);
}

static void test_loop_chain_and_deinit(void)
{
	struct env e;
	env_start(&e, 1000);
	struct probe p = { .env = &e };
	dns_mx("mx.test", chain_next, &p);
	env_run(&e, 0);
	CHECK_INT(p.calls, 3);

	/* The thread ends with lookups in flight and answers unreported:
	 * nobody is called, nothing leaks. */
	struct probe q = { .env = &e, .stop_after = 100 };
	dns_mx("slow.test", probe_mx, &q);
	dns_addr("slow.test", probe_addr, &q);
	dns_mx("mx.test", probe_mx, &q);
	dns_mx("bad..name", probe_mx, &q);
	env_stop(&e);
	CHECK_INT(q.calls, 0);
}

int main(void)
{
	srand(1);
	loop_global_init();
	RUN(test_mx_order);
	RUN(test_mx_special);
	RUN(test_addr_merge);
	RUN(test_names_and_servers);
	RUN(test_config_section);
	RUN(test_rfc1035_rr_parse);
	RUN(test_loop_answers);
	RUN(test_loop_ma_resolve);
	RUN(test_loop_timeout);
	RUN(test_loop_cancel);
	RUN(test_loop_cancel_answered);
	RUN(test_loop_chain_and_deinit);
	return test_done();
}
