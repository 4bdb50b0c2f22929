/* mime/mime, mime/mime_imap: the MIME parser, ENVELOPE, BODY and
 * BODYSTRUCTURE, and the part ranges blob.
 *
 * The oracle is Dovecot: the .expected files in tests/data/mime hold what Dovecot 2.3
 * answered for every message of the shared corpus and of our own cases
 * (tests/data/mime/cases/), made by tests/data/mime/make_expected.py. Our
 * output must be the same bytes, except where DIFFERENCES.md says (and
 * make_expected.py applies that to the files).
 *
 * Every message is also parsed as it is and with LF turned into CRLF, whole,
 * one byte at a time and in random pieces: the tree and every output must
 * not depend on the split. */
#include "test.h"
#include "mime/mime.h"
#include "mime/mime_imap.h"
#include "core/buf.h"
#include "core/util.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *data_dir;	/* tests/data/mime */
static const char *corpus_dir;	/* shared/testdata/mime-corpus, or NULL */

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	struct buf b;
	buf_init(&b, 0);
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(&b, tmp, n);
	fclose(f);
	return buf_steal(&b, len_r);
}

static char *lf_to_crlf(const char *s, size_t len, size_t *len_r)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			buf_append_c(&b, '\r');
		buf_append_c(&b, s[i]);
	}
	return buf_steal(&b, len_r);
}

static bool has_crlf(const char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n')
			return true;
	}
	return false;
}

/* Everything a parse gives, as one string: the outputs, the blob, flags,
 * and every part's ranges. Two parses agree when these agree. */
static char *describe(const struct mime_message *msg)
{
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "ENVELOPE ");
	mime_envelope(msg, &b);
	buf_append_str(&b, "\r\nBODY ");
	mime_body(msg, &b);
	buf_append_str(&b, "\r\nBODYSTRUCTURE ");
	mime_bodystructure(msg, &b);
	buf_append_str(&b, "\r\n");
	buf_printf(&b, "flags=%x parts=%zu size=%llu\n", mime_message_flags(msg),
		   mime_message_part_count(msg), (unsigned long long)mime_message_size(msg));
	struct buf blob;
	buf_init(&blob, 0);
	mime_parts_serialize(msg, &blob);
	for (size_t i = 0; i < blob.len; i++)
		buf_printf(&b, "%02x", (unsigned char)blob.data[i]);
	buf_deinit(&blob);
	const struct mime_search_fields *sf = mime_message_search_fields(msg);
	buf_printf(&b, "\nsubject=%s from=%s date=%lld/%d/%d sort_from=%s display_from=%s\n",
		   sf->subject ? sf->subject : "-", sf->from ? sf->from : "-",
		   (long long)sf->date, sf->date_tz, sf->date_valid,
		   sf->sort_from ? sf->sort_from : "-", sf->display_from ? sf->display_from : "-");
	return buf_steal(&b, NULL);
}

/* The first three lines of describe(): what the .expected files hold. */
static char *imap_outputs(const struct mime_message *msg, size_t *len_r)
{
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "ENVELOPE ");
	CHECK(mime_envelope(msg, &b) == 0);
	buf_append_str(&b, "\r\nBODY ");
	CHECK(mime_body(msg, &b) == 0);
	buf_append_str(&b, "\r\nBODYSTRUCTURE ");
	CHECK(mime_bodystructure(msg, &b) == 0);
	buf_append_str(&b, "\r\n");
	return buf_steal(&b, len_r);
}

static struct mime_message *parse_split(const char *data, size_t len, size_t chunk,
					unsigned int *seed)
{
	struct mime_parser *p = mime_parser_new(NULL);
	size_t i = 0;
	while (i < len) {
		size_t n = chunk;
		if (seed != NULL)
			n = 1 + (size_t)(rand_r(seed) % 97);
		if (n > len - i)
			n = len - i;
		mime_parser_feed(p, data + i, n);
		i += n;
	}
	struct mime_message *msg;
	mime_parser_finish(&p, &msg);
	CHECK(p == NULL);
	return msg;
}

/* Sections of every part, by walking the tree as RFC 3501 6.4.5 numbers
 * it, must find the ranges the tree has. */
