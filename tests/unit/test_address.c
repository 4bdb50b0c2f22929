/* SMTP paths and addresses: RFC 5321 4.1.2, RFC 6531 3.3. */
#include "test.h"
#include "smtp/address.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define R (ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8)	/* MAIL FROM, as the session */
#define F ADDRESS_ALLOW_UTF8				/* RCPT TO, as the session */
#define N ADDRESS_ALLOW_NULL
#define U ADDRESS_ALLOW_UTF8

/* Parses exactly len bytes from a heap copy, so ASan sees any over-read. */
static int parse_exact(const char *in, size_t len, unsigned flags,
		       struct smtp_path_args *args, const char **error)
{
	char *copy = xmalloc(len ? len : 1);
	memcpy(copy, in, len);
	*error = NULL;
	int ret = smtp_path_parse(copy, len, flags, args, error);
	free(copy);
	return ret;
}

struct path_case {
	const char *in;
	unsigned flags;
	const char *local;	/* NULL: must fail */
	const char *domain;	/* on success; on failure the expected error */
	bool is_null, literal, utf8;
};

static const struct path_case path_cases[] = {
	/* Plain and canonical forms. */
	{ "<a@b.c>", 0, "a", "b.c", false, false, false },
	{ "<A@B.C>", 0, "A", "b.c", false, false, false },
	{ "<Foo.Bar@Example.COM>", R, "Foo.Bar", "example.com", false, false, false },
	{ "<\"a b\"@c>", 0, "\"a b\"", "c", false, false, false },
	{ "<\"ab\"@c>", 0, "ab", "c", false, false, false },
	{ "<\"a.b\"@c>", 0, "a.b", "c", false, false, false },
	{ "<\"a..b\"@c>", 0, "\"a..b\"", "c", false, false, false },
	{ "<\".a\"@c>", 0, "\".a\"", "c", false, false, false },
	{ "<\"\\a\\b\"@c>", 0, "ab", "c", false, false, false },
	{ "<\"a\\\"b\"@c>", 0, "\"a\\\"b\"", "c", false, false, false },
	{ "<\"a\\\\b\"@c>", 0, "\"a\\\\b\"", "c", false, false, false },
	{ "<\"a\\ b\"@c>", 0, "\"a b\"", "c", false, false, false },
	{ "<\"a@b\"@c>", 0, "\"a@b\"", "c", false, false, false },
	{ "<\"\"@c>", 0, "\"\"", "c", false, false, false },
	{ "<!#$%&'*+-/=?^_`{|}~@x>", 0, "!#$%&'*+-/=?^_`{|}~", "x", false, false, false },
	{ "<user%other@d>", 0, "user%other", "d", false, false, false },
	{ "<a.b.c@x-y.z0>", 0, "a.b.c", "x-y.z0", false, false, false },
	{ "<a@1.2.3.4>", 0, "a", "1.2.3.4", false, false, false },
	{ "<a@xn--bcher-kva.de>", 0, "a", "xn--bcher-kva.de", false, false, false },
	{ "<a@b--c.d>", 0, "a", "b--c.d", false, false, false },
	/* Source routes are dropped. */
	{ "<@r1,@r2:u@d>", 0, "u", "d", false, false, false },
	{ "<@r1:u@d>", 0, "u", "d", false, false, false },
	{ "<@R1.Example:u@D>", 0, "u", "d", false, false, false },
	/* Address literals. */
	{ "<u@[192.0.2.1]>", 0, "u", "[192.0.2.1]", false, true, false },
	{ "<u@[0.0.0.0]>", 0, "u", "[0.0.0.0]", false, true, false },
	{ "<u@[255.255.255.255]>", 0, "u", "[255.255.255.255]", false, true, false },
	{ "<u@[001.002.003.004]>", 0, "u", "[001.002.003.004]", false, true, false },
	{ "<u@[IPv6:::1]>", 0, "u", "[IPv6:::1]", false, true, false },
	{ "<u@[IPv6:::]>", 0, "u", "[IPv6:::]", false, true, false },
	{ "<u@[IPv6:2001:db8::1]>", 0, "u", "[IPv6:2001:db8::1]", false, true, false },
	{ "<u@[ipv6:2001:DB8::1]>", 0, "u", "[IPv6:2001:db8::1]", false, true, false },
	{ "<u@[IPv6:1:2:3:4:5:6:7:8]>", 0, "u", "[IPv6:1:2:3:4:5:6:7:8]", false, true, false },
	{ "<u@[IPv6:2001:0db8:0000:0000:0000:0000:0000:0001]>", 0, "u",
	  "[IPv6:2001:0db8:0000:0000:0000:0000:0000:0001]", false, true, false },
	{ "<u@[IPv6:1::]>", 0, "u", "[IPv6:1::]", false, true, false },
	{ "<u@[IPv6:::ffff:192.0.2.1]>", 0, "u", "[IPv6:::ffff:192.0.2.1]", false, true, false },
	{ "<u@[IPv6:1:2:3:4:5:6:192.0.2.1]>", 0, "u", "[IPv6:1:2:3:4:5:6:192.0.2.1]", false, true, false },
	{ "<u@[x-tag:foo]>", 0, "u", "[x-tag:foo]", false, true, false },
	{ "<u@[IPv4:1.2.3.4]>", 0, "u", "[IPv4:1.2.3.4]", false, true, false },
	/* The space after the colon. */
	{ " <a@b>", 0, "a", "b", false, false, false },
	{ " <>", N, "", "", true, false, false },
	/* Null path and postmaster. */
	{ "<>", N, "", "", true, false, false },
	{ "<>", R, "", "", true, false, false },
	{ "<postmaster>", F, "postmaster", "", false, false, false },
	{ "<postmaster>", 0, "postmaster", "", false, false, false },
	{ "<POSTMASTER>", F, "postmaster", "", false, false, false },
	{ "<PostMaster@Example.COM>", F, "PostMaster", "example.com", false, false, false },
	{ "<postmaster@x>", R, "postmaster", "x", false, false, false },
	/* SMTPUTF8. */
	{ "<\xc3\xbc@b\xc3\xbc""cher.de>", U, "\xc3\xbc", "b\xc3\xbc""cher.de", false, false, true },
	{ "<A@B\xc3\x9c""CHER.DE>", U, "A", "b\xc3\x9c""cher.de", false, false, true },
	{ "<\xe9\x83\xb5\xe4\xbe\xbf@\xe4\xbe\x8b.jp>", R, "\xe9\x83\xb5\xe4\xbe\xbf",
	  "\xe4\xbe\x8b.jp", false, false, true },
	{ "<\"\xc3\xbc x\"@b>", U, "\"\xc3\xbc x\"", "b", false, false, true },
	{ "<\"\xc3\xbc\"@b>", U, "\xc3\xbc", "b", false, false, true },
	{ "<a@b.c>", U, "a", "b.c", false, false, false },

	/* Errors. */
	{ "", 0, NULL, "missing address", false, false, false },
	{ " ", 0, NULL, "missing address", false, false, false },
	{ "a@b", 0, NULL, "address must be enclosed in <>", false, false, false },
	{ "a@b", R, NULL, "address must be enclosed in <>", false, false, false },
	{ "  <a@b>", 0, NULL, "address must be enclosed in <>", false, false, false },
	{ "<>", 0, NULL, "null address not allowed here", false, false, false },
	{ "<>", F, NULL, "null address not allowed here", false, false, false },
	{ "<postmaster>", N, NULL, "missing @domain", false, false, false },
	{ "<postmaster>", R, NULL, "missing @domain", false, false, false },
	{ "<postmasterx>", F, NULL, "missing @domain", false, false, false },
	{ "<postmaster >", F, NULL, "space in address", false, false, false },
	{ "<a@b", 0, NULL, "missing '>'", false, false, false },
	{ "<a", 0, NULL, "missing @domain", false, false, false },
	{ "<", 0, NULL, "empty local part", false, false, false },
	{ "<a@b>>", 0, NULL, "junk after address", false, false, false },
	{ "<<a@b>>", 0, NULL, "invalid character in local part", false, false, false },
	{ "<a@b>x", 0, NULL, "junk after address", false, false, false },
	{ "<a@b>SIZE=1", 0, NULL, "junk after address", false, false, false },
	{ "<a b@c>", 0, NULL, "space in address", false, false, false },
	{ "< a@b>", 0, NULL, "invalid character in local part", false, false, false },
	{ "<a@b c>", 0, NULL, "space in address", false, false, false },
	{ "<a@b >", 0, NULL, "space in address", false, false, false },
	{ "<a@b_c>", 0, NULL, "invalid character in domain", false, false, false },
	{ "<a(b)@c>", 0, NULL, "invalid character in local part", false, false, false },
	{ "<a\\b@c>", 0, NULL, "invalid character in local part", false, false, false },
	{ "<@d>", 0, NULL, "invalid source route", false, false, false },
	{ "<a@>", 0, NULL, "missing domain", false, false, false },
	{ "<@>", 0, NULL, "missing domain", false, false, false },
	{ "<.a@b>", 0, NULL, "misplaced dot in local part", false, false, false },
	{ "<a.@b>", 0, NULL, "misplaced dot in local part", false, false, false },
	{ "<a..b@c>", 0, NULL, "misplaced dot in local part", false, false, false },
	{ "<\"a@b>", 0, NULL, "unterminated quoted string", false, false, false },
	{ "<\"a\\", 0, NULL, "invalid quoted pair in local part", false, false, false },
	{ "<\"a\"b@c>", 0, NULL, "invalid character in local part", false, false, false },
	{ "<u@d..c>", 0, NULL, "empty label in domain", false, false, false },
	{ "<u@.d>", 0, NULL, "empty label in domain", false, false, false },
	{ "<u@d.>", 0, NULL, "empty label in domain", false, false, false },
	{ "<u@-d.c>", 0, NULL, "domain label starts or ends with '-'", false, false, false },
	{ "<u@d-.c>", 0, NULL, "domain label starts or ends with '-'", false, false, false },
	{ "<u@d.c->", 0, NULL, "domain label starts or ends with '-'", false, false, false },
	/* Source routes must be well-formed even though they are dropped. */
	{ "<@d,u@d>", 0, NULL, "invalid source route", false, false, false },
	{ "<@d u@d>", 0, NULL, "invalid source route", false, false, false },
	{ "<@[1.2.3.4]:u@d>", 0, NULL, "invalid source route", false, false, false },
	{ "<@d,:u@d>", 0, NULL, "invalid source route", false, false, false },
	{ "<@d..e:u@d>", 0, NULL, "empty label in domain", false, false, false },
	{ "<@d:>", 0, NULL, "empty local part", false, false, false },
	/* Bad literals. */
	{ "<u@[192.0.2.256]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[192.0.2]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[1.2.3.4.5]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[0001.2.3.4]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[1.2.3.]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[example.com]>", 0, NULL, "invalid IPv4 address literal", false, false, false },
	{ "<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:1:2:3:4:5:6:7]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:::1::2]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:12345::1]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:g::1]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:fe80::1%eth0]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:::ffff:192.0.2.256]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[IPv6:192.0.2.1]>", 0, NULL, "invalid IPv6 address literal", false, false, false },
	{ "<u@[192.0.2.1>", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[192.0.2.1", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[[192.0.2.1]]>", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[x-:foo]>", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[:foo]>", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[x:]>", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[x_y:z]>", 0, NULL, "invalid address literal", false, false, false },
	{ "<u@[192.0.2.1]x>", 0, NULL, "invalid character in domain", false, false, false },
	{ "<u@[192.0.2.1].com>", 0, NULL, "invalid character in domain", false, false, false },
	/* Bytes no production allows. */
	{ "<a@b>\t", 0, NULL, "control character in address", false, false, false },
	{ "<a@b>\r\n", 0, NULL, "control character in address", false, false, false },
	{ "<a\x7f@b>", 0, NULL, "control character in address", false, false, false },
	{ "<\"a\x01\"@b>", 0, NULL, "control character in address", false, false, false },
	{ "<\xc3\xbc@b>", 0, NULL, "non-ASCII character in address", false, false, false },
	{ "<\xc3\xbc@b>", N, NULL, "non-ASCII character in address", false, false, false },
	{ "<a@b\xc3\xbc>", 0, NULL, "non-ASCII character in address", false, false, false },
	{ "<a@b> X=\xc3\xbc", 0, NULL, "non-ASCII character in address", false, false, false },
	{ "<\xc0\xaf@b>", U, NULL, "invalid UTF-8 in address", false, false, false },
	{ "<\xe0\x80\xaf@b>", U, NULL, "invalid UTF-8 in address", false, false, false },
	{ "<\xed\xa0\x80@b>", U, NULL, "invalid UTF-8 in address", false, false, false },
	{ "<\xf4\x90\x80\x80@b>", U, NULL, "invalid UTF-8 in address", false, false, false },
	{ "<\xff@b>", U, NULL, "invalid UTF-8 in address", false, false, false },
	{ "<a@b\xc3>", U, NULL, "invalid UTF-8 in address", false, false, false },
	{ "<a@[\xc3\xbc]>", U, NULL, "invalid address literal", false, false, false },
	{ "<\"\\\xc3\xbc\"@b>", U, NULL, "invalid quoted pair in local part", false, false, false },
	/* Parameters. */
	{ "<a@b> =1", 0, NULL, "invalid parameter keyword", false, false, false },
	{ "<a@b> SIZE=", 0, NULL, "empty parameter value", false, false, false },
	{ "<a@b> -X=1", 0, NULL, "invalid parameter keyword", false, false, false },
	{ "<a@b> S_Z=1", 0, NULL, "invalid parameter keyword", false, false, false },
	{ "<a@b> SIZE:1", 0, NULL, "invalid parameter keyword", false, false, false },
	{ "<a@b> SIZE=1=2", 0, NULL, "invalid parameter value", false, false, false },
	{ "<a@b> \xc3\x9c=1", U, NULL, "invalid parameter keyword", false, false, false },
};

static void test_path_table(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(path_cases); i++) {
		const struct path_case *t = &path_cases[i];
		struct smtp_path_args args;
		const char *error;
		int ret = parse_exact(t->in, strlen(t->in), t->flags, &args, &error);
		if (t->local == NULL) {
			CHECK_INT(ret, -1);
			CHECK_STR(error, t->domain);
			CHECK(args.addr.local == NULL && args.addr.domain == NULL);
			CHECK_INT(args.param_count, 0);
			if (ret != -1 || error == NULL || strcmp(error, t->domain) != 0)
				fprintf(stderr, "  case %zu: \"%s\"\n", i, t->in);
		} else {
			CHECK_INT(ret, 0);
			if (ret != 0) {
				fprintf(stderr, "  case %zu: \"%s\": %s\n", i, t->in, error);
				continue;
			}
			CHECK_STR(args.addr.local, t->local);
			CHECK_STR(args.addr.domain, t->domain);
			CHECK(args.addr.is_null == t->is_null);
			CHECK(args.addr.domain_literal == t->literal);
			CHECK(args.addr.utf8 == t->utf8);
			/* The canonical form parses to itself. */
			char *s = address_to_string(&args.addr);
			char *again = xasprintf("<%s>", s);
			struct smtp_path_args args2;
			CHECK_INT(parse_exact(again, strlen(again), t->flags, &args2, &error), 0);
			CHECK_STR(args2.addr.local, args.addr.local);
			CHECK_STR(args2.addr.domain, args.addr.domain);
			smtp_path_args_deinit(&args2);
			free(again);
			free(s);
			smtp_path_args_deinit(&args);
			CHECK(args.addr.local == NULL && args.addr.domain == NULL);
		}
	}
}

