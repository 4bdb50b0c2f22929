/* IMAP views of a parsed message (RFC 3501 7.4.2, RFC 9051 7.5.2):
 * ENVELOPE, BODY and BODYSTRUCTURE, and the IMAP string writer they use.
 *
 * Each writer appends one complete value, parentheses included, to out and
 * returns 0, or -1 when out's maximum was reached (out then holds a partial
 * value and must not be sent). The output is what Dovecot 2.3 writes for
 * the same message, except where tests/data/mime/DIFFERENCES.md says. It is
 * computed once at delivery and stored; FETCH sends the stored bytes.
 *
 * Strings stay as the message has them: encoded-words are not decoded
 * (RFC 3501 says ENVELOPE carries the raw header values), and 8-bit bytes
 * go out in a literal. */
#ifndef YUBIN_MIME_MIME_IMAP_H
#define YUBIN_MIME_MIME_IMAP_H

#include <stddef.h>
#include "core/buf.h"
#include "mime/mime.h"

/* A quoted string longer than this goes as a literal, so that no client
 * meets a single line of unbounded length (RFC 2683 3.2.1.5 asks clients to
 * take lines of 8000 octets; a literal is read by its count). */
#define IMAP_QUOTED_MAX 4096

/* RFC 3501 9 string: "quoted" when it can be, else a literal {n}CRLF...:
 * for 8-bit bytes, CR, LF, more than 4 quoted-specials (as Dovecot: then a
 * literal is as short), or more than IMAP_QUOTED_MAX bytes. A NUL, which no
 * IMAP string may hold, is sent as U+FFFD. Returns 0 or -1 (out full). */
int imap_write_string(struct buf *out, const char *s, size_t len);
/* nstring: NIL when s is NULL, else as imap_write_string(). */
int imap_write_nstring(struct buf *out, const char *s, size_t len);

/* The top-level message's ENVELOPE: "(date subject from sender reply-to to
 * cc bcc in-reply-to message-id)". Sender and Reply-To are From when
 * absent; groups are (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). */
int mime_envelope(const struct mime_message *msg, struct buf *out);
/* BODY: the structure without extension data. */
int mime_body(const struct mime_message *msg, struct buf *out);
/* BODYSTRUCTURE: with extension data (MD5, disposition, language,
 * location; and parameters for multiparts). */
int mime_bodystructure(const struct mime_message *msg, struct buf *out);

#endif