static void check_sections(const struct mime_message *msg, const char *name)
{
	struct buf blob;
	buf_init(&blob, 0);
	CHECK(mime_parts_serialize(msg, &blob) == 0);
	struct mime_section s;
	const struct mime_part *root = mime_message_root(msg);

	CHECK(mime_parts_lookup(blob.data, blob.len, "", &s) == 0);
	CHECK(s.range.start == 0 && s.range.len == mime_message_size(msg));
	CHECK(mime_parts_lookup(blob.data, blob.len, "HEADER", &s) == 0);
	struct mime_range h = mime_part_header(root), bd = mime_part_body(root);
	CHECK(s.range.start == h.start && s.range.len == h.len);
	CHECK(mime_parts_lookup(blob.data, blob.len, "TEXT", &s) == 0);
	CHECK(s.range.start == bd.start && s.range.len == bd.len);
	CHECK(mime_parts_lookup(blob.data, blob.len, "MIME", &s) < 0);
	CHECK(mime_parts_lookup(blob.data, blob.len, "0", &s) < 0);
	CHECK(mime_parts_lookup(blob.data, blob.len, "1.", &s) < 0);
	CHECK(mime_parts_lookup(blob.data, blob.len, "x", &s) < 0);

	/* Walk: (part, its section). A message's parts are its multipart's
	 * children, or itself as 1. */
	struct item {
		const struct mime_part *part;
		char sec[256];
	} *stack = xmalloc(sizeof(*stack) * (mime_message_part_count(msg) + 2));
	size_t n = 0;
	const struct mime_part *top = root;
	if (mime_part_kind(top) == MIME_KIND_MULTIPART) {
		int k = 1;
		for (const struct mime_part *c = mime_part_first_child(top); c; c = mime_part_next(c)) {
			stack[n].part = c;
			snprintf(stack[n].sec, sizeof(stack[n].sec), "%d", k++);
			n++;
		}
	} else {
		stack[n].part = top;
		strcpy(stack[n].sec, "1");
		n++;
	}
	int checked = 0;
	/* A lookup walks the blob, so all sections of a huge message would
	 * make the test quadratic: the first few hundred do. */
	while (n > 0 && checked < 300) {
		struct item it = stack[--n];
		if (strlen(it.sec) > 200)
			continue;
		struct mime_range hr = mime_part_header(it.part), br = mime_part_body(it.part);
		CHECK(mime_parts_lookup(blob.data, blob.len, it.sec, &s) == 0);
		if (s.range.start != br.start || s.range.len != br.len) {
			fprintf(stderr, "%s: section %s body range differs\n", name, it.sec);
			CHECK(0);
		}
		char sec2[300];
		snprintf(sec2, sizeof(sec2), "%s.MIME", it.sec);
		CHECK(mime_parts_lookup(blob.data, blob.len, sec2, &s) == 0);
		CHECK(s.range.start == hr.start && s.range.len == hr.len);
		checked++;
		const struct mime_part *inner = NULL;
		if (mime_part_kind(it.part) == MIME_KIND_MESSAGE) {
			const struct mime_part *m = mime_part_first_child(it.part);
			struct mime_range mh = mime_part_header(m), mb = mime_part_body(m);
			snprintf(sec2, sizeof(sec2), "%s.HEADER", it.sec);
			CHECK(mime_parts_lookup(blob.data, blob.len, sec2, &s) == 0);
			CHECK(s.range.start == mh.start && s.range.len == mh.len);
			snprintf(sec2, sizeof(sec2), "%s.TEXT", it.sec);
			CHECK(mime_parts_lookup(blob.data, blob.len, sec2, &s) == 0);
			CHECK(s.range.start == mb.start && s.range.len == mb.len);
			if (mime_part_kind(m) == MIME_KIND_MULTIPART) {
				inner = m;
			} else {
				stack[n].part = m;
				snprintf(stack[n].sec, sizeof(stack[n].sec), "%s.1", it.sec);
				n++;
			}
		} else if (mime_part_kind(it.part) == MIME_KIND_MULTIPART) {
			inner = it.part;
		} else {
			snprintf(sec2, sizeof(sec2), "%s.HEADER", it.sec);
			CHECK(mime_parts_lookup(blob.data, blob.len, sec2, &s) < 0);
			snprintf(sec2, sizeof(sec2), "%s.1", it.sec);
			CHECK(mime_parts_lookup(blob.data, blob.len, sec2, &s) < 0);
		}
		if (inner != NULL) {
			int k = 1;
			for (const struct mime_part *c = mime_part_first_child(inner); c;
			     c = mime_part_next(c)) {
				stack[n].part = c;
				snprintf(stack[n].sec, sizeof(stack[n].sec), "%s.%d", it.sec, k++);
				n++;
			}
			snprintf(sec2, sizeof(sec2), "%s.%d", it.sec, k);
			CHECK(mime_parts_lookup(blob.data, blob.len, sec2, &s) < 0);
		}
	}
	CHECK(checked > 0 || (mime_part_kind(root) == MIME_KIND_MULTIPART &&
			      mime_part_first_child(root) == NULL));
	free(stack);
	buf_deinit(&blob);
}

