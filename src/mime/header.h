/* Reading the header block of a message (RFC 5322 section 2.2).
 *
 * These helpers work on slices of the raw message: they never copy the input
 * unless they return a new string, never read past len, and accept the
 * malformed headers found in the wild (they flag them, they do not fail).
 * Line ends may be CRLF or bare LF. */
#ifndef YUBIN_MIME_HEADER_H
#define YUBIN_MIME_HEADER_H

#include <stdbool.h>
#include <stddef.h>

struct header_field {
	const char *name;	/* slice of the input, without the colon */
	size_t name_len;
	const char *value;	/* raw value after the colon, folds included, */
	size_t value_len;	/* without the final line end */
};

/* Length of the header block including the empty line that ends it; len
 * when the message has no body separator. */
size_t header_block_len(const char *msg, size_t len);

/* Iterates the fields of the header block msg[0..len). *pos starts at 0.
 * Returns 1 with *field_r filled, 0 at the end of the header block, or -1 for
 * a line that is not a field (no colon, or a bad field name): *pos moves past
 * it so the caller may go on. */
int header_next(const char *msg, size_t len, size_t *pos,
		struct header_field *field_r);

/* Unfolds (removes CRLF / LF before white space) and trims a raw value into
 * a new string. NUL bytes become spaces. */
char *header_unfold(const char *value, size_t len);

/* The first field named name (ASCII case-insensitive), unfolded, or NULL. */
char *header_get(const char *msg, size_t len, const char *name);
/* How many fields are named name. */
size_t header_count(const char *msg, size_t len, const char *name);

/* Decodes RFC 2047 encoded-words in an unfolded value into UTF-8 (new
 * string). Words in charsets iconv does not know, or malformed, stay as they
 * are. White space between two adjacent encoded-words is dropped (6.2). */
char *header_decode_2047(const char *s);

#endif
