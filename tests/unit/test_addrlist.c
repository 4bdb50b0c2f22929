/* Address lists of RFC 5322 3.4 as found in From: fields. */
#include "test.h"
#include "mime/addrlist.h"

struct case_ {
	const char *in;
	int count;
	const char *first, *second;
};

static const struct case_ cases[] = {
	{ "a@example.com", 1, "a@example.com", NULL },
	{ "Shiro Yagi <shiroyagi@Example.COM>", 1, "shiroyagi@example.com", NULL },
	{ "\"Yagi, Shiro\" <s@example.com>", 1, "s@example.com", NULL },
	{ "s@example.com (Shiro Yagi)", 1, "s@example.com", NULL },
	{ "(comment (nested)) <s@example.com>", 1, "s@example.com", NULL },
	{ "a@x.org, B <b@y.org>", 2, "a@x.org", "b@y.org" },
	{ "friends: a@x.org, b@y.org;", 2, "a@x.org", "b@y.org" },
	{ "undisclosed-recipients:;", 0, NULL, NULL },
	{ "<@route.example:s@example.com>", 1, "s@example.com", NULL },
	{ "\"s\"@example.com", 1, "s@example.com", NULL },
	{ "\"a b\"@example.com", 1, "\"a b\"@example.com", NULL },
	{ "Evil <evil@x.org> <s@example.com>", -1, NULL, NULL },
	{ "<s@example.com", -1, NULL, NULL },
	{ "no-at-sign", -1, NULL, NULL },
	{ "<>", -1, NULL, NULL },
	{ "a@b.c (unterminated", -1, NULL, NULL },
	/* a display name that looks like an address does not count */
	{ "\"boss@example.com\" <evil@x.org>", 1, "evil@x.org", NULL },
	{ "boss@example.com <evil@x.org>", 1, "evil@x.org", NULL },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char **v = NULL;
		int n = addrlist_parse(cases[i].in, &v);
		CHECK_INT(n, cases[i].count);
		if (n != cases[i].count)
			fprintf(stderr, "  input: %s\n", cases[i].in);
		if (n >= 1 && cases[i].first)
			CHECK_STR(v[0], cases[i].first);
		if (n >= 2 && cases[i].second)
			CHECK_STR(v[1], cases[i].second);
		addrlist_free(&v);
	}
}

int main(void)
{
	RUN(test_cases);
	return test_done();
}