/* Every strict prefix of every case is parsed without reading past it. */
static void test_path_prefixes(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(path_cases); i++) {
		const struct path_case *t = &path_cases[i];
		size_t n = strlen(t->in);
		for (size_t len = 0; len < n; len++) {
			struct smtp_path_args args;
			const char *error;
			if (parse_exact(t->in, len, t->flags, &args, &error) == 0)
				smtp_path_args_deinit(&args);
			else
				CHECK(error != NULL);
		}
	}
}

static void test_nul(void)
{
	static const char in[] = "<a\0b@c>";
	struct smtp_path_args args;
	const char *error;
	CHECK_INT(parse_exact(in, sizeof(in) - 1, R, &args, &error), -1);
	CHECK_STR(error, "NUL character in address");
	static const char in2[] = "<a@b>\0";
	CHECK_INT(parse_exact(in2, sizeof(in2) - 1, R, &args, &error), -1);
	CHECK_STR(error, "NUL character in address");
	/* The length given is what counts, not a terminator. */
	CHECK_INT(parse_exact("<a@b>junk", 5, R, &args, &error), 0);
	CHECK_STR(args.addr.domain, "b");
	smtp_path_args_deinit(&args);
}

/* n octets of domain: labels of 62 "a" joined by dots, never ending in one. */
static char *make_domain(size_t n)
{
	char *d = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		d[i] = i % 63 == 62 ? '.' : 'a';
	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = 'x';
	d[n] = '\0';
	return d;
}

