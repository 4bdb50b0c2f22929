/* mime/decode: base64, quoted-printable and charsets to UTF-8, on the
 * damaged input mail has; every case also fed one byte at a time. */
#include "test.h"
#include "mime/decode.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* Decodes whole, one byte at a time and in pieces of 3; all must agree. */
static char *b64(const char *in, size_t *len_r)
{
	struct buf whole, bytewise, threes;
	buf_init(&whole, 0);
	buf_init(&bytewise, 0);
	buf_init(&threes, 0);
	size_t n = strlen(in);
	CHECK(decode_base64(in, n, &whole) == 0);
	struct base64_decoder d;
	base64_decoder_init(&d);
	for (size_t i = 0; i < n; i++)
		CHECK(base64_decode_more(&d, in + i, 1, &bytewise) == 0);
	CHECK(base64_decode_finish(&d, &bytewise) == 0);
	base64_decoder_init(&d);
	for (size_t i = 0; i < n; i += 3)
		CHECK(base64_decode_more(&d, in + i, n - i < 3 ? n - i : 3, &threes) == 0);
	CHECK(base64_decode_finish(&d, &threes) == 0);
	CHECK(whole.len == bytewise.len && whole.len == threes.len);
	CHECK(whole.len == 0 || (memcmp(whole.data, bytewise.data, whole.len) == 0 &&
				 memcmp(whole.data, threes.data, whole.len) == 0));
	buf_deinit(&bytewise);
	buf_deinit(&threes);
	return buf_steal(&whole, len_r);
}

static void test_base64(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "aGVsbG8=", "hello" },
		{ "aGVsbG8", "hello" },			/* padding missing */
		{ "aGVsbA==", "hell" },
		{ "aGVsbA", "hell" },
		{ "aGVs", "hel" },
		{ "aGVs\r\nbG8=\r\n", "hello" },	/* line breaks */
		{ " a G V s b G 8 = ", "hello" },	/* spaces */
		{ "aGV*sb#G8=", "hello" },		/* junk is skipped */
		{ "aGVsbG8=\r\n--junk after the end", "hello" },
		{ "aGVsbA==\r\n___\r\nList footer\r\n", "hell" },
		{ "YQ==\r\nYmM=\r\n", "abc" },		/* every line padded */
		{ "aGk=aGk=", "hihi" },			/* concatenated blocks */
		{ "YQ==YmM=", "abc" },
		{ "=====", "" },
		{ "Q", "" },				/* 6 bits make no byte */
		{ "w6nDqA==", "\xc3\xa9\xc3\xa8" },
		{ "////", "\xff\xff\xff" },
		{ "++++", "\xfb\xef\xbe" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len;
		char *got = b64(cases[i].in, &len);
		size_t want = strlen(cases[i].out);
		CHECK_INT(len, want);
		if (len != want || memcmp(got, cases[i].out, len) != 0) {
			fprintf(stderr, "  base64 case %zu\n", i);
			CHECK(0);
		}
		free(got);
	}
	/* the junk counter */
	struct base64_decoder d;
	struct buf out;
	buf_init(&out, 0);
	base64_decoder_init(&d);
	base64_decode_more(&d, "aG*V\r\n s#bG8=", 13, &out);
	CHECK_INT(d.bad, 2);
	buf_deinit(&out);
	/* a full output buffer is the only error */
	buf_init(&out, 3);
	CHECK(decode_base64("aGVsbG8=", 8, &out) < 0);
	buf_deinit(&out);
}

static char *qp(const char *in, size_t *len_r, size_t *bad_r)
{
	struct buf whole, bytewise;
	buf_init(&whole, 0);
	buf_init(&bytewise, 0);
	size_t n = strlen(in);
	struct qp_decoder d;
	qp_decoder_init(&d);
	CHECK(qp_decode_more(&d, in, n, &whole) == 0);
	CHECK(qp_decode_finish(&d, &whole) == 0);
	*bad_r = d.bad;
	qp_decoder_init(&d);
	for (size_t i = 0; i < n; i++)
		CHECK(qp_decode_more(&d, in + i, 1, &bytewise) == 0);
	CHECK(qp_decode_finish(&d, &bytewise) == 0);
	CHECK(d.bad == *bad_r);
	CHECK(whole.len == bytewise.len &&
	      (whole.len == 0 || memcmp(whole.data, bytewise.data, whole.len) == 0));
	buf_deinit(&bytewise);
	return buf_steal(&whole, len_r);
}

