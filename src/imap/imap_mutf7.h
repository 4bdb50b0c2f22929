/* Modified UTF-7 mailbox names (RFC 3501 5.1.3), which IMAP4rev1 clients
 * use; names are stored as UTF-8. */
#ifndef YUBIN_IMAP_MUTF7_H
#define YUBIN_IMAP_MUTF7_H

#include <stddef.h>

/* UTF-8 to modified UTF-7 (a new string). NULL if s is not valid UTF-8. */
char *mutf7_encode(const char *s);
/* Modified UTF-7 to UTF-8 (a new string). NULL if s is not valid modified
 * UTF-7 (bad base64, non-canonical, 8-bit, or an encoded printable). */
char *mutf7_decode(const char *s);

#endif