static char *make_repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void check_path(const char *in, unsigned flags, const char *error_want)
{
	struct smtp_path_args args;
	const char *error;
	int ret = parse_exact(in, strlen(in), flags, &args, &error);
	if (error_want == NULL) {
		CHECK_INT(ret, 0);
		if (ret == 0)
			smtp_path_args_deinit(&args);
		else
			fprintf(stderr, "  %zu octets: %s\n", strlen(in), error);
	} else {
		CHECK_INT(ret, -1);
		CHECK_STR(error, error_want);
	}
}

static void test_lengths(void)
{
	char *l64 = make_repeat('a', 64), *l65 = make_repeat('b', 65);
	char *l63 = make_repeat('c', 63), *l62 = make_repeat('c', 62);
	char *s;

	s = xasprintf("<%s@d>", l64);
	check_path(s, 0, NULL);
	free(s);
	s = xasprintf("<%s@d>", l65);
	check_path(s, 0, "local part too long");
	free(s);
	/* Quoted: 64 octets as sent, quotes included. */
	s = xasprintf("<\"%s\"@d>", l62);
	check_path(s, 0, NULL);
	free(s);
	s = xasprintf("<\"%s\"@d>", l63);
	check_path(s, 0, "local part too long");
	free(s);
	/* 65 octets with a dot somewhere, and in a second atom. */
	s = xasprintf("<a.%s@d>", l63);
	check_path(s, 0, "local part too long");
	free(s);

	/* Labels: 63 octets. */
	s = xasprintf("<u@%s.com>", l63);
	check_path(s, 0, NULL);
	free(s);
	s = xasprintf("<u@%sc.com>", l63);
	check_path(s, 0, "domain label too long");
	free(s);
	s = xasprintf("<u@com.%sc>", l63);
	check_path(s, 0, "domain label too long");
	free(s);

	/* Path: 256 octets, brackets included. 1 + 64 + 1 + 189 + 1 = 256. */
	char *d189 = make_domain(189), *d190 = make_domain(190);
	s = xasprintf("<%s@%s>", l64, d189);
	CHECK_INT(strlen(s), 256);
	check_path(s, 0, NULL);
	free(s);
	s = xasprintf("<%s@%s>", l64, d190);
	check_path(s, 0, "path too long");
	free(s);
	/* A source route counts towards the path length. */
	s = xasprintf("<@%s:u@d>", d189);
	check_path(s, 0, NULL);
	free(s);
	s = xasprintf("<@%s,@%s:u@d>", d189, d189);
	check_path(s, 0, "path too long");
	free(s);

	/* Domain: 255 octets. */
	char *d255 = make_domain(255), *d256 = make_domain(256);
	s = xasprintf("<u@%s>", d256);
	check_path(s, 0, "domain too long");
	free(s);
	s = xasprintf("<u@%s>", d255);
	check_path(s, 0, "path too long");
	free(s);
	/* Literals too. */
	char *lit = make_repeat('a', 300);
	s = xasprintf("<u@[x:%s]>", lit);
	check_path(s, 0, "domain too long");
	free(s);

	/* A long line of junk after the local part stops at the limit. */
	char *junk = make_repeat('j', 100000);
	s = xasprintf("<%s@d>", junk);
	check_path(s, 0, "local part too long");
	free(s);
	s = xasprintf("<u@%s>", junk);
	check_path(s, 0, "domain label too long");
	free(s);

	free(junk);
	free(lit);
	free(d255);
	free(d256);
	free(d189);
	free(d190);
	free(l62);
	free(l63);
	free(l64);
	free(l65);
}

