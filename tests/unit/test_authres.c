/* Authentication-Results (RFC 8601): the field we write, and which
 * received ones are removed (RFC 8601 5). */
#include <stdlib.h>
#include <string.h>

#include "mailauth/authres.h"
#include "test.h"

/* RFC 8601 2.2: authserv-id, one resinfo per method, ptype.property. */
static void test_rfc8601_2_2_build(void)
{
	struct dkim_sig_result sigs[2] = {
		{ .result = DKIM_PASS, .domain = "example.com", .selector = "sel1",
		  .algorithm = "ed25519-sha256", .b_prefix = "abc+/def123" },
		{ .result = DKIM_FAIL, .domain = "other.example", .selector = "s2",
		  .algorithm = "rsa-sha256", .b_prefix = "XyZ12345" },
	};
	struct authres a = {
		.authserv_id = "mx.hogehoge.com",
		.spf_done = true, .spf = SPF_PASS, .spf_domain = "example.com",
		.dkim_done = true, .dkim = sigs, .ndkim = 2,
		.dmarc_done = true, .dmarc = DMARC_PASS, .dmarc_from = "example.com",
		.dmarc_policy = DMARC_POLICY_REJECT,
	};
	char *h = authres_build(&a);

	CHECK_STR(h, "Authentication-Results: mx.hogehoge.com;\r\n"
		  "\tspf=pass smtp.mailfrom=example.com;\r\n"
		  "\tdkim=pass header.d=example.com header.s=sel1 header.a=ed25519-sha256"
		  " header.b=\"abc+/def123\";\r\n"
		  "\tdkim=fail header.d=other.example header.s=s2 header.a=rsa-sha256"
		  " header.b=XyZ12345;\r\n"
		  "\tdmarc=pass policy.dmarc=reject header.from=example.com\r\n");
	free(h);

	/* HELO identity, no signature, DMARC none: no policy.dmarc */
	a.spf_helo = true;
	a.spf = SPF_SOFTFAIL;
	a.spf_domain = "mail.example.net";
	a.ndkim = 0;
	a.dmarc = DMARC_NONE;
	a.dmarc_from = "example.net";
	h = authres_build(&a);
	CHECK_STR(h, "Authentication-Results: mx.hogehoge.com;\r\n"
		  "\tspf=softfail smtp.helo=mail.example.net;\r\n"
		  "\tdkim=none;\r\n"
		  "\tdmarc=none header.from=example.net\r\n");
	free(h);

	/* nothing evaluated: the no-result form */
	memset(&a, 0, sizeof(a));
	a.authserv_id = "mx.example";
	h = authres_build(&a);
	CHECK_STR(h, "Authentication-Results: mx.example; none\r\n");
	free(h);

	/* a name that is not a domain is left out, never copied raw */
	a.dmarc_done = true;
	a.dmarc = DMARC_PERMERROR;
	a.dmarc_from = "bad\r\nX-Injected: 1";
	h = authres_build(&a);
	CHECK_STR(h, "Authentication-Results: mx.example;\r\n\tdmarc=permerror\r\n");
	free(h);
}

/* RFC 8601 5: a received field claiming our authserv-id goes; others stay. */
static void test_rfc8601_5_remove(void)
{
	static const struct {
		const char *value;
		bool remove;
	} cases[] = {
		{ " mx.hogehoge.com; spf=pass smtp.mailfrom=example.com", true },
		{ " MX.HogeHoge.COM; dkim=pass", true },
		{ "mx.hogehoge.com;dmarc=pass", true },
		{ " (forged) mx.hogehoge.com (comment (nested)) 1; none", true },
		{ "\r\n\tmx.hogehoge.com;\r\n\tspf=pass", true },
		{ " \"mx.hogehoge.com\"; spf=pass", true },
		{ " mx.hogehoge.com 1; none", true },
		{ " mx.example.net; spf=pass smtp.mailfrom=example.com", false },
		{ " mx.hogehoge.com.example; spf=pass", false },
		{ " example.net 1; none", false },
		{ " example.net (c) 1 ; none", false },
		/* a version we do not know */
		{ " example.net 2; none", true },
		{ " example.net 10; none", true },
		/* cannot be read up to its authserv-id */
		{ "", true },
		{ "   ", true },
		{ " (unterminated comment mx.hogehoge.com; none", true },
		{ " \"mx.hogehoge.com; none", true },
		{ " ; spf=pass", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = authres_remove(cases[i].value, strlen(cases[i].value), "mx.hogehoge.com");
		if (got != cases[i].remove)
			fprintf(stderr, "case %zu: \"%s\"\n", i, cases[i].value);
		CHECK(got == cases[i].remove);
	}
	/* too long to read: removed */
	{
		static char big[AUTHRES_HEADER_MAX + 10];
		memset(big, 'a', sizeof(big) - 1);
		CHECK(authres_remove(big, strlen(big), "mx.hogehoge.com"));
	}
	/* the field we write is recognised as ours */
	{
		struct authres a = { .authserv_id = "mx.hogehoge.com", .spf_done = true,
				     .spf = SPF_PASS, .spf_domain = "example.com" };
		char *h = authres_build(&a);
		const char *v = h + strlen("Authentication-Results:");
		CHECK(authres_remove(v, strlen(v), "mx.hogehoge.com"));
		CHECK(!authres_remove(v, strlen(v), "mx.other.example"));
		free(h);
	}
}

int main(void)
{
	RUN(test_rfc8601_2_2_build);
	RUN(test_rfc8601_5_remove);
	return test_done();
}
