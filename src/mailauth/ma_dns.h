/* What the mail-authentication evaluators (SPF, DKIM, DMARC) ask of DNS.
 *
 * The evaluators do no I/O. Each one is a resumable state machine: a step
 * function either finishes with a result or stops with one DNS question
 * (struct ma_query) for its caller, who looks it up and resumes it with the
 * answer (struct ma_answer). One shape, three drivers:
 *   - the server: dns/ (c-ares, asynchronous, in the session's loop);
 *   - the unit tests: an in-process fake DNS built from the test suites'
 *     zone data (../shared/testdata), answered at once;
 *   - the fuzz targets: answers made from the fuzzer's bytes.
 * Questions are asked one at a time, which keeps every evaluator simple and
 * its DNS budget (RFC 7208 4.6.4) easy to count.
 *
 * An answer and everything it points to need live only during the resume
 * call: evaluators copy what they keep. */
#ifndef YUBIN_MA_DNS_H
#define YUBIN_MA_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

#define MA_NAME_MAX 253		/* RFC 1035 2.3.4, without the final dot */
#define MA_ANSWER_MAX 64	/* records read from one answer */

/* The record types asked (numbers as on the wire, RFC 1035 3.2.2). */
enum ma_dns_type {
	MA_DNS_A = 1,
	MA_DNS_PTR = 12,
	MA_DNS_MX = 15,
	MA_DNS_TXT = 16,
	MA_DNS_AAAA = 28,
};

enum ma_dns_status {
	MA_DNS_OK,		/* count records (count may be 0: see NODATA) */
	MA_DNS_NODATA,		/* the name exists, no record of that type */
	MA_DNS_NXDOMAIN,	/* the name does not exist (RCODE 3) */
	MA_DNS_TEMPFAIL,	/* SERVFAIL, timeout, no server: may work later */
	MA_DNS_PERMFAIL,	/* anything else that will not work by asking again
				 * (a name that cannot be asked, FORMERR, REFUSED) */
};

/* What a step function returns: finished, or stopped on *q_r. */
enum ma_step {
	MA_STEP_DONE,
	MA_STEP_QUERY,
};

struct ma_query {
	enum ma_dns_type type;
	/* Lower case, no final dot. For PTR: the reverse name
	 * ("4.3.2.1.in-addr.arpa", RFC 1035 3.5; RFC 3596 2.5 for IPv6). */
	char name[MA_NAME_MAX + 1];
};

struct ma_ip {
	int family;		/* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

struct ma_record {
	/* TXT: the record's character-strings concatenated with nothing
	 * between (RFC 7208 3.3, RFC 6376 3.6.2.2): len bytes, followed by a
	 * NUL for convenience; len is the truth, and evaluators treat a NUL
	 * inside as a syntax error. MX: the exchange host name (lower case, no
	 * final dot);
	 * the preference is not given (SPF and the others do not use it).
	 * PTR: the host name. A/AAAA: text is NULL, ip is set. */
	const char *text;
	size_t len;
	struct ma_ip ip;
};

struct ma_answer {
	enum ma_dns_status status;
	size_t count;			/* at most MA_ANSWER_MAX */
	const struct ma_record *records;
};

#endif