static void test_params(void)
{
	struct smtp_path_args args;
	const char *error;
	const char *in = "<a@b> SIZE=100 BODY=8BITMIME";

	CHECK_INT(parse_exact(in, strlen(in), R, &args, &error), 0);
	CHECK_INT(args.param_count, 2);
	CHECK_STR(args.params[0].keyword, "SIZE");
	CHECK_STR(args.params[0].value, "100");
	CHECK_STR(args.params[1].keyword, "BODY");
	CHECK_STR(args.params[1].value, "8BITMIME");
	smtp_path_args_deinit(&args);
	CHECK_INT(args.param_count, 0);

	/* No value; keyword case kept; duplicates returned. */
	in = "<> SMTPUTF8 size=1 SIZE=2 X-Y-1=a+b<>~";
	CHECK_INT(parse_exact(in, strlen(in), R, &args, &error), 0);
	CHECK(args.addr.is_null);
	CHECK_INT(args.param_count, 4);
	CHECK_STR(args.params[0].keyword, "SMTPUTF8");
	CHECK(args.params[0].value == NULL);
	CHECK_STR(args.params[1].keyword, "size");
	CHECK_STR(args.params[1].value, "1");
	CHECK_STR(args.params[2].keyword, "SIZE");
	CHECK_STR(args.params[2].value, "2");
	CHECK_STR(args.params[3].keyword, "X-Y-1");
	CHECK_STR(args.params[3].value, "a+b<>~");
	smtp_path_args_deinit(&args);

	/* Runs of spaces and trailing spaces are tolerated. */
	in = "<a@b>  A=1   B  ";
	CHECK_INT(parse_exact(in, strlen(in), 0, &args, &error), 0);
	CHECK_INT(args.param_count, 2);
	CHECK_STR(args.params[1].keyword, "B");
	smtp_path_args_deinit(&args);
	in = "<a@b> ";
	CHECK_INT(parse_exact(in, strlen(in), 0, &args, &error), 0);
	CHECK_INT(args.param_count, 0);
	smtp_path_args_deinit(&args);

	/* "<Postmaster>" takes parameters too. */
	in = "<Postmaster> NOTIFY=NEVER";
	CHECK_INT(parse_exact(in, strlen(in), F, &args, &error), 0);
	CHECK_STR(args.addr.local, "postmaster");
	CHECK_INT(args.param_count, 1);
	smtp_path_args_deinit(&args);

	/* UTF-8 in a value under SMTPUTF8. */
	in = "<a@b> X=\xe9\x83\xb5";
	CHECK_INT(parse_exact(in, strlen(in), U, &args, &error), 0);
	CHECK_STR(args.params[0].value, "\xe9\x83\xb5");
	smtp_path_args_deinit(&args);

	/* SMTP_PARAMS_MAX, then one more. */
	char many[512] = "<a@b>";
	for (int i = 0; i < SMTP_PARAMS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), " P%d=%d", i, i);
	CHECK_INT(parse_exact(many, strlen(many), 0, &args, &error), 0);
	CHECK_INT(args.param_count, SMTP_PARAMS_MAX);
	CHECK_STR(args.params[SMTP_PARAMS_MAX - 1].value, "15");
	smtp_path_args_deinit(&args);
	strcat(many, " ONE=MORE");
	CHECK_INT(parse_exact(many, strlen(many), 0, &args, &error), -1);
	CHECK_STR(error, "too many parameters");
	CHECK_INT(args.param_count, 0);

	/* A bad parameter after good ones frees the good ones. */
	in = "<a@b> A=1 B=2 =3";
	CHECK_INT(parse_exact(in, strlen(in), 0, &args, &error), -1);
	CHECK_STR(error, "invalid parameter keyword");
	CHECK_INT(args.param_count, 0);
}