static void test_qp(void)
{
	static const struct {
		const char *in, *out;
		size_t bad;
	} cases[] = {
		{ "", "", 0 },
		{ "plain text", "plain text", 0 },
		{ "caf=C3=A9", "caf\xc3\xa9", 0 },
		{ "caf=c3=a9", "caf\xc3\xa9", 0 },		/* lower-case hex */
		{ "soft=\r\nbreak", "softbreak", 0 },
		{ "soft=\nbreak", "softbreak", 0 },		/* bare LF */
		{ "soft= \t\r\nbreak", "softbreak", 0 },	/* white space after "=" */
		{ "end=", "end", 0 },				/* "=" at the very end */
		{ "line  \r\nnext\t\r\n", "line\r\nnext\r\n", 0 },	/* trailing white space */
		{ "line  \nnext", "line\nnext", 0 },
		{ "keep  inner  spaces", "keep  inner  spaces", 0 },
		{ "trail at end   ", "trail at end", 0 },
		{ "a =20\r\n", "a  \r\n", 0 },			/* encoded space stays */
		{ "bad =ZZ escape", "bad =ZZ escape", 1 },
		{ "bad =4", "bad =4", 1 },
		{ "bad =4x", "bad =4x", 1 },
		{ "x = y", "x = y", 1 },			/* "=" then white space then text */
		{ "a==3D", "a==", 1 },
		{ "cr\rinside", "cr\rinside", 0 },		/* a bare CR is text */
		{ "=\rX", "=\rX", 1 },
		{ "=0D=0A", "\r\n", 0 },
		{ "=00", "", 0 },				/* checked by length below */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len, bad;
		char *got = qp(cases[i].in, &len, &bad);
		size_t want = i == ARRAY_SIZE(cases) - 1 ? 1 : strlen(cases[i].out);
		CHECK_INT(len, want);
		if (len != want || memcmp(got, cases[i].out, len) != 0) {
			fprintf(stderr, "  qp case %zu: got \"%.*s\"\n", i, (int)len, got);
			CHECK(0);
		}
		CHECK_INT(bad, cases[i].bad);
		free(got);
	}
	/* A very long run of spaces is not held back without bound. */
	struct buf in, out;
	buf_init(&in, 0);
	buf_init(&out, 0);
	for (int i = 0; i < 5000; i++)
		buf_append_c(&in, ' ');
	buf_append_str(&in, "x");
	CHECK(decode_qp(in.data, in.len, &out) == 0);
	CHECK_INT(out.len, 5001);
	buf_deinit(&in);
	buf_deinit(&out);
}

static char *conv(const char *charset, const char *in, size_t n, int *ret_r, size_t chunk)
{
	struct buf out;
	buf_init(&out, 0);
	if (chunk == 0) {
		*ret_r = charset_to_utf8(charset, in, n, &out);
	} else {
		struct charset_conv *c = charset_conv_new(charset);
		*ret_r = c == NULL ? -2 : 0;
		if (c != NULL) {
			for (size_t i = 0; i < n; i += chunk)
				CHECK(charset_conv_more(c, in + i, n - i < chunk ? n - i : chunk, &out) == 0);
			CHECK(charset_conv_finish(c, &out) == 0);
			charset_conv_free(&c);
			CHECK(c == NULL);
		}
	}
	return buf_steal(&out, NULL);
}

