/* mime/header: the header block, field iteration, unfolding, lookups and
 * RFC 2047 decoding, on the malformed input real mail contains. */
#include "test.h"
#include "mime/header.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

static void test_block_len(void)
{
	static const struct {
		const char *msg;
		size_t want;
	} cases[] = {
		{ "A: b\r\n\r\nbody", 8 },
		{ "A: b\n\nbody", 6 },
		{ "A: b\n\r\nbody", 7 },		/* mixed line ends */
		{ "A: b\r\nC: d\r\n", 12 },		/* no separator: all of it */
		{ "A: b", 4 },
		{ "", 0 },
		{ "\r\nbody", 2 },			/* empty header */
		{ "\nbody", 1 },
		{ "A: b\r\n \r\n\r\nx", 11 },		/* a blank line is a fold */
		{ "A: b\r\n\r", 7 },			/* a lone CR is not an empty line */
		{ "A: b\r\n\r\n\r\n", 8 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t got = header_block_len(cases[i].msg, strlen(cases[i].msg));
		CHECK_INT(got, cases[i].want);
		if (got != cases[i].want)
			fprintf(stderr, "  case %zu\n", i);
	}
}

/* Runs header_next() over msg and writes what it returns as
 * "Name|value;" for a field (CR and LF shown as \r \n) and "!;" for a line
 * that is not a field. */
static char *walk(const char *msg, size_t len)
{
	struct buf b;
	buf_init(&b, 0);
	struct header_field f;
	size_t pos = 0;
	int r, steps = 0;
	while ((r = header_next(msg, len, &pos, &f)) != 0 && steps++ < 100) {
		CHECK(pos <= len);
		if (r < 0) {
			buf_append_str(&b, "!;");
			continue;
		}
		CHECK_INT(r, 1);
		buf_append(&b, f.name, f.name_len);
		buf_append_c(&b, '|');
		for (size_t i = 0; i < f.value_len; i++) {
			if (f.value[i] == '\r')
				buf_append_str(&b, "\\r");
			else if (f.value[i] == '\n')
				buf_append_str(&b, "\\n");
			else
				buf_append_c(&b, f.value[i]);
		}
		buf_append_c(&b, ';');
	}
	buf_append(&b, "", 0);	/* terminated even when empty */
	/* At the end, it stays at the end. */
	size_t end = pos;
	CHECK_INT(header_next(msg, len, &pos, &f), 0);
	CHECK_INT(pos, end);
	char *s = buf_steal(&b, NULL);
	return s;
}

static void test_next(void)
{
	static const struct {
		const char *msg;
		const char *want;
	} cases[] = {
		{ "From: a\r\nTo: b\r\n\r\nbody", "From| a;To| b;" },
		{ "From: a\nTo: b\n\nbody", "From| a;To| b;" },			/* bare LF */
		{ "Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\n",
		  "Subject| one\\r\\n two\\r\\n\tthree;X| y;" },			/* folding */
		{ "Subject: one\n two\nX: y\n", "Subject| one\\n two;X| y;" },
		{ "A: 1\r\nB: 2", "A| 1;B| 2;" },				/* no separator */
		{ "A: 1\r\nB: 2\r", "A| 1;B| 2;" },
		{ "From a\r\nTo: b\r\n\r\n", "!;To| b;" },			/* no colon */
		{ "From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\n",
		  "!;Subject| x;" },						/* mbox */
		{ "X-Empty:\r\nY:\r\nZ: \r\n\r\n", "X-Empty|;Y|;Z| ;" },	/* empty values */
		{ "Subject : hi\r\n\r\n", "Subject| hi;" },			/* obs-optional */
		{ "Subject\t: hi\r\n\r\n", "Subject| hi;" },
		{ " cont\r\nA: b\r\n\r\n", "!;A| b;" },			/* fold with no field */
		{ "Bad Name: x\r\nA\x01: y\r\nOk: z\r\n", "!;!;Ok| z;" },	/* bad names */
		{ "\xc3\xa9t\xc3\xa9: x\r\nOk: z\r\n", "!;Ok| z;" },		/* 8-bit name */
		{ ": x\r\nA: b\r\n", "!;A| b;" },				/* empty name */
		{ "junk\r\n more: junk\r\nA: b\r\n", "!;A| b;" },		/* skipped with its folds */
		{ "A: b\r\n \r\nC: d\r\n\r\n", "A| b\\r\\n ;C| d;" },		/* blank fold */
		{ "A: b\r\n\r\nC: d\r\n", "A| b;" },				/* stops at the body */
		{ "A: b\n\nC: d\n", "A| b;" },
		{ "Subject\r\n : x\r\n", "!;" },				/* colon on the fold */
		{ "\r\n", "" },
		{ "", "" },
		{ "A: b: c\r\n", "A| b: c;" },
		{ "A:b\r\n", "A|b;" },
		{ "A: x\ry\r\n", "A| x\\ry;" },				/* a lone CR stays */
		{ "A: b\r\n\r", "A| b;!;" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = walk(cases[i].msg, strlen(cases[i].msg));
		CHECK_STR(got, cases[i].want);
		if (strcmp(got, cases[i].want) != 0)
			fprintf(stderr, "  case %zu\n", i);
		free(got);
	}

	/* A NUL in a value is data; the length decides. */
	static const char nul[] = "A: x\0y\r\nB: z\r\n";
	char *got = walk(nul, sizeof(nul) - 1);
	CHECK(memcmp(got, "A| x\0y;B| z;", 12) == 0);
	free(got);
}

/* Every prefix of a message, each in a buffer of exactly its size, so the
 * sanitizer build catches a read past len; and the fields found in a prefix
 * are never more than in the whole. */
static void test_prefixes(void)
{
	static const char msg[] =
		"Received: from a\r\n\tby b\r\nFrom: x\nbroken line\r\n"
		"Subject: =?utf-8?q?h=C3=A9?=\r\n  more\r\n\r\nbody\r\n";
	size_t len = sizeof(msg) - 1;
	for (size_t n = 0; n <= len; n++) {
		char *p = xmalloc(n ? n : 1);
		memcpy(p, msg, n);
		size_t block = header_block_len(p, n);
		CHECK(block <= n);
		char *fields = walk(p, block);
		CHECK(header_count(p, n, "Received") <= 1);
		char *s = header_get(p, n, "Subject");
		if (s != NULL) {
			char *d = header_decode_2047(s);
			free(d);
		}
		free(s);
		free(fields);
		free(p);
	}
}

static void test_unfold(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{ " one\r\n two", 10, "one two" },
		{ "\ta\n\tb ", 6, "a\tb" },
		{ "", 0, "" },
		{ "  \t ", 4, "" },
		{ "a\0b", 3, "a b" },		/* NUL becomes a space */
		{ "a\rb", 3, "a b" },		/* so does a lone CR */
		{ " x\r\n \r\n y", 9, "x  y" },
		{ "a\r\n", 3, "a" },
		{ "abc", 2, "ab" },		/* the length is obeyed */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = header_unfold(cases[i].in, cases[i].len);
		CHECK_STR(got, cases[i].want);
		free(got);
	}
}

static void test_get_count(void)
{
	static const char msg[] =
		"Received: a\r\n"
		"received: b\r\n"
		"RECEIVED:\r\n c\r\n"
		"Subject: Hi\r\n there  \r\n"
		"From: x\r\n"
		"X-Empty:\r\n"
		"\r\n"
		"Received: in the body\r\n"
		"To: not a header\r\n";
	size_t len = sizeof(msg) - 1;
	static const struct {
		const char *name;
		const char *value;	/* first one, NULL if none */
		size_t count;
	} cases[] = {
		{ "Received", "a", 3 },
		{ "received", "a", 3 },
		{ "Subject", "Hi there", 1 },
		{ "SUBJECT", "Hi there", 1 },
		{ "From", "x", 1 },
		{ "X-Empty", "", 1 },
		{ "To", NULL, 0 },		/* in the body only */
		{ "Receive", NULL, 0 },		/* no prefix match */
		{ "Receivedx", NULL, 0 },
		{ "", NULL, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *v = header_get(msg, len, cases[i].name);
		CHECK_STR(v, cases[i].value);
		free(v);
		CHECK_INT(header_count(msg, len, cases[i].name), cases[i].count);
		/* The same on the header block alone. */
		size_t block = header_block_len(msg, len);
		CHECK_INT(header_count(msg, block, cases[i].name), cases[i].count);
	}

	/* No body separator, bare LF, and nothing at all. */
	static const char nosep[] = "Received: 1\nReceived: 2\nReceived: 3";
	CHECK_INT(header_count(nosep, sizeof(nosep) - 1, "received"), 3);
	char *v = header_get(nosep, sizeof(nosep) - 1, "Received");
	CHECK_STR(v, "1");
	free(v);
	CHECK_INT(header_count(NULL, 0, "Received"), 0);
	CHECK(header_get(NULL, 0, "Received") == NULL);
	/* A broken line before the field does not hide it. */
	static const char broken[] = "garbage\r\nSubject: ok\r\n\r\n";
	v = header_get(broken, sizeof(broken) - 1, "Subject");
	CHECK_STR(v, "ok");
	free(v);
}

static void test_decode_2047(void)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		/* B and Q, charsets */
		{ "=?UTF-8?B?w6l0w6k=?=", "\xc3\xa9t\xc3\xa9" },
		{ "=?utf-8?b?w6l0w6k?=", "\xc3\xa9t\xc3\xa9" },		/* no padding */
		{ "=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9" },
		{ "=?utf-8?q?caf=c3=a9?=", "caf\xc3\xa9" },			/* lower-case hex */
		{ "=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard" },
		{ "=?iso-8859-1?q?this=20is=20some=20text?=", "this is some text" },
		{ "=?US-ASCII?Q?Keith_Moore?=", "Keith Moore" },
		{ "=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore" },		/* RFC 2231 5 */
		{ "=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		{ "=?UTF-16?B?//5oAOkAbABsAG8AIAB3APYAcgBsAGQA?=",
		  "h\xc3\xa9llo w\xc3\xb6rld" },
		{ "=?utf-8?q?" "?=", "" },						/* empty text */
		/* RFC 2047 8, the white space examples */
		{ "(=?ISO-8859-1?Q?a?=)", "(a)" },
		{ "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
		{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)" },
		{ "(=?ISO-8859-1?Q?a_b?=)", "(a b)" },
		{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)" },
		/* adjacency across charsets, and text between words */
		{ "=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?=", "\xc3\xa9\xc3\xa9" },
		{ "=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b" },
		{ "Re: =?utf-8?q?h=C3=A9?= there", "Re: h\xc3\xa9 there" },
		{ "foo=?utf-8?q?bar?=baz", "foobarbaz" },
		{ "=?utf-8?q?a?==?utf-8?q?b?=", "ab" },
		/* a character split between two words */
		{ "=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "\xc3\xa9" },
		{ "=?UTF-8?B?w6nD?= =?UTF-8?B?qQ==?=", "\xc3\xa9\xc3\xa9" },
		/* unknown charsets stay, with the white space next to them */
		{ "=?x-unknown?Q?abc?=", "=?x-unknown?Q?abc?=" },
		{ "=?x-unknown?Q?a?= =?utf-8?q?b?=", "=?x-unknown?Q?a?= b" },
		{ "=?utf-8?q?a?= =?x-unknown?Q?b?=", "a =?x-unknown?Q?b?=" },
		{ "=?utf-8//TRANSLIT?q?a?=", "=?utf-8//TRANSLIT?q?a?=" },
		{ "=?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?q?a?=",
		  "=?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?q?a?=" },
		/* malformed words stay */
		{ "=?utf-8?x?abc?=", "=?utf-8?x?abc?=" },
		{ "=?utf-8?q?abc", "=?utf-8?q?abc" },
		{ "=?utf-8?q?abc?", "=?utf-8?q?abc?" },
		{ "=?utf-8?q?a b?=", "=?utf-8?q?a b?=" },
		{ "=??q?a?=", "=??q?a?=" },
		{ "=?utf-8?q?=Z1?=", "=?utf-8?q?=Z1?=" },
		{ "=?utf-8?q?=4?=", "=?utf-8?q?=4?=" },
		{ "=?utf-8?b?!!!!?=", "=?utf-8?b?!!!!?=" },
		{ "=?utf-8?b?Y?=", "=?utf-8?b?Y?=" },
		{ "=?utf-8?b?YQ=?=", "=?utf-8?b?YQ=?=" },
		{ "=?utf-8?b?YQ==?=", "a" },
		{ "=?utf-8?b?YQ===?=", "=?utf-8?b?YQ===?=" },
		{ "=?utf-8?b?Y=Q=?=", "=?utf-8?b?Y=Q=?=" },
		{ "=?utf-8?q?=FF?=", "=?utf-8?q?=FF?=" },			/* not UTF-8 */
		{ "=?utf-8?q?=E6=97?=", "=?utf-8?q?=E6=97?=" },			/* cut short */
		{ "=?utf-8?q?=C3?= =?utf-8?q?=FF?= x", "=?utf-8?q?=C3?= =?utf-8?q?=FF?= x" },
		/* a malformed word does not hide a good one inside it */
		{ "=?utf-8?q?=?utf-8?q?ok?=", "=?utf-8?q?ok" },
		/* no words */
		{ "plain text", "plain text" },
		{ "", "" },
		{ "a =? b ?= c", "a =? b ?= c" },
		{ "=?", "=?" },
		{ "=", "=" },
		{ "8-bit \xc3\xa9 stays", "8-bit \xc3\xa9 stays" },
		/* decoded line breaks and NUL cannot leave the word */
		{ "=?utf-8?q?a=0D=0Ab?=", "a  b" },
		{ "=?utf-8?q?a=00b?=", "a b" },
		{ "=?utf-8?b?YQpi?=", "a b" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = header_decode_2047(cases[i].in);
		CHECK_STR(got, cases[i].want);
		if (strcmp(got, cases[i].want) != 0)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i].in);
		free(got);
	}
}

/* Many words and many near-words: the output is right and the work stays
 * linear (this would take minutes if it were not). */
static void test_decode_2047_large(void)
{
	struct buf in, want;
	buf_init(&in, 0);
	buf_init(&want, 0);
	for (int i = 0; i < 20000; i++) {
		buf_append_str(&in, "=?utf-8?q?x?= ");
		buf_append_c(&want, 'x');
	}
	buf_append_str(&want, " ");
	char *got = header_decode_2047(in.data);
	CHECK_STR(got, want.data);
	free(got);

	buf_reset(&in);
	for (int i = 0; i < 100000; i++)
		buf_append_str(&in, "=?a?q?");
	got = header_decode_2047(in.data);
	CHECK_STR(got, in.data);
	free(got);

	/* Many charsets nobody knows. */
	buf_reset(&in);
	for (int i = 0; i < 2000; i++)
		buf_printf(&in, "=?x-%d?q?a?= ", i);
	got = header_decode_2047(in.data);
	CHECK_STR(got, in.data);
	free(got);
	buf_deinit(&in);
	buf_deinit(&want);
}

int main(void)
{
	RUN(test_block_len);
	RUN(test_next);
	RUN(test_prefixes);
	RUN(test_unfold);
	RUN(test_get_count);
	RUN(test_decode_2047);
	RUN(test_decode_2047_large);
	return test_done();
}