struct addr_case {
	const char *in;
	unsigned flags;
	const char *local;	/* NULL: must fail */
	const char *domain;	/* or the error */
};

static const struct addr_case addr_cases[] = {
	{ "a@b.c", 0, "a", "b.c" },
	{ "A@B.C", 0, "A", "b.c" },
	{ "\"a b\"@c", 0, "\"a b\"", "c" },
	{ "\"ab\"@c", 0, "ab", "c" },
	{ "user+tag@Example.ORG", 0, "user+tag", "example.org" },
	{ "a@[192.0.2.1]", 0, "a", "[192.0.2.1]" },
	{ "a@[IPV6:::1]", 0, "a", "[IPv6:::1]" },
	{ "\xc3\xbc@\xc3\xbc.de", U, "\xc3\xbc", "\xc3\xbc.de" },
	{ "", N, "", "" },
	{ "", 0, NULL, "empty local part" },
	{ "<a@b>", 0, NULL, "invalid character in local part" },
	{ "a@b>", 0, NULL, "invalid character in domain" },
	{ "a@b c", 0, NULL, "space in address" },
	{ "a@b ", 0, NULL, "space in address" },
	{ " a@b", 0, NULL, "invalid character in local part" },
	{ "a", 0, NULL, "missing @domain" },
	{ "postmaster", 0, NULL, "missing @domain" },
	{ "a@", 0, NULL, "missing domain" },
	{ "@b", 0, NULL, "empty local part" },
	{ "a@b@c", 0, NULL, "invalid character in domain" },
	{ "a@b..c", 0, NULL, "empty label in domain" },
	{ "\xc3\xbc@b", 0, NULL, "non-ASCII character in address" },
	{ "\xed\xa0\x80@b", U, NULL, "invalid UTF-8 in address" },
	{ "a\r@b", 0, NULL, "control character in address" },
};

