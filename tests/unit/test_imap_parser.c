/* The IMAP command parser, fed whole and one byte at a time (as Dovecot's
 * test-imap-parser does). Commands are rendered back to a canonical text to
 * compare: atoms as is, quoted as "..", literals as {n}.., lists in (). */
#include "test.h"
#include "core/buf.h"
#include "imap/imap_parser.h"

#include <stdlib.h>

static const struct imap_parser_limits limits = {
	.line_max = 200, .literal_max = 100, .args_max = 50, .depth_max = 4,
};
/* LITERAL- (RFC 7888 5) scaled down: "{n+}" up to 10 octets */
static const struct imap_parser_limits minus_limits = {
	.line_max = 200, .literal_max = 100, .args_max = 50, .depth_max = 4, .nonsync_max = 10,
};

static void render_args(struct buf *b, const struct imap_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_c(b, ' ');
		switch (a[i].type) {
		case IMAP_ARG_ATOM:
			buf_append(b, a[i].str, a[i].len);
			break;
		case IMAP_ARG_QUOTED:
			buf_printf(b, "\"%s\"", a[i].str);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(b, "%s{%zu}", a[i].literal8 ? "~" : "", a[i].len);
			buf_append(b, a[i].str, a[i].len);
			break;
		case IMAP_ARG_LIST:
			buf_append_c(b, '(');
			render_args(b, a[i].list, a[i].len);
			buf_append_c(b, ')');
			break;
		}
	}
}

/* Feeds input (whole or bytewise) and renders every event into out:
 * "C:tag name args|" for commands, "S|" for literal continuations,
 * "E:tag:reason|" for errors, "T:tag|" for a literal too big, "B:tag|" for
 * a non-synchronizing literal too big. */
static void run_with(const struct imap_parser_limits *lim, const char *in, size_t len,
		     bool bytewise, struct buf *out)
{
	struct imap_parser *p = imap_parser_new(lim);
	size_t pos = 0;
	while (pos < len) {
		size_t used = 0, n = bytewise ? 1 : len - pos;
		enum imap_parse_result r = imap_parser_feed(p, in + pos, n, &used);
		pos += used;
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			break;
		case IMAP_PARSE_COMMAND: {
			const struct imap_command *c = imap_parser_command(p);
			buf_printf(out, "C:%s %s", c->tag, c->name);
			if (c->argc) {
				buf_append_c(out, ' ');
				render_args(out, c->args, c->argc);
			}
			buf_append_c(out, '|');
			break;
		}
		case IMAP_PARSE_LITERAL_SYNC:
			buf_append_str(out, "S|");
			break;
		case IMAP_PARSE_ERROR:
			buf_printf(out, "E:%s:%s|", imap_parser_error_tag(p), imap_parser_error(p));
			break;
		case IMAP_PARSE_LITERAL_TOO_BIG:
			buf_printf(out, "T:%s|", imap_parser_error_tag(p));
			break;
		case IMAP_PARSE_NONSYNC_TOO_BIG:
			buf_printf(out, "B:%s|", imap_parser_error_tag(p));
			break;
		}
	}
	imap_parser_free(&p);
}

static void run(const char *in, size_t len, bool bytewise, struct buf *out)
{
	run_with(&limits, in, len, bytewise, out);
}

struct pcase {
	const char *in;
	const char *want;
};

