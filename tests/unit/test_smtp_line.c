/* The SMTP command line reader (smtp_line.h): line ends, the length limit
 * with the overlong line dropped up to its LF, NUL and bare CR; fed whole
 * and one byte at a time. */
#include "test.h"
#include "smtp/smtp_line.h"

#include <stdlib.h>
#include <event2/buffer.h>

#define MAX_OUT 8

/* What reading in until it runs dry gives: "=LINE" for a line, "!LONG" and
 * "!BAD" for refused ones, in order. */
struct line_case {
	const char *in;
	size_t in_len;		/* 0: strlen(in) */
	size_t max;
	const char *out[MAX_OUT];
	size_t rest;		/* bytes left in the buffer at the end */
	bool discarding;	/* the state at the end */
};

static const struct line_case cases[] = {
	{ "EHLO a\r\n", 0, 512, { "=EHLO a" }, 0, false },
	/* bare LF ends a command line too; the CR before it is dropped */
	{ "NOOP\n", 0, 512, { "=NOOP" }, 0, false },
	{ "\r\n", 0, 512, { "=" }, 0, false },
	{ "\n", 0, 512, { "=" }, 0, false },
	{ "NOOP\r\nQUIT\r\n", 0, 512, { "=NOOP", "=QUIT" }, 0, false },
	/* no LF yet: nothing, and the bytes stay */
	{ "NOOP", 0, 512, { NULL }, 4, false },
	{ "NOOP\r", 0, 512, { NULL }, 5, false },
	{ "NOOP\r\nQU", 0, 512, { "=NOOP" }, 2, false },
	/* the limit counts the LF: max 6 takes "ABCD\r\n" and "ABCDE\n" */
	{ "ABCD\r\n", 0, 6, { "=ABCD" }, 0, false },
	{ "ABCDE\n", 0, 6, { "=ABCDE" }, 0, false },
	{ "ABCDEF\n", 0, 6, { "!LONG" }, 0, false },
	{ "ABCDE\r\n", 0, 6, { "!LONG" }, 0, false },
	/* an overlong line is refused once, and the next one is read */
	{ "ABCDEFGHIJ\r\nNOOP\r\n", 0, 6, { "!LONG", "=NOOP" }, 0, false },
	/* more than max without a LF: dropped at once, refused at its LF */
	{ "ABCDEFGHIJ", 0, 6, { NULL }, 0, true },
	{ "ABCDEFGHIJKLMN\nNOOP\n", 0, 6, { "!LONG", "=NOOP" }, 0, false },
	/* NUL and a CR not before the LF: refused, the next line is read */
	{ "NO\0OP\r\nQUIT\r\n", 13, 512, { "!BAD", "=QUIT" }, 0, false },
	{ "NO\rOP\r\n", 0, 512, { "!BAD" }, 0, false },
	{ "NOOP\r\r\n", 0, 512, { "!BAD" }, 0, false },
	/* 8-bit bytes pass (SMTPUTF8 addresses) */
	{ "RCPT TO:<\xc3\xa9@example.com>\r\n", 0, 512,
	  { "=RCPT TO:<\xc3\xa9@example.com>" }, 0, false },
};

/* Reads every line out of in into got[]; returns how many. */
static size_t drain(struct evbuffer *in, size_t max, bool *discarding,
		    char got[MAX_OUT][64], size_t n)
{
	for (;;) {
		char *line = NULL;
		enum smtp_line_result r = smtp_line_read(in, max, discarding, &line);
		if (r == SMTP_LINE_MORE)
			return n;
		if (n >= MAX_OUT)
			return n;
		if (r == SMTP_LINE_OK) {
			snprintf(got[n++], 64, "=%s", line);
			free(line);
		} else {
			CHECK(line == NULL);
			snprintf(got[n++], 64, "%s", r == SMTP_LINE_TOO_LONG ? "!LONG" : "!BAD");
		}
	}
}

static void run_case(const struct line_case *c, bool bytewise)
{
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	struct evbuffer *in = evbuffer_new();
	bool discarding = false;
	char got[MAX_OUT][64];
	size_t n = 0;
	if (bytewise) {
		for (size_t i = 0; i < len; i++) {
			evbuffer_add(in, c->in + i, 1);
			n = drain(in, c->max, &discarding, got, n);
		}
	} else {
		evbuffer_add(in, c->in, len);
		n = drain(in, c->max, &discarding, got, n);
	}
	size_t want = 0;
	while (want < MAX_OUT && c->out[want] != NULL)
		want++;
	/* Byte by byte, an overlong line is never held: it is dropped at
	 * max + 1 bytes, so the end differs only in what is left over. */
	CHECK_INT(n, want);
	for (size_t i = 0; i < n && i < want; i++)
		CHECK_STR(got[i], c->out[i]);
	if (!bytewise || !c->discarding)
		CHECK_INT(evbuffer_get_length(in), c->rest);
	CHECK(discarding == c->discarding);
	if (n != want || discarding != c->discarding)
		fprintf(stderr, "  case \"%s\" (%s)\n", c->in, bytewise ? "bytewise" : "whole");
	evbuffer_free(in);
}

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], false);
		run_case(&cases[i], true);
	}
}

/* A client that never sends LF cannot grow the buffer past max. */
static void test_memory_bounded(void)
{
	struct evbuffer *in = evbuffer_new();
	bool discarding = false;
	char chunk[100];
	memset(chunk, 'A', sizeof(chunk));
	for (int i = 0; i < 1000; i++) {
		char *line = NULL;
		evbuffer_add(in, chunk, sizeof(chunk));
		CHECK_INT(smtp_line_read(in, 512, &discarding, &line), SMTP_LINE_MORE);
		CHECK(evbuffer_get_length(in) <= 512);
	}
	CHECK(discarding);
	char *line = NULL;
	evbuffer_add(in, "A\r\nNOOP\r\n", 9);
	CHECK_INT(smtp_line_read(in, 512, &discarding, &line), SMTP_LINE_TOO_LONG);
	CHECK(!discarding);
	CHECK_INT(smtp_line_read(in, 512, &discarding, &line), SMTP_LINE_OK);
	CHECK_STR(line, "NOOP");
	free(line);
	evbuffer_free(in);
}

int main(void)
{
	RUN(test_cases);
	RUN(test_memory_bounded);
	return test_done();
}