static void test_address_parse(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(addr_cases); i++) {
		const struct addr_case *t = &addr_cases[i];
		struct address a;
		const char *error = NULL;
		int ret = address_parse(t->in, t->flags, &a, &error);
		if (t->local == NULL) {
			CHECK_INT(ret, -1);
			CHECK_STR(error, t->domain);
			CHECK(a.local == NULL && a.domain == NULL);
			if (ret != -1)
				fprintf(stderr, "  case %zu: \"%s\"\n", i, t->in);
			continue;
		}
		CHECK_INT(ret, 0);
		if (ret != 0) {
			fprintf(stderr, "  case %zu: \"%s\": %s\n", i, t->in, error);
			continue;
		}
		CHECK_STR(a.local, t->local);
		CHECK_STR(a.domain, t->domain);
		char *s = address_to_string(&a);
		struct address b;
		CHECK_INT(address_parse(s, t->flags, &b, &error), 0);
		CHECK_STR(b.local, a.local);
		CHECK_STR(b.domain, a.domain);
		address_deinit(&b);
		free(s);
		address_deinit(&a);
	}

	/* Must fit in a path: 254 octets at most. */
	char *l64 = make_repeat('a', 64), *d189 = make_domain(189), *d190 = make_domain(190);
	char *s = xasprintf("%s@%s", l64, d189);
	struct address a;
	const char *error;
	CHECK_INT(address_parse(s, 0, &a, &error), 0);
	address_deinit(&a);
	free(s);
	s = xasprintf("%s@%s", l64, d190);
	CHECK_INT(address_parse(s, 0, &a, &error), -1);
	CHECK_STR(error, "address too long");
	free(s);
	s = xasprintf("a%s@b", l64);
	CHECK_INT(address_parse(s, 0, &a, &error), -1);
	CHECK_STR(error, "local part too long");
	free(s);
	free(l64);
	free(d189);
	free(d190);
}