static const struct pcase cases[] = {
	{ "a1 NOOP\r\n", "C:a1 NOOP|" },
	{ "a1 NOOP\n", "C:a1 NOOP|" },
	{ "\r\na2 CAPABILITY\r\n", "C:a2 CAPABILITY|" },
	{ "a LOGIN user \"pa ss\\\"x\\\\\"\r\n", "C:a LOGIN user \"pa ss\"x\\\"|" },
	{ "a LOGIN {4}\r\nuser {2+}\r\npw\r\n", "S|C:a LOGIN {4}user {2}pw|" },
	{ "a APPEND INBOX (\\Seen $Junk) {0}\r\n\r\n", "S|C:a APPEND INBOX (\\Seen $Junk) {0}|" },
	{ "a APPEND INBOX ~{3+}\r\na\0b\r\n", "C:a APPEND INBOX ~{3}a\0b|" },
	{ "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n",
	  "C:a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)|" },
	{ "a UID FETCH 1,3:5 (UID)\r\n", "C:a UID FETCH 1,3:5 (UID)|" },
	{ "a LIST \"\" %\r\n", "C:a LIST \"\" %|" },
	{ "a LIST () \"\" *\r\n", "C:a LIST () \"\" *|" },
	{ "a X ((a) (b (c)))\r\n", "C:a X ((a) (b (c)))|" },
	{ "a SELECT \"\xe6\x97\xa5\xe6\x9c\xac\"\r\n", "C:a SELECT \"\xe6\x97\xa5\xe6\x9c\xac\"|" },
	/* errors carry the tag and skip the line; the next line parses */
	{ "a X  b\r\nb NOOP\r\n", "E:a:expected an argument|C:b NOOP|" },
	{ "a X (b\r\nb NOOP\r\n", "E:a:unbalanced parenthesis|C:b NOOP|" },
	{ "a X b)\r\nc NOOP\r\n", "E:a:unbalanced parenthesis|C:c NOOP|" },
	{ "a X \"b\r\nc NOOP\r\n", "E:a:unterminated quoted string|C:c NOOP|" },
	{ "a X \"\\n\"\r\nc NOOP\r\n", "E:a:invalid escape in quoted string|C:c NOOP|" },
	{ "a+ NOOP\r\nc NOOP\r\n", "E:a:invalid tag|C:c NOOP|" },
	{ "a\r\nc NOOP\r\n", "E:a:missing command|C:c NOOP|" },
	{ "a X ( b)\r\nc NOOP\r\n", "E:a:expected an argument|C:c NOOP|" },
	{ "a X {1x}\r\nc NOOP\r\n", "E:a:invalid literal|C:c NOOP|" },
	{ "a X ((((((x))))))\r\nc NOOP\r\n", "E:a:lists nested too deep|C:c NOOP|" },
	/* a literal over the limit: refused before the client sends it */
	{ "a APPEND INBOX {101}\r\nc NOOP\r\n", "T:a|C:c NOOP|" },
	/* a non-synchronizing one arrives anyway: its bytes are skipped */
	{ "a APPEND INBOX {101+}\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890\r\nc NOOP\r\n", "T:a|C:c NOOP|" },
	/* a bad line ending in "{n+}": the n octets that follow belong to it
	 * and are skipped, not read as commands; "{n}" the client sends only
	 * after "+", which a bad line never gets */
	{ "a X ( b) {5+}\r\nc BAD\r\nc NOOP\r\n", "E:a:expected an argument|C:c NOOP|" },
	{ "a X ( b) ~{5+}\r\nc BAD\r\n{3+}\r\nxyz\r\nc NOOP\r\n",
	  "E:a:expected an argument|E:*:invalid tag|C:c NOOP|" },
	{ "a X ( b) {0+}\r\n\r\nc NOOP\r\n", "E:a:expected an argument|C:c NOOP|" },
	{ "a X ( b) {5}\r\nc NOOP\r\n", "E:a:expected an argument|C:c NOOP|" },
	{ "a X ( b) {5+} x\r\nc NOOP\r\n", "E:a:expected an argument|C:c NOOP|" },
	{ "a X ( b) {99999999999999999999+}\r\nc NOOP\r\n", "E:a:expected an argument|C:c NOOP|" },
	{ "a X {99999999999999999999999}\r\nc NOOP\r\n", "E:a:literal size too large|C:c NOOP|" },
	/* RFC 9051 9: number64 = 1*DIGIT */
	{ "a X {}\r\nc NOOP\r\n", "E:a:invalid literal|C:c NOOP|" },
	{ "a X {+}\r\nc NOOP\r\n", "E:a:invalid literal|C:c NOOP|" },
	/* a literal is CHAR8: a NUL in it would cut the string short (a
	 * CREATE of "a\0b" made "a"); only literal8 may hold one */
	{ "a CREATE {3+}\r\na\0b\r\nc NOOP\r\n", "E:a:NUL in a literal|C:c NOOP|" },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		/* the one case with a NUL inside */
		if (strstr(cases[i].in, "{3+}\r\na"))
			len += 1 + strlen(cases[i].in + len + 1);
		for (int bw = 0; bw < 2; bw++) {
			struct buf out;
			buf_init(&out, 0);
			run(cases[i].in, len, bw, &out);
			size_t wlen = strlen(cases[i].want);
			if (strstr(cases[i].want, "~{3}"))
				wlen += 1 + strlen(cases[i].want + wlen + 1);
			bool ok = out.len == wlen && memcmp(out.data, cases[i].want, wlen) == 0;
			CHECK(ok);
			if (!ok)
				fprintf(stderr, "  case %zu (%s): got \"%.*s\"\n", i,
					bw ? "bytewise" : "whole", (int)out.len, out.data);
			buf_deinit(&out);
		}
	}
}