/* Ranges nest: a part lies in its parent's body, children in order. */
static void check_ranges(const struct mime_message *msg, const char *name)
{
	const struct mime_part *root = mime_message_root(msg);
	CHECK(mime_part_header(root).start == 0);
	const struct mime_part *part = root;
	while (part != NULL) {
		struct mime_range h = mime_part_header(part), b = mime_part_body(part);
		CHECK(h.start + h.len == b.start);
		CHECK(b.start + b.len <= mime_message_size(msg));
		const struct mime_part *par = mime_part_parent(part);
		if (par != NULL) {
			struct mime_range pb = mime_part_body(par);
			if (!(h.start >= pb.start && b.start + b.len <= pb.start + pb.len)) {
				fprintf(stderr, "%s: part outside its parent\n", name);
				CHECK(0);
			}
		}
		const struct mime_part *next = mime_part_next(part);
		if (next != NULL)
			CHECK(mime_part_header(next).start >= b.start + b.len);
		/* pre-order walk */
		if (mime_part_first_child(part) != NULL) {
			part = mime_part_first_child(part);
			continue;
		}
		while (part != NULL && mime_part_next(part) == NULL)
			part = mime_part_parent(part);
		if (part != NULL)
			part = mime_part_next(part);
	}
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + i * 2, "%02x", md[i]);
}

/* Parses one message in every way and compares with the expected file. */
static void check_message(const char *name, const char *data, size_t len,
			  const char *expected, size_t expected_len, const char *expected_sha)
{
	size_t clen;
	char *crlf = lf_to_crlf(data, len, &clen);
	bool crlf_differs = clen != len;
	const char *forms[2] = { data, crlf };
	size_t lens[2] = { len, clen };
	/* What was sent to Dovecot: CRLF files as they are, LF-only ones
	 * converted. Both forms must give Dovecot's answer, since sizes
	 * count a bare LF as CRLF. */
	bool delivered_as_is = has_crlf(data, len);
	for (int f = 0; f < (crlf_differs ? 2 : 1); f++) {
		const char *d = forms[f];
		size_t n = lens[f];
		struct mime_message *whole = mime_parse(d, n, NULL);
		char *want = describe(whole);
		check_ranges(whole, name);
		check_sections(whole, name);
		bool compare = expected != NULL || expected_sha != NULL;
		if (compare && (f == 0 ? delivered_as_is || !crlf_differs : true)) {
			size_t olen;
			char *got = imap_outputs(whole, &olen);
			bool same;
			if (expected_sha != NULL) {
				char hex[65];
				sha256_hex(got, olen, hex);
				same = strcmp(hex, expected_sha) == 0;
			} else {
				same = olen == expected_len && memcmp(got, expected, olen) == 0;
			}
			if (!same) {
				fprintf(stderr, "%s (%s): differs from Dovecot\n", name,
					f == 0 ? "as is" : "CRLF");
				if (expected != NULL && getenv("MIME_TEST_VERBOSE") != NULL)
					fprintf(stderr, "--- got\n%s--- want\n%.*s", got,
						(int)expected_len, expected);
			}
			CHECK(same);
			free(got);
		} else if (compare && f == 0) {
			/* LF-only as is: the same answer as converted */
			size_t olen;
			char *got = imap_outputs(whole, &olen);
			if (expected_sha == NULL && !(olen == expected_len && memcmp(got, expected, olen) == 0)) {
				fprintf(stderr, "%s (LF as is): differs from Dovecot\n", name);
				CHECK(0);
			}
			free(got);
		}
		mime_message_free(&whole);

		size_t chunks[] = { 1, 2, 3, 7, 64, 4096 };
		for (size_t c = 0; c < ARRAY_SIZE(chunks); c++) {
			if (n > 50000 && chunks[c] > 1 && chunks[c] < 64)
				continue;
			struct mime_message *m = parse_split(d, n, chunks[c], NULL);
			char *got = describe(m);
			if (strcmp(got, want) != 0) {
				fprintf(stderr, "%s: chunk %zu differs from whole\n", name, chunks[c]);
				CHECK(0);
			}
			free(got);
			mime_message_free(&m);
		}
		for (unsigned int seed = 1; seed <= 4; seed++) {
			unsigned int s = seed;
			struct mime_message *m = parse_split(d, n, 0, &s);
			char *got = describe(m);
			if (strcmp(got, want) != 0) {
				fprintf(stderr, "%s: random split %u differs from whole\n", name, seed);
				CHECK(0);
			}
			free(got);
			mime_message_free(&m);
		}
		free(want);
	}
	free(crlf);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every tests/data/mime/<stem>.expected against its message. */
static void test_dovecot_oracle(void)
{
	DIR *dir = opendir(data_dir);
	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	char **names = NULL;
	size_t count = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		size_t l = strlen(de->d_name);
		bool exp = l > 9 && strcmp(de->d_name + l - 9, ".expected") == 0;
		bool sha = l > 16 && strcmp(de->d_name + l - 16, ".expected.sha256") == 0;
		if (!exp && !sha)
			continue;
		names = xrealloc(names, sizeof(*names) * (count + 1));
		names[count++] = xstrdup(de->d_name);
	}
	closedir(dir);
	qsort(names, count, sizeof(*names), cmp_str);
	int done = 0, skipped = 0;
	for (size_t i = 0; i < count; i++) {
		char *stem = xstrdup(names[i]);
		bool sha = strstr(stem, ".expected.sha256") != NULL;
		*strstr(stem, ".expected") = '\0';
		char *src;
		if (strncmp(stem, "cases__", 7) == 0) {
			src = xasprintf("%s/cases/%s.eml", data_dir, stem + 7);
		} else {
			if (corpus_dir == NULL) {
				skipped++;
				free(stem);
				free(names[i]);
				continue;
			}
			struct buf b;
			buf_init(&b, 0);
			buf_printf(&b, "%s/", corpus_dir);
			for (const char *s = stem; *s != '\0'; s++) {
				if (s[0] == '_' && s[1] == '_') {
					buf_append_c(&b, '/');
					s++;
				} else {
					buf_append_c(&b, *s);
				}
			}
			buf_append_str(&b, ".eml");
			src = buf_steal(&b, NULL);
		}
		size_t len, elen = 0;
		char *data = read_file(src, &len);
		char *path = xasprintf("%s/%s", data_dir, names[i]);
		char *expected = read_file(path, &elen);
		CHECK(data != NULL && expected != NULL);
		if (data != NULL && expected != NULL) {
			char sha_hex[65] = "";
			if (sha) {
				memcpy(sha_hex, expected, elen >= 64 ? 64 : elen);
				sha_hex[64] = '\0';
			}
			check_message(stem, data, len, sha ? NULL : expected, elen,
				      sha ? sha_hex : NULL);
			done++;
		}
		free(data);
		free(expected);
		free(path);
		free(src);
		free(stem);
		free(names[i]);
	}
	free(names);
	printf("dovecot oracle: %d messages compared", done);
	if (skipped > 0)
		printf(", %d skipped (corpus not found: set YUBIN_MIME_CORPUS)", skipped);
	printf("\n");
	CHECK(done >= 69 || skipped > 0);
}


