/* Modified UTF-7 (RFC 3501 5.1.3), both ways. */
#include "test.h"
#include "imap/imap_mutf7.h"

#include <stdlib.h>

static const struct { const char *utf8, *mutf7; } pairs[] = {
	{ "INBOX", "INBOX" },
	{ "A&B", "A&-B" },
	/* RFC 3501 5.1.3's example: "~peter/mail/台北/日本語" */
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	{ "Entw\xc3\xbc rfe", "Entw&APw- rfe" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },	/* U+1F600, a surrogate pair */
	{ "", "" },
};

static void test_pairs(void)
{
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		char *e = mutf7_encode(pairs[i].utf8), *d = mutf7_decode(pairs[i].mutf7);
		CHECK_STR(e, pairs[i].mutf7);
		CHECK_STR(d, pairs[i].utf8);
		free(e);
		free(d);
	}
}

static void test_bad(void)
{
	static const char *const bad[] = {
		"&", "&U,BTFw", "&AGE-" /* "a" encoded */, "&2D0-" /* lone high surrogate */,
		"&3gA-" /* lone low surrogate */, "\xc3\xa9", "&-&Zz-", "&!-",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *d = mutf7_decode(bad[i]);
		CHECK(d == NULL);
		if (d)
			fprintf(stderr, "  decoded %s\n", bad[i]);
		free(d);
	}
	CHECK(mutf7_encode("\xff") == NULL);
}

int main(void)
{
	RUN(test_pairs);
	RUN(test_bad);
	return test_done();
}
