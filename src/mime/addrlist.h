/* The addresses in an address-list header field (RFC 5322 3.4: From, To,
 * Cc, Sender, Reply-To), for checks such as "is the From: address the
 * sender's own". Display names, comments, quoted strings and groups are
 * understood; obsolete routes are skipped. */
#ifndef YUBIN_MIME_ADDRLIST_H
#define YUBIN_MIME_ADDRLIST_H

#include <stddef.h>

#define ADDRLIST_MAX 100

/* Parses an unfolded field value. Returns the number of addresses (each
 * "local@domain" with the domain lower-cased) in a new NULL-terminated
 * vector, or -1 when the value is not an address list. At most ADDRLIST_MAX
 * addresses. */
int addrlist_parse(const char *value, char ***addrs_r);
void addrlist_free(char ***addrs);

#endif