static void test_address_parse_domain(void)
{
	static const struct {
		const char *in;
		unsigned flags;
		const char *want;	/* NULL: must fail */
		const char *error;
	} cases[] = {
		{ "example.com", 0, "example.com", NULL },
		{ "Example.COM", 0, "example.com", NULL },
		{ "a", 0, "a", NULL },
		{ "a-b.c0", 0, "a-b.c0", NULL },
		{ "1.2.3.4", 0, "1.2.3.4", NULL },
		{ "B\xc3\x9c""cher.DE", U, "b\xc3\x9c""cher.de", NULL },
		{ "b\xc3\xbc""cher.de", 0, NULL, "non-ASCII character in address" },
		{ "b\xc3\xbc""cher.de", N, NULL, "non-ASCII character in address" },
		{ "", 0, NULL, "missing domain" },
		{ "a..b", 0, NULL, "empty label in domain" },
		{ ".a", 0, NULL, "empty label in domain" },
		{ "a.b.", 0, NULL, "empty label in domain" },
		{ "-a.b", 0, NULL, "domain label starts or ends with '-'" },
		{ "a.b-", 0, NULL, "domain label starts or ends with '-'" },
		{ "a b", 0, NULL, "space in domain" },
		{ "a_b", 0, NULL, "invalid character in domain" },
		{ "a@b", 0, NULL, "invalid character in domain" },
		{ "[192.0.2.1]", 0, NULL, "missing domain" },
		{ "a\tb", 0, NULL, "control character in address" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *d = (char *)"unset";
		const char *error = NULL;
		int ret = address_parse_domain(cases[i].in, cases[i].flags, &d, &error);
		if (cases[i].want == NULL) {
			CHECK_INT(ret, -1);
			CHECK_STR(error, cases[i].error);
			CHECK(d == NULL);
		} else {
			CHECK_INT(ret, 0);
			CHECK_STR(d, cases[i].want);
			free(d);
		}
	}

	const struct {
		size_t n;
		const char *error;
	} lens[] = { { 1, NULL }, { 63, NULL }, { 254, NULL }, { 255, NULL },
		     { 256, "domain too long" }, { 1000, "domain too long" } };
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		char *in = make_domain(lens[i].n), *d = NULL;
		const char *error = NULL;
		int ret = address_parse_domain(in, 0, &d, &error);
		CHECK_INT(ret, lens[i].error ? -1 : 0);
		CHECK_STR(error, lens[i].error);
		if (ret == 0)
			CHECK_STR(d, in);
		free(d);
		free(in);
	}
	char *l64 = make_repeat('a', 64), *d = NULL;
	const char *error;
	CHECK_INT(address_parse_domain(l64, 0, &d, &error), -1);
	CHECK_STR(error, "domain label too long");
	l64[63] = '\0';
	CHECK_INT(address_parse_domain(l64, 0, &d, &error), 0);
	CHECK_STR(d, l64);
	free(d);
	free(l64);
}

