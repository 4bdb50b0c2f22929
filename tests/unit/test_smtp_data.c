/* The DATA phase parser: RFC 5321 4.1.1.4 (end of data) and 4.5.2
 * (transparency), fed whole and one byte at a time. */
#include "test.h"
#include "smtp/smtp_data.h"

#include <stdlib.h>

struct data_case {
	const char *in;
	bool normalize;
	const char *out;	/* NULL: the end must not be found */
	size_t rest;		/* bytes left after the end */
	size_t bare_cr, bare_lf, nul;
};

static const struct data_case cases[] = {
	/* the terminator alone: an empty message */
	{ ".\r\n", false, "", 0, 0, 0, 0 },
	{ "a\r\n.\r\n", false, "a\r\n", 0, 0, 0, 0 },
	{ "a\r\n.\r\nQUIT\r\n", false, "a\r\n", 6, 0, 0, 0 },
	/* 4.5.2 transparency: the leading dot goes */
	{ "..x\r\n.\r\n", false, ".x\r\n", 0, 0, 0, 0 },
	{ "...\r\n.\r\n", false, "..\r\n", 0, 0, 0, 0 },
	{ "a.\r\n.b\r\n.\r\n", false, "a.\r\nb\r\n", 0, 0, 0, 0 },
	/* smuggling: bare LF or CR around the dot never ends the data */
	{ "a\n.\r\nb\r\n.\r\n", false, "a.\r\nb\r\n", 0, 0, 1, 0 },
	{ "a\r.\r\nb\r\n.\r\n", false, "a.\r\nb\r\n", 0, 1, 0, 0 },
	{ "a\r\n.\n.\r\n", false, NULL, 0, 0, 1, 0 },
	{ "a\r\n.\r.\r\n", false, NULL, 0, 1, 0, 0 },
	{ "a\n.\nb\r\n.\r\n", false, "a.b\r\n", 0, 0, 2, 0 },
	/* normalised: bare ends become CRLF, still one message */
	{ "a\n.\r\nb\r\n.\r\n", true, "a\r\n.\r\nb\r\n", 0, 0, 1, 0 },
	{ "a\rb\r\n.\r\n", true, "a\r\nb\r\n", 0, 1, 0, 0 },
	{ "x\r\n.\rb\r\n.\r\n", true, "x\r\n\r\nb\r\n", 0, 1, 0, 0 },
	{ "a\r\r\n.\r\n", true, "a\r\n\r\n", 0, 1, 0, 0 },
	/* NUL is counted and dropped */
	{ "a\0b\r\n.\r\n", false, "ab\r\n", 0, 0, 0, 1 },
	/* 8-bit passes through */
	{ "\xc3\xa9t\xc3\xa9\r\n.\r\n", false, "\xc3\xa9t\xc3\xa9\r\n", 0, 0, 0, 0 },
	/* no terminator yet */
	{ "a\r\n.", false, NULL, 0, 0, 0, 0 },
	{ "a\r\n.\r", false, NULL, 0, 0, 0, 0 },
};

static void run_case(const struct data_case *c, bool bytewise)
{
	size_t len = strlen(c->in);
	if (c->nul)	/* the table's strings hold one NUL inside */
		len = strlen(c->in) + 1 + strlen(c->in + strlen(c->in) + 1);
	struct smtp_data_parser p;
	struct buf out;
	buf_init(&out, 0);
	smtp_data_init(&p, c->normalize);
	size_t used = 0;
	if (bytewise) {
		while (used < len && !smtp_data_done(&p))
			used += smtp_data_feed(&p, c->in + used, 1, &out);
	} else {
		used = smtp_data_feed(&p, c->in, len, &out);
	}
	if (c->out == NULL) {
		CHECK(!smtp_data_done(&p));
		CHECK_INT(used, len);
	} else {
		CHECK(smtp_data_done(&p));
		CHECK_INT(out.len, strlen(c->out));
		CHECK(out.len == strlen(c->out) && memcmp(out.data ? out.data : "", c->out, out.len) == 0);
		CHECK_INT(len - used, c->rest);
	}
	CHECK_INT(p.bare_cr, c->bare_cr);
	CHECK_INT(p.bare_lf, c->bare_lf);
	CHECK_INT(p.nul, c->nul);
	if (out.len != (c->out ? strlen(c->out) : out.len))
		fprintf(stderr, "  case input: %s\n", c->in);
	buf_deinit(&out);
}

static void test_cases_whole(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], false);
}

static void test_cases_bytewise(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], true);
}

/* A large random body split at random points comes out the same. */
static void test_random_splits(void)
{
	srand(1);
	for (int round = 0; round < 50; round++) {
		struct buf in, whole, split;
		buf_init(&in, 0);
		buf_init(&whole, 0);
		buf_init(&split, 0);
		for (int i = 0; i < 2000; i++) {
			static const char alphabet[] = "ab.\r\n";
			char ch = alphabet[rand() % 5];
			buf_append(&in, &ch, 1);
		}
		buf_append_str(&in, "\r\n.\r\n");
		struct smtp_data_parser p1, p2;
		smtp_data_init(&p1, true);
		smtp_data_init(&p2, true);
		size_t u1 = smtp_data_feed(&p1, in.data, in.len, &whole);
		size_t u2 = 0;
		while (u2 < in.len && !smtp_data_done(&p2)) {
			size_t n = 1 + (size_t)(rand() % 7);
			if (n > in.len - u2)
				n = in.len - u2;
			u2 += smtp_data_feed(&p2, in.data + u2, n, &split);
		}
		CHECK(smtp_data_done(&p1) && smtp_data_done(&p2));
		CHECK_INT(u1, u2);
		CHECK(whole.len == split.len && memcmp(whole.data, split.data, whole.len) == 0);
		buf_deinit(&in);
		buf_deinit(&whole);
		buf_deinit(&split);
	}
}

int main(void)
{
	RUN(test_cases_whole);
	RUN(test_cases_bytewise);
	RUN(test_random_splits);
	return test_done();
}