static void test_charset(void)
{
	static const struct {
		const char *charset, *in, *out;
		int ret;
	} cases[] = {
		{ "utf-8", "caf\xc3\xa9", "caf\xc3\xa9", 0 },
		{ "UTF-8", "bad \xff byte", "bad \xef\xbf\xbd byte", 0 },
		{ "utf-8", "cut \xc3", "cut \xef\xbf\xbd", 0 },	/* incomplete at the end */
		{ "iso-8859-1", "caf\xe9", "caf\xc3\xa9", 0 },
		{ "ISO-8859-15", "\xa4", "\xe2\x82\xac", 0 },
		{ "windows-1252", "\x80", "\xe2\x82\xac", 0 },
		{ "us-ascii", "plain", "plain", 0 },
		{ "us-ascii", "8bit \xc3\xa9", "8bit \xc3\xa9", 0 },	/* mislabelled UTF-8 kept */
		{ "koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 0 },
		{ "shift_jis", "\x93\xfa\x96\x7b", "\xe6\x97\xa5\xe6\x9c\xac", 0 },
		{ "iso-2022-jp", "\x1b$BF|K\\\x1b(B", "\xe6\x97\xa5\xe6\x9c\xac", 0 },
		{ "utf-7", "Hi +ZeVnLIqe-", "Hi \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 0 },
		{ "x-no-such-charset", "abc", "", -2 },
		{ "utf-8//TRANSLIT", "abc", "", -2 },		/* no iconv options */
		{ "", "abc", "", -2 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t chunks[] = { 0, 1, 2, 5 };
		for (size_t c = 0; c < ARRAY_SIZE(chunks); c++) {
			int ret;
			char *got = conv(cases[i].charset, cases[i].in, strlen(cases[i].in), &ret, chunks[c]);
			CHECK_INT(ret, cases[i].ret);
			if (strcmp(got, cases[i].out) != 0) {
				fprintf(stderr, "  charset case %zu chunk %zu: got \"%s\"\n", i, chunks[c], got);
				CHECK(0);
			}
			free(got);
		}
	}
	struct charset_conv *c = charset_conv_new("utf-8");
	struct buf out;
	buf_init(&out, 0);
	charset_conv_more(c, "\xff\xfe ok \xc3", 7, &out);
	charset_conv_finish(c, &out);
	CHECK_INT(charset_conv_bad(c), 3);
	CHECK_STR(out.data, "\xef\xbf\xbd\xef\xbf\xbd ok \xef\xbf\xbd");
	charset_conv_free(&c);
	buf_deinit(&out);
}

/* Quoted-printable encoding: exact cases, then random data must decode
 * back (line ends as CRLF) with lines of at most 76 characters. */
static void test_qp_encode(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "caf\xc3\xa9\r\n", "caf=C3=A9\r\n" },
		{ "a=b\n", "a=3Db\r\n" },
		{ "trailing \r\nx\t\r\n", "trailing=20\r\nx=09\r\n" },
		{ "in between\r\n", "in between\r\n" },
		{ "end ", "end=20" },
		{ "bare\rcr", "bare=0Dcr" },
		{ "\x01", "=01" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct qp_encoder e;
		struct buf out;
		qp_encoder_init(&e);
		buf_init(&out, 0);
		CHECK(qp_encode_more(&e, cases[i].in, strlen(cases[i].in), &out) == 0);
		CHECK(qp_encode_finish(&e, &out) == 0);
		CHECK(out.len == strlen(cases[i].out) && memcmp(out.data ? out.data : "", cases[i].out, out.len) == 0);
		buf_deinit(&out);
	}
	unsigned int seed = 7;
	for (int round = 0; round < 200; round++) {
		unsigned char in[600];
		size_t n = (size_t)(rand_r(&seed) % sizeof(in));
		for (size_t i = 0; i < n; i++) {
			int k = rand_r(&seed) % 10;
			in[i] = k < 5 ? (unsigned char)('a' + rand_r(&seed) % 26) :
				k < 7 ? ' ' : k < 8 ? '\n' : (unsigned char)(rand_r(&seed) % 256);
			if (in[i] == '\r')
				in[i] = 'r';	/* bare CRs come back as CR: no line end */
		}
		/* Split anywhere: the output must not depend on it. */
		size_t cut = n ? (size_t)(rand_r(&seed) % n) : 0;
		struct qp_encoder e;
		struct buf enc, dec, want;
		qp_encoder_init(&e);
		buf_init(&enc, 0);
		buf_init(&dec, 0);
		buf_init(&want, 0);
		CHECK(qp_encode_more(&e, in, cut, &enc) == 0);
		CHECK(qp_encode_more(&e, in + cut, n - cut, &enc) == 0);
		CHECK(qp_encode_finish(&e, &enc) == 0);
		for (size_t i = 0; i < n; i++) {
			if (in[i] == '\n')
				buf_append_c(&want, '\r');
			buf_append_c(&want, (char)in[i]);
		}
		size_t col = 0;
		for (size_t i = 0; i < enc.len; i++) {
			unsigned char c = (unsigned char)enc.data[i];
			CHECK(c < 0x80 && (c >= 32 || c == '\t' || c == '\r' || c == '\n'));
			col = c == '\n' ? 0 : col + 1;
			CHECK(col <= 77);	/* 76 characters and the CR */
		}
		CHECK(decode_qp(enc.data ? enc.data : "", enc.len, &dec) == 0);
		CHECK(dec.len == want.len && memcmp(dec.data ? dec.data : "", want.data ? want.data : "", dec.len) == 0);
		buf_deinit(&enc);
		buf_deinit(&dec);
		buf_deinit(&want);
	}
}

/* IMAP SEARCH folding: Unicode lower case, bad bytes kept. */
static void test_fold(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "ABC xyz 123", "abc xyz 123" },
		{ "\xc3\x9c" "BER", "\xc3\xbc" "ber" },		/* ÜBER */
		{ "\xce\xa3\xce\x91", "\xcf\x83\xce\xb1" },	/* ΣΑ */
		{ "\xff\xc3" "A", "\xff\xc3" "a" },			/* not UTF-8 */
		{ "\xed\xa0\x80", "\xed\xa0\x80" },		/* a surrogate */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len;
		char *got = text_fold(cases[i].in, strlen(cases[i].in), &len);
		CHECK(len == strlen(cases[i].out) && strcmp(got, cases[i].out) == 0);
		free(got);
	}
	const char *hay = "Gr\xc3\xbc\xc3\x9f" "e aus Z\xc3\xbc" "rich";
	CHECK(text_contains_fold(hay, strlen(hay), "Z\xc3\x9c" "RICH"));
	CHECK(!text_contains_fold("abc", 3, "abd"));
	CHECK(text_contains_fold("abc", 3, ""));
}

int main(void)
{
	RUN(test_base64);
	RUN(test_qp);
	RUN(test_fold);
	RUN(test_qp_encode);
	RUN(test_charset);
	return test_done();
}