static void test_limits(void)
{
	struct buf out, in;
	/* a line over line_max (200) */
	buf_init(&in, 0);
	buf_append_str(&in, "a X ");
	for (int i = 0; i < 300; i++)
		buf_append_c(&in, 'x');
	buf_append_str(&in, "\r\nb NOOP\r\n");
	buf_init(&out, 0);
	run(in.data, in.len, false, &out);
	CHECK_STR(out.data, "E:a:line too long|C:b NOOP|");
	buf_deinit(&out);
	buf_deinit(&in);

	/* more than args_max (50) arguments */
	buf_init(&in, 0);
	buf_append_str(&in, "a X");
	for (int i = 0; i < 60; i++)
		buf_append_str(&in, " y");
	buf_append_str(&in, "\r\nb NOOP\r\n");
	buf_init(&out, 0);
	run(in.data, in.len, true, &out);
	CHECK_STR(out.data, "E:a:too many arguments|C:b NOOP|");
	buf_deinit(&out);
	buf_deinit(&in);
}

/* RFC 7888 5: under LITERAL-, "{n+}" over the limit is refused and its
 * bytes skipped (section 4, choice 1); synchronizing literals of any size
 * up to literal_max, and "{n+}" up to the limit, are taken as ever. */
static void test_literal_minus(void)
{
	static const struct pcase mcases[] = {
		{ "a LOGIN {10+}\r\n0123456789 {2+}\r\npw\r\n", "C:a LOGIN {10}0123456789 {2}pw|" },
		{ "a LOGIN {11+}\r\n01234567890 {2+}\r\npw\r\nc NOOP\r\n", "B:a|C:c NOOP|" },
		{ "a LOGIN {11}\r\n01234567890 {2+}\r\npw\r\n", "S|C:a LOGIN {11}01234567890 {2}pw|" },
		{ "a APPEND INBOX ~{11+}\r\n01234567890\r\nc NOOP\r\n", "B:a|C:c NOOP|" },
		/* over literal_max too: still the LITERAL- refusal */
		{ "a APPEND INBOX {101+}\r\n"
		  "0123456789012345678901234567890123456789012345678901234567890123456789"
		  "0123456789012345678901234567890\r\nc NOOP\r\n", "B:a|C:c NOOP|" },
	};
	for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
		for (int bw = 0; bw < 2; bw++) {
			struct buf out;
			buf_init(&out, 0);
			run_with(&minus_limits, mcases[i].in, strlen(mcases[i].in), bw, &out);
			CHECK_STR(out.data, mcases[i].want);
			buf_deinit(&out);
		}
	}
}

int main(void)
{
	RUN(test_cases);
	RUN(test_limits);
	RUN(test_literal_minus);
	return test_done();
}