static struct mime_message *parse_str(const char *s, const struct mime_limits *lim)
{
	return mime_parse(s, strlen(s), lim);
}

static char *bodystructure(const struct mime_message *msg)
{
	struct buf b;
	buf_init(&b, 0);
	CHECK(mime_bodystructure(msg, &b) == 0);
	return buf_steal(&b, NULL);
}

static char *envelope(const struct mime_message *msg)
{
	struct buf b;
	buf_init(&b, 0);
	CHECK(mime_envelope(msg, &b) == 0);
	return buf_steal(&b, NULL);
}

static void test_imap_string(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "", 0, "\"\"" },
		{ "plain", 5, "\"plain\"" },
		{ "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
		{ "\"\"\"\"", 4, "\"\\\"\\\"\\\"\\\"\"" },	/* four escapes: still quoted */
		{ "\"\"\"\"\"", 5, "{5}\r\n\"\"\"\"\"" },	/* five: a literal */
		{ "caf\xc3\xa9", 5, "{5}\r\ncaf\xc3\xa9" },
		{ "a\r\nb", 4, "{4}\r\na\r\nb" },
		{ "a\nb", 3, "{3}\r\na\nb" },
		{ "nul\0x", 5, "{7}\r\nnul\xef\xbf\xbdx" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b;
		buf_init(&b, 0);
		CHECK(imap_write_string(&b, cases[i].in, cases[i].len) == 0);
		CHECK_STR(b.data, cases[i].out);
		buf_deinit(&b);
	}
	struct buf b;
	buf_init(&b, 0);
	CHECK(imap_write_nstring(&b, NULL, 0) == 0);
	CHECK_STR(b.data, "NIL");
	buf_reset(&b);
	char *big = xmalloc(IMAP_QUOTED_MAX + 2);
	memset(big, 'x', IMAP_QUOTED_MAX + 1);
	CHECK(imap_write_string(&b, big, IMAP_QUOTED_MAX) == 0);
	CHECK(b.data[0] == '"');
	buf_reset(&b);
	CHECK(imap_write_string(&b, big, IMAP_QUOTED_MAX + 1) == 0);
	CHECK(strncmp(b.data, "{4097}\r\nxxx", 11) == 0);
	free(big);
	buf_deinit(&b);
	/* a full buffer is reported */
	buf_init(&b, 4);
	CHECK(imap_write_string(&b, "too long", 8) < 0);
	buf_deinit(&b);
}

