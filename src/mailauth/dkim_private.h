/* DKIM internals shared by the verifier, the signer, the unit tests and the
 * fuzz target: tag lists, canonicalisation, the header hash. */
#ifndef YUBIN_MAILAUTH_DKIM_PRIVATE_H
#define YUBIN_MAILAUTH_DKIM_PRIVATE_H

#include "core/buf.h"
#include "mailauth/dkim.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define DKIM_MAX_TAGS 64	/* tags in one tag-list */

/* ---- tag=value lists (RFC 6376 3.2) ---- */

struct dkim_tag {
	char name[16];		/* longer tag names are kept truncated: all
				 * the tags we know are short */
	const char *value;	/* slice of the unfolded text, without the FWS around */
	size_t value_len;
};

struct dkim_tags {
	struct dkim_tag tag[DKIM_MAX_TAGS];
	size_t count;
};

/* Parses text (already unfolded or not: CR and LF count as FWS) as a
 * tag-list. Returns 0, or -1 for a syntax error, a duplicate tag name or more
 * than DKIM_MAX_TAGS tags, with *error_r a static text. Values are slices of
 * text. */
int dkim_tags_parse(const char *text, size_t len, struct dkim_tags *tags_r,
		    const char **error_r);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name);

/* ---- canonicalisation (RFC 6376 3.4) ---- */

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

/* The body, streamed: bytes go in, canonical bytes come out to the digest
 * (at most limit of them when limited: l=). */
struct dkim_body {
	enum dkim_canon canon;
	EVP_MD_CTX *md;
	bool limited;
	uint64_t limit;		/* l= */
	uint64_t canon_len;	/* canonical bytes produced, counted past limit too */
	uint64_t pending_crlf;	/* line ends held back: empty lines may be trailing */
	bool any;		/* anything produced yet */
	bool line_content;	/* the current line has produced bytes */
	bool cr;		/* the last byte was a CR, held back */
	bool wsp;		/* relaxed: white space held back */
};

/* md may be NULL (only counting: used by tests and the fuzzer). */
void dkim_body_init(struct dkim_body *b, enum dkim_canon canon, EVP_MD_CTX *md,
		    bool limited, uint64_t limit);
void dkim_body_feed(struct dkim_body *b, const char *data, size_t len);
void dkim_body_end(struct dkim_body *b);
/* Test hook: when set, every canonical byte produced is also appended here. */
extern struct buf *dkim_body_trace;

/* A header field as a slice of the message: raw runs from the name to the
 * end of its last line end (CRLF included), name is raw[0..name_len). */
struct dkim_field {
	const char *raw;
	size_t raw_len;
	size_t name_len;
};

/* Splits the header block hdr[0..len) into fields. Lines that are not a
 * field (no colon before the first white space) are skipped. Returns the
 * count (at most max), or -1 for more than max. */
int dkim_fields_split(const char *hdr, size_t len, struct dkim_field *fields, size_t max);

/* Appends the canonical form of one field to out (relaxed: lower-case name,
 * unfolded, white space runs as one SP, none around the colon nor at the
 * end; simple: as is), with its CRLF when crlf. Returns 0 or -1 (out full). */
int dkim_canon_header(enum dkim_canon canon, const char *raw, size_t raw_len,
		      bool crlf, struct buf *out);

/* The DKIM-Signature field raw with the value of its b= tag removed (with
 * the white space around it: RFC 6376 3.7), into out. Returns 0, or -1 when
 * it has no b= tag or out is full. */
int dkim_strip_b(const char *raw, size_t raw_len, struct buf *out);

/* The data the header hash covers (RFC 6376 3.7): for each name of h= (a
 * colon-separated list, FWS allowed), the last field of that name not used
 * yet, canonicalised, then sig_raw (the DKIM-Signature field itself) with
 * b= emptied and without its final CRLF. Returns 0 or -1 (out full, no b=). */
int dkim_header_data(enum dkim_canon canon, const struct dkim_field *fields, size_t nfields,
		     const char *h, size_t h_len, const char *sig_raw, size_t sig_raw_len,
		     struct buf *out);

/* base64 with FWS ignored, strict padding. Returns the length or -1. */
int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t max);

#endif
