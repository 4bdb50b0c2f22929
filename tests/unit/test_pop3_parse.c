/* POP3 command lines (pop3_parse.c, RFC 1939 3, RFC 2449 4, RFC 5034 4):
 * line ends and limits (255 octets, longer for AUTH and SASL responses),
 * NUL and bare CR, keyword and argument split, words, message numbers;
 * lines fed whole and one byte at a time. */
#include "test.h"
#include "pop3/pop3_private.h"
#include "core/buf.h"

#include <stdlib.h>
#include <event2/buffer.h>

/* Every result of reading in (fed step bytes at a time) as "=LINE",
 * "!LONG" or "!BAD", joined by "|". */
static char *read_all(const char *in, size_t len, size_t step, bool sasl)
{
	struct evbuffer *eb = evbuffer_new();
	struct buf out;
	buf_init(&out, 0);
	bool discarding = false;
	size_t pos = 0;
	for (;;) {
		char *line = NULL;
		enum pop3_line_result r = pop3_line_read(eb, sasl, &discarding, &line);
		if (r == POP3_LINE_MORE) {
			if (pos >= len)
				break;
			size_t n = len - pos < step ? len - pos : step;
			evbuffer_add(eb, in + pos, n);
			pos += n;
			continue;
		}
		if (out.len)
			buf_append_c(&out, '|');
		if (r == POP3_LINE_OK) {
			buf_printf(&out, "=%s", line);
			free(line);
		} else {
			buf_append_str(&out, r == POP3_LINE_TOO_LONG ? "!LONG" : "!BAD");
		}
	}
	evbuffer_free(eb);
	char *s = buf_steal(&out, NULL);
	return s ? s : calloc(1, 1);
}

static void check_lines(const char *in, size_t len, bool sasl, const char *want)
{
	for (size_t step = 1; step <= len + 1; step = step < 4 ? step + 1 : step * 3) {
		char *got = read_all(in, len, step, sasl);
		CHECK_STR(got, want);
		free(got);
	}
}

static void test_line_ends(void)
{
	check_lines("STAT\r\n", 6, false, "=STAT");
	check_lines("STAT\nLIST\r\n", 11, false, "=STAT|=LIST");
	check_lines("\r\n", 2, false, "=");
	check_lines("NOOP", 4, false, "");
	check_lines("NO\0OP\r\nSTAT\r\n", 13, false, "!BAD|=STAT");
	check_lines("NO\rOP\r\nSTAT\r\n", 13, false, "!BAD|=STAT");
	check_lines("STAT\r\r\n", 7, false, "!BAD");
}

static void test_line_limits(void)
{
	/* RFC 2449 4: 255 octets with CRLF: 253 + CRLF passes, 254 does not. */
	char line[POP3_SASL_LINE_MAX + 100];
	memset(line, 'A', 253);
	memcpy(line + 253, "\r\nSTAT\r\n", 8);
	char *got = read_all(line, 261, 7, false);
	CHECK(strncmp(got, "=AAAA", 5) == 0 && strlen(got) == 254 + 6);
	free(got);
	memset(line, 'A', 254);
	memcpy(line + 254, "\r\nSTAT\r\n", 8);
	check_lines(line, 262, false, "!LONG|=STAT");
	/* AUTH lines and SASL responses may be longer (RFC 5034 4). */
	memcpy(line, "AUTH PLAIN ", 11);
	got = read_all(line, 262, 5, false);
	CHECK(strncmp(got, "=AUTH PLAIN AAA", 15) == 0);
	free(got);
	got = read_all(line + 11, 251, 5, true);
	CHECK(strncmp(got, "=AAA", 4) == 0);
	free(got);
	size_t n = POP3_SASL_LINE_MAX + 10;
	memset(line, 'B', n);
	memcpy(line + n, "\r\nSTAT\r\n", 8);
	check_lines(line, n + 8, true, "!LONG|=STAT");
}

static void test_split(void)
{
	char l1[] = "LIST 1", l2[] = "STAT", l3[] = "PASS  two  spaces ", l4[] = "TOP 1 2 3";
	CHECK_STR(pop3_line_split(l1), "1");
	CHECK_STR(l1, "LIST");
	CHECK_STR(pop3_line_split(l2), "");
	char *arg = pop3_line_split(l3);
	CHECK_STR(arg, " two  spaces ");	/* PASS takes it as it is */
	pop3_trim_blanks(arg);
	CHECK_STR(arg, " two  spaces");
	char *argv[2];
	CHECK_INT(pop3_split_args(pop3_line_split(l4), argv, 2), -1);
	char a5[] = " 1  2 ";
	CHECK_INT(pop3_split_args(a5, argv, 2), 2);
	CHECK_STR(argv[0], "1");
	CHECK_STR(argv[1], "2");
	char a6[] = "";
	CHECK_INT(pop3_split_args(a6, argv, 1), 0);
}

static void test_msg_number(void)
{
	uint64_t n = 7;
	CHECK_INT(pop3_msg_number("1", &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(pop3_msg_number("4294967295", &n), 0);
	CHECK_INT(n, 4294967295LL);
	CHECK_INT(pop3_msg_number("99999999999", &n), -1);
	CHECK_INT(pop3_msg_number("18446744073709551617", &n), -1);
	CHECK_INT(pop3_msg_number("", &n), -1);
	CHECK_INT(pop3_msg_number("-1", &n), -1);
	CHECK_INT(pop3_msg_number("+1", &n), -1);
	CHECK_INT(pop3_msg_number("1x", &n), -1);
	CHECK_INT(pop3_msg_number(" 1", &n), -1);
}

int main(void)
{
	RUN(test_line_ends);
	RUN(test_line_limits);
	RUN(test_split);
	RUN(test_msg_number);
	return test_done();
}