static void test_empty_and_headers(void)
{
	struct mime_message *msg = parse_str("", NULL);
	char *bs = bodystructure(msg), *env = envelope(msg);
	CHECK_STR(bs, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	CHECK_STR(env, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_INT(mime_message_part_count(msg), 1);
	CHECK_INT(mime_part_header(mime_message_root(msg)).len, 0);
	free(bs);
	free(env);
	mime_message_free(&msg);
	CHECK(msg == NULL);

	/* Header only, without an empty line: all of it is header. */
	msg = parse_str("Subject: x\r\nFrom: a@b.c", NULL);
	const struct mime_part *root = mime_message_root(msg);
	CHECK_INT(mime_part_header(root).len, 23);
	CHECK_INT(mime_part_body(root).len, 0);
	CHECK(mime_part_flags(root) & MIME_FLAG_NO_HEADER_END);
	env = envelope(msg);
	CHECK_STR(env, "(NIL \"x\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) "
		       "((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)");
	free(env);
	mime_message_free(&msg);

	/* An empty header: the body starts after the empty line. */
	msg = parse_str("\r\nbody\r\n", NULL);
	root = mime_message_root(msg);
	CHECK_INT(mime_part_header(root).len, 2);
	CHECK_INT(mime_part_body(root).start, 2);
	CHECK_INT(mime_part_lines(root), 1);
	mime_message_free(&msg);

	/* Bare LF counts as CRLF in the sizes IMAP sees. */
	msg = parse_str("Subject: lf\n\nline 1\nline 2\n", NULL);
	bs = bodystructure(msg);
	CHECK_STR(bs, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 16 2 NIL NIL NIL NIL)");
	CHECK(mime_message_flags(msg) & MIME_FLAG_BARE_LF);
	CHECK_INT(mime_message_size(msg), 27);
	CHECK_INT(mime_message_crlf_size(msg), 31);
	free(bs);
	mime_message_free(&msg);
}

static const char nested_multipart[] =
	"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
	"--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
	"--c\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--c--\r\n"
	"--b--\r\n--a\r\n\r\nsecond\r\n--a--\r\n";

static void test_limits(void)
{
	/* Depth: with 3 levels the multipart at depth 2 cannot have parts;
	 * it becomes opaque data, and the message goes on. */
	struct mime_limits lim = { 3, 0, 0, 0 };
	struct mime_message *msg = parse_str(nested_multipart, &lim);
	char *bs = bodystructure(msg);
	CHECK(strstr(bs, "\"application\" \"octet-stream\" (\"boundary\" \"c\")") != NULL);
	CHECK(strstr(bs, "\"7bit\" 6 0") != NULL);	/* "second" is still a part */
	CHECK(mime_message_flags(msg) & MIME_FLAG_DEPTH_LIMIT);
	free(bs);
	mime_message_free(&msg);
	msg = parse_str(nested_multipart, NULL);
	CHECK(!(mime_message_flags(msg) & MIME_FLAG_DEPTH_LIMIT));
	CHECK_INT(mime_message_part_count(msg), 5);
	mime_message_free(&msg);

	/* Parts: the last part made holds the rest of the message. */
	struct mime_limits few = { 0, 3, 0, 0 };
	const char *many = "Content-Type: multipart/mixed; boundary=p\r\n\r\n"
			   "--p\r\n\r\none\r\n--p\r\n\r\ntwo\r\n--p\r\n\r\nthree\r\n--p--\r\n";
	msg = parse_str(many, &few);
	CHECK_INT(mime_message_part_count(msg), 3);
	CHECK(mime_message_flags(msg) & MIME_FLAG_PARTS_LIMIT);
	const struct mime_part *last = mime_part_next(mime_part_first_child(mime_message_root(msg)));
	struct mime_range r = mime_part_body(last);
	CHECK(r.start + r.len == strlen(many));
	CHECK(strncmp(many + r.start, "two\r\n--p\r\n", 10) == 0);
	mime_message_free(&msg);

	/* The last part allowed is opened by a delimiter that also cut a
	 * header: the delimiter is text of that last part now. */
	struct mime_limits three = { 0, 3, 0, 0 };
	const char *cut = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			  "--b\r\nContent-Type: message/rfc822\r\n--b\r\n\r\nrest\r\n--b--\r\n";
	msg = parse_str(cut, &three);
	CHECK_INT(mime_message_part_count(msg), 3);
	const struct mime_part *inner = mime_part_first_child(mime_part_first_child(mime_message_root(msg)));
	CHECK(inner != NULL && mime_part_body(inner).start + mime_part_body(inner).len == strlen(cut));
	mime_message_free(&msg);

	/* Header size: fields past the limit are not read. */
	struct mime_limits small_hdr = { 0, 0, 64, 0 };
	const char *big = "X-Filler: 0123456789012345678901234567890123456789\r\n"
			  "Content-Type: image/png\r\n\r\nx";
	msg = parse_str(big, &small_hdr);
	CHECK_STR(mime_part_type(mime_message_root(msg)), "text");
	CHECK(mime_message_flags(msg) & MIME_FLAG_HEADER_TRUNCATED);
	CHECK_INT(mime_part_header(mime_message_root(msg)).len, strlen(big) - 1);
	mime_message_free(&msg);
	msg = parse_str(big, NULL);
	CHECK_STR(mime_part_type(mime_message_root(msg)), "image");
	mime_message_free(&msg);

	/* Header fields */
	struct mime_limits few_fields = { 0, 0, 0, 2 };
	msg = parse_str("A: 1\r\nB: 2\r\nContent-Type: image/png\r\n\r\nx", &few_fields);
	CHECK_STR(mime_part_type(mime_message_root(msg)), "text");
	CHECK(mime_message_flags(msg) & MIME_FLAG_HEADER_TRUNCATED);
	mime_message_free(&msg);

	/* A boundary longer than MIME_BOUNDARY_MAX still delimits parts:
	 * lines only have to start with its first MIME_BOUNDARY_MAX bytes.
	 * The close ("--" after the whole boundary) is not seen, as in
	 * Dovecot, so what follows it is one more (empty) part. */
	char longb[200];
	memset(longb, 'q', 150);
	longb[150] = '\0';
	char *m = xasprintf("Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n\r\n"
			    "a\r\n--%s\r\n\r\nb\r\n--%s--\r\n", longb, longb, longb, longb);
	msg = parse_str(m, NULL);
	CHECK_INT(mime_message_part_count(msg), 4);
	CHECK(mime_message_flags(msg) & MIME_FLAG_NO_END_BOUNDARY);
	mime_message_free(&msg);
	free(m);
}

static void test_flags(void)
{
	struct mime_message *msg = parse_str(
		"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
		"Content-Type: text/plain junk\r\n\r\nnot closed\r\n", NULL);
	unsigned f = mime_message_flags(msg);
	CHECK(f & MIME_FLAG_NO_END_BOUNDARY);
	CHECK(f & MIME_FLAG_BAD_CONTENT_TYPE);
	CHECK(!(f & MIME_FLAG_BARE_LF));
	mime_message_free(&msg);

	msg = parse_str("Content-Type: multipart/mixed\r\n\r\nno boundary\r\n", NULL);
	CHECK(mime_message_flags(msg) & MIME_FLAG_NO_BOUNDARY);
	CHECK_INT(mime_part_kind(mime_message_root(msg)), MIME_KIND_MULTIPART);
	mime_message_free(&msg);

	static const char nul[] = "Subject: \xc3\xa9\r\nX\r\n\r\na\0b";
	msg = mime_parse(nul, sizeof(nul) - 1, NULL);
	f = mime_message_flags(msg);
	CHECK(f & MIME_FLAG_8BIT_HEADER);
	CHECK(f & MIME_FLAG_BAD_HEADER_LINE);
	CHECK(f & MIME_FLAG_NUL);
	mime_message_free(&msg);
}

/* The bytes of a section of msg, as the IMAP server would read them. */
static char *section(const char *msg, const char *sec)
{
	struct mime_message *m = parse_str(msg, NULL);
	struct buf blob;
	buf_init(&blob, 0);
	CHECK(mime_parts_serialize(m, &blob) == 0);
	mime_message_free(&m);
	struct mime_section s;
	char *out = NULL;
	if (mime_parts_lookup(blob.data, blob.len, sec, &s) == 0)
		out = xstrndup(msg + s.range.start, (size_t)s.range.len);
	buf_deinit(&blob);
	return out;
}

static void test_sections(void)
{
	static const char nested[] =
		"Subject: top\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
		"--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
		"--o\r\nContent-Type: message/rfc822\r\n\r\n"
		"Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
		"--i\r\n\r\nalt one\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>two</b>\r\n--i--\r\n"
		"--o\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
		"--o--\r\n";
	static const struct {
		const char *sec, *want;
	} cases[] = {
		{ "1", "first" },
		{ "1.MIME", "Content-Type: text/plain\r\n\r\n" },
		{ "2.HEADER", "Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n" },
		{ "2.1", "alt one" },
		{ "2.2", "<b>two</b>" },
		{ "2.2.MIME", "Content-Type: text/html\r\n\r\n" },
		{ "3", "AAEC" },
		{ "header", "Subject: top\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n" },
		{ "2.3", NULL },
		{ "4", NULL },
		{ "1.1", NULL },
		{ "1.HEADER", NULL },
		{ "3.TEXT", NULL },
		{ "2.1.1", NULL },
		{ "MIME", NULL },
		{ "1..2", NULL },
		{ "1.FOO", NULL },
		{ "99999999999999999999", NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = section(nested, cases[i].sec);
		CHECK_STR(got, cases[i].want);
		free(got);
	}
	char *t = section(nested, "2.TEXT");
	CHECK(t != NULL && strncmp(t, "--i\r\n", 5) == 0);
	free(t);
	/* A message without parts: part 1 is its body, 1.MIME its header. */
	static const char single[] = "Subject: one\r\n\r\nbody\r\n";
	t = section(single, "1");
	CHECK_STR(t, "body\r\n");
	free(t);
	t = section(single, "1.MIME");
	CHECK_STR(t, "Subject: one\r\n\r\n");
	free(t);
	t = section(single, "TEXT");
	CHECK_STR(t, "body\r\n");
	free(t);
	t = section(single, "");
	CHECK_STR(t, single);
	free(t);

	/* the encoding travels with the range, for BINARY */
	struct mime_message *m = parse_str(nested, NULL);
	struct buf blob;
	buf_init(&blob, 0);
	mime_parts_serialize(m, &blob);
	struct mime_section s;
	CHECK(mime_parts_lookup(blob.data, blob.len, "3", &s) == 0);
	CHECK_INT(s.cte, MIME_CTE_BASE64);
	CHECK(s.leaf_body);
	CHECK(mime_parts_lookup(blob.data, blob.len, "2", &s) == 0);
	CHECK(!s.leaf_body);
	/* damaged blobs are refused, never read past */
	CHECK(mime_parts_lookup(blob.data, 2, "1", &s) < 0);
	CHECK(mime_parts_lookup(blob.data, blob.len - 1, "3", &s) < 0);
	CHECK(mime_parts_lookup("XX1", 3, "", &s) < 0);
	buf_deinit(&blob);
	mime_message_free(&m);
}

static void test_params(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: application/pdf; name*0*=utf-8''%E2%82%AC%20rates;\r\n"
		" name*1=\".pdf\"\r\nContent-Disposition: attachment; filename*=iso-8859-1'fr'%E9t%E9.txt\r\n\r\nx\r\n"
		"--b\r\nContent-Type: text/plain; name=\"=?utf-8?Q?caf=C3=A9?=\"; CHARSET=koi8-r\r\n"
		"Content-Disposition: inline; FILENAME=\"a \\\"quoted\\\" name\"\r\n\r\ny\r\n--b--\r\n";
	struct mime_message *m = parse_str(msg, NULL);
	const struct mime_part *p1 = mime_part_first_child(mime_message_root(m));
	const struct mime_part *p2 = mime_part_next(p1);
	/* As IMAP shows them (Dovecot's form) */
	CHECK_STR(mime_part_param(p1, "name*"), "utf-8''%E2%82%AC%20rates.pdf");
	CHECK_STR(mime_part_disposition(p1), "attachment");
	CHECK_STR(mime_part_disposition_param(p1, "filename*"), "iso-8859-1'fr'%E9t%E9.txt");
	CHECK_STR(mime_part_param(p2, "charset"), "koi8-r");
	CHECK(mime_part_param(p2, "nothing") == NULL);
	/* Decoded */
	char *v = mime_param_decode(p1, false, "name");
	CHECK_STR(v, "\xe2\x82\xac rates.pdf");
	free(v);
	v = mime_param_decode(p1, true, "filename");
	CHECK_STR(v, "\xc3\xa9t\xc3\xa9.txt");
	free(v);
	v = mime_param_decode(p2, false, "name");
	CHECK_STR(v, "caf\xc3\xa9");
	free(v);
	v = mime_param_decode(p2, true, "filename");
	CHECK_STR(v, "a \"quoted\" name");
	free(v);
	CHECK(mime_param_decode(p2, true, "size") == NULL);
	CHECK_INT(mime_part_cte(p1), MIME_CTE_7BIT);
	mime_message_free(&m);
}

static void test_search_fields(void)
{
	struct mime_message *m = parse_str(
		"From: =?utf-8?B?SsO8cmdlbiBNw7xsbGVy?= <Juergen@Example.DE>\r\n"
		"To: Group: a@b.c, \"Bob\" <bob@x.y>;\r\n"
		"Cc: carol@example.net\r\n"
		"Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\tfolded\r\n"
		"Subject: second\r\n"
		"Date: Mon, 23 Nov 2026\r\n 08:15:00 +0900 (JST)\r\n"
		"Message-ID: <id@x>\r\nReferences: <a@x>\r\n <b@x>\r\n\r\nbody\r\n", NULL);
	const struct mime_search_fields *sf = mime_message_search_fields(m);
	CHECK_STR(sf->subject, "Gr\xc3\xbc\xc3\x9f" "e\tfolded");
	CHECK_STR(sf->from, "J\xc3\xbcrgen M\xc3\xbcller <Juergen@Example.DE>");
	CHECK_STR(sf->sort_from, "Juergen");
	CHECK_STR(sf->display_from, "J\xc3\xbcrgen M\xc3\xbcller");
	CHECK_STR(sf->sort_to, "a");
	CHECK_STR(sf->display_to, "a@b.c");
	CHECK_STR(sf->sort_cc, "carol");
	CHECK_STR(sf->message_id, "<id@x>");
	CHECK_STR(sf->references, "<a@x> <b@x>");
	CHECK(sf->in_reply_to == NULL);
	CHECK(sf->date_valid);
	CHECK_INT(sf->date, 1795389300);	/* 2026-11-22 23:15:00 UTC */
	CHECK_INT(sf->date_tz, 540);
	/* the envelope keeps the raw, last Subject (as Dovecot) */
	char *env = envelope(m);
	CHECK(strstr(env, "\"second\"") != NULL);
	free(env);
	mime_message_free(&m);
}

static void test_date(void)
{
	static const struct {
		const char *in;
		int64_t t;
		int tz;
	} ok[] = {
		{ "Thu, 1 Jan 1970 00:00:00 +0000", 0, 0 },
		{ "1 Jan 1970 00:00:00 GMT", 0, 0 },
		{ "Fri, 13 Feb 2009 23:31:30 +0000", 1234567890, 0 },
		{ "Sat, 14 Feb 2009 00:31:30 +0100", 1234567890, 60 },
		{ "Fri, 13 Feb 2009 18:31:30 EST", 1234567890, -300 },
		{ "Fri, 13 Feb 09 23:31:30 +0000", 1234567890, 0 },		/* two-digit year */
		{ "13 Feb 109 23:31:30 +0000", 1234567890, 0 },			/* three digits */
		{ "Fri, 13 Feb 2009 23:31 +0000", 1234567860, 0 },		/* no seconds */
		{ "  Fri ,  13  february  2009  23:31:30  -0000 (UTC)", 1234567890, 0 },
		{ "Wed, 11 Feb 98 11:51 CST", 887219460, -360 },
		{ "Sat, 31 Dec 2016 23:59:60 +0000", 1483228799, 0 },		/* leap second */
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		int64_t t = -1;
		int tz = 99999;
		CHECK(mime_date_parse(ok[i].in, &t, &tz) == 0);
		CHECK_INT(t, ok[i].t);
		CHECK_INT(tz, ok[i].tz);
	}
	static const char *const bad[] = {
		"", "garbage", "32 Jan 2009 00:00:00 +0000", "1 Foo 2009 00:00:00 +0000",
		"1 Jan 2009 24:00:00 +0000", "1 Jan 2009", "1 Jan 2009 10:00:00 +99999",
		"31 Feb 2009 10:00:00 +0000",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t t;
		int tz;
		CHECK(mime_date_parse(bad[i], &t, &tz) < 0);
	}
}

/* Pathological delimiter-like lines must not make the parse slow: many
 * open boundaries sharing a long prefix, and lines that start like them. */
static void test_hostile_boundaries(void)
{
	struct buf b;
	buf_init(&b, 0);
	char prefix[79];
	memset(prefix, 'z', sizeof(prefix));
	for (int i = 0; i < 98; i++) {
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"%.*s%c\"\r\n\r\n--%.*s%c\r\n",
			   (int)sizeof(prefix), prefix, 'A' + i % 26, (int)sizeof(prefix), prefix,
			   'A' + i % 26);
	}
	for (int i = 0; i < 20000; i++)
		buf_printf(&b, "--%.*s-\r\n", (int)sizeof(prefix), prefix);
	struct mime_message *m = mime_parse(b.data, b.len, NULL);
	CHECK_INT(mime_message_part_count(m), 99);
	mime_message_free(&m);
	buf_deinit(&b);
}

int main(void)
{
	data_dir = getenv("YUBIN_MIME_DATA");
	if (data_dir == NULL)
		data_dir = is_dir("../tests/data/mime") ? "../tests/data/mime" : "tests/data/mime";
	corpus_dir = getenv("YUBIN_MIME_CORPUS");
	if (corpus_dir == NULL) {
		static const char *const tries[] = {
			"../../shared/testdata/mime-corpus",
			"../shared/testdata/mime-corpus",
			"/work/shared/testdata/mime-corpus",
		};
		for (size_t i = 0; i < ARRAY_SIZE(tries) && corpus_dir == NULL; i++) {
			if (is_dir(tries[i]))
				corpus_dir = tries[i];
		}
	}
	RUN(test_imap_string);
	RUN(test_empty_and_headers);
	RUN(test_limits);
	RUN(test_flags);
	RUN(test_sections);
	RUN(test_params);
	RUN(test_search_fields);
	RUN(test_date);
	RUN(test_hostile_boundaries);
	RUN(test_dovecot_oracle);
	return test_done();
}