static void test_to_string_and_copy(void)
{
	static const struct {
		const char *in;
		unsigned flags;
		const char *want;
	} cases[] = {
		{ "<a@b.c>", 0, "a@b.c" },
		{ "<A@B.C>", 0, "A@b.c" },
		{ "<\"a b\"@c>", 0, "\"a b\"@c" },
		{ "<\"ab\"@c>", 0, "ab@c" },
		{ "<\"a\\\"b\"@c>", 0, "\"a\\\"b\"@c" },
		{ "<@r1,@r2:u@d>", 0, "u@d" },
		{ "<u@[IPv6:2001:DB8::1]>", 0, "u@[IPv6:2001:db8::1]" },
		{ "<>", N, "" },
		{ "<Postmaster>", 0, "postmaster" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct smtp_path_args args;
		const char *error;
		CHECK_INT(parse_exact(cases[i].in, strlen(cases[i].in), cases[i].flags,
				      &args, &error), 0);
		struct address copy;
		address_copy(&copy, &args.addr);
		smtp_path_args_deinit(&args);
		char *s = address_to_string(&copy);
		CHECK_STR(s, cases[i].want);
		free(s);
		address_deinit(&copy);
	}
	/* A zeroed address can be deinitialised and copied. */
	struct address z, zc;
	memset(&z, 0, sizeof(z));
	address_copy(&zc, &z);
	CHECK(zc.local == NULL && zc.domain == NULL);
	address_deinit(&z);
}

static void test_utf8_valid(void)
{
	static const struct {
		const char *s;
		size_t len;
		bool valid;
	} cases[] = {
		{ "", 0, true },
		{ "abc", 3, true },
		{ "a\0b", 3, true },
		{ "\xc3\xa9", 2, true },			/* U+00E9 */
		{ "\xc2\x80", 2, true },			/* U+0080, the smallest */
		{ "\xdf\xbf", 2, true },			/* U+07FF */
		{ "\xe2\x82\xac", 3, true },			/* U+20AC */
		{ "\xe0\xa0\x80", 3, true },			/* U+0800 */
		{ "\xed\x9f\xbf", 3, true },			/* U+D7FF */
		{ "\xee\x80\x80", 3, true },			/* U+E000 */
		{ "\xef\xbf\xbf", 3, true },			/* U+FFFF */
		{ "\xf0\x90\x80\x80", 4, true },		/* U+10000 */
		{ "\xf0\x9d\x84\x9e", 4, true },		/* U+1D11E */
		{ "\xf4\x8f\xbf\xbf", 4, true },		/* U+10FFFF */
		{ "\xc0\x80", 2, false },			/* overlong NUL */
		{ "\xc0\xaf", 2, false },			/* overlong "/" */
		{ "\xc1\xbf", 2, false },
		{ "\xe0\x80\xaf", 3, false },			/* overlong */
		{ "\xe0\x9f\xbf", 3, false },			/* overlong */
		{ "\xf0\x80\x80\xaf", 4, false },		/* overlong */
		{ "\xf0\x8f\xbf\xbf", 4, false },		/* overlong */
		{ "\xed\xa0\x80", 3, false },			/* U+D800 surrogate */
		{ "\xed\xbf\xbf", 3, false },			/* U+DFFF surrogate */
		{ "\xed\xa0\xbd\xed\xb2\xa9", 6, false },	/* CESU-8 pair */
		{ "\xf4\x90\x80\x80", 4, false },		/* U+110000 */
		{ "\xf5\x80\x80\x80", 4, false },
		{ "\xf8\x88\x80\x80\x80", 5, false },		/* 5-byte form */
		{ "\xfe", 1, false },
		{ "\xff", 1, false },
		{ "\x80", 1, false },				/* lone continuation */
		{ "a\xbf", 2, false },
		{ "\xc3", 1, false },				/* truncated */
		{ "\xe2\x82", 2, false },
		{ "\xf0\x9d\x84", 3, false },
		{ "\xc3\x28", 2, false },			/* bad continuation */
		{ "\xe2\x28\xac", 3, false },
		{ "\xe2\x82\x28", 3, false },
		{ "\xf0\x9d\x28\x9e", 4, false },
		{ "\xc3\xa9\xc3", 3, false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		/* From a heap copy of exactly len bytes: no over-read. */
		char *copy = xmalloc(cases[i].len ? cases[i].len : 1);
		memcpy(copy, cases[i].s, cases[i].len);
		bool v = utf8_valid(copy, cases[i].len);
		CHECK(v == cases[i].valid);
		if (v != cases[i].valid)
			fprintf(stderr, "  utf8 case %zu\n", i);
		free(copy);
	}
	/* Truncating a valid string in the middle of a character. */
	const char *s = "\xe9\x83\xb5\xe4\xbe\xbf";
	CHECK(utf8_valid(s, 6));
	CHECK(utf8_valid(s, 3));
	CHECK(!utf8_valid(s, 4));
	CHECK(!utf8_valid(s, 5));
}

int main(void)
{
	RUN(test_path_table);
	RUN(test_path_prefixes);
	RUN(test_nul);
	RUN(test_lengths);
	RUN(test_params);
	RUN(test_address_parse);
	RUN(test_address_parse_domain);
	RUN(test_to_string_and_copy);
	RUN(test_utf8_valid);
	return test_done();
}
