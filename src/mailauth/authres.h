/* The Authentication-Results header field (RFC 8601): building ours from
 * the SPF, DKIM and DMARC results, and recognising the ones a received
 * message already carries that we must remove (RFC 8601 5). */
#ifndef YUBIN_MAILAUTH_AUTHRES_H
#define YUBIN_MAILAUTH_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"

#define AUTHRES_DKIM_MAX 8	/* dkim= results written (the first ones) */
#define AUTHRES_HEADER_MAX 2048	/* an incoming field longer than this is not read */

struct authres {
	const char *authserv_id;	/* our host name (RFC 8601 2.5) */

	bool spf_done;			/* false: no spf= result */
	enum spf_result spf;
	bool spf_helo;			/* the HELO identity was checked (MAIL FROM <>) */
	const char *spf_domain;		/* smtp.mailfrom= / smtp.helo= */

	bool dkim_done;			/* false: no dkim= result */
	const struct dkim_sig_result *dkim;	/* one dkim= per signature; */
	size_t ndkim;				/* none at all: dkim=none */

	bool dmarc_done;
	enum dmarc_result dmarc;
	const char *dmarc_from;		/* header.from= (the Author Domain), or NULL */
	enum dmarc_policy dmarc_policy;	/* policy.dmarc= (pass and fail only) */
};

/* Returns "Authentication-Results: ...\r\n" (malloc'd), one method per
 * folded line; "authserv-id; none" when nothing was evaluated (RFC 8601
 * 2.2 no-result). Values that are not RFC 2045 tokens are written as
 * quoted-strings; names that are not valid domains are left out. */
char *authres_build(const struct authres *a);

/* The field value (after "Authentication-Results:", unfolded or not, CRLF
 * or not) of a received field: true when it must be removed before ours is
 * added, because its authserv-id is ours (ASCII case-insensitive, RFC 8601
 * 5), or because it names a version other than 1, or because it cannot be
 * parsed up to its authserv-id (it might be a forgery of ours written
 * oddly: removing it loses nothing we vouch for). */
bool authres_remove(const char *value, size_t len, const char *authserv_id);

#endif
