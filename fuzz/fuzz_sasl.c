/* libFuzzer target: the SASL decoders (src/auth/sasl.c): PLAIN, LOGIN and
 * SCRAM-SHA-256 exchanges, and the strict base64 decoder every protocol
 * puts in front of them.
 *
 * The first byte picks the mechanism (bits 0-1), whether the exchange
 * starts without an initial response (bit 2), and whether each response
 * goes through base64_decode first, as it arrives on the wire (bit 3). The
 * rest is a list of responses separated by 0xFF (a byte UTF-8 never holds).
 * Checked:
 *   - an exchange ends: after SASL_FAIL, SASL_OK or SASL_CHECK_PASSWORD no
 *     more steps are taken, and at most four steps ever continue;
 *   - SASL_CHECK_PASSWORD comes only from PLAIN or LOGIN, with a non-empty
 *     user and password that hold no NUL;
 *   - SASL_OK needs a SCRAM proof that the fuzzer cannot forge: it never
 *     comes (the stored record is of a password the input never sees);
 *   - a failure always says why; a challenge is small beyond what it
 *     echoes of the response before it (SCRAM's server-first message holds
 *     the client's nonce, which RFC 5802 does not bound);
 *   - base64_decode accepts exactly what base64_encode gives back, and its
 *     output re-encodes to the input.
 * Seeds in fuzz/corpus/sasl/. */
#include "auth/sasl.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const mechs[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256", "scram-sha-256" };

static char *record;

static int lookup_record(void *ctx, const char *authcid, char **record_r)
{
	(void)ctx;
	if (authcid == NULL || strlen(authcid) > SASL_RESPONSE_MAX)
		abort();
	/* One known user; everyone else has no record (a fake salt). */
	if (strcmp(authcid, "user") != 0)
		return -1;
	*record_r = xstrdup(record);
	return 0;
}

static void check_base64(const char *in, size_t len)
{
	struct buf out, again;
	buf_init(&out, 0);
	buf_init(&again, 0);
	if (base64_decode(in, len, &out) == 0) {
		base64_encode(out.data ? out.data : "", out.len, &again);
		if (again.len != len || (len && memcmp(again.data, in, len) != 0))
			abort();
	}
	buf_deinit(&out);
	buf_deinit(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (record == NULL) {
		/* Made once: PBKDF2 with 4096 rounds is slow. */
		record = scram_make_record("not in any input", 16);
		sasl_test_fixed_nonce("FUZZNONCE");
	}
	const char *mech = mechs[data[0] & 3];
	bool no_initial = data[0] & 4, wire = data[0] & 8;
	const char *p = (const char *)data + 1, *end = (const char *)data + size;

	struct sasl_lookup lookup = { lookup_record, NULL };
	struct sasl *s = sasl_new(mech, &lookup);
	if (s == NULL)
		abort();
	struct buf challenge, decoded;
	buf_init(&challenge, 0);
	buf_init(&decoded, 0);
	enum sasl_status st = SASL_CONTINUE;
	const char *error = NULL;
	int steps = 0, continues = 0;
	size_t last_len = 0;	/* the response the challenge answers */
	if (no_initial) {
		st = sasl_step(s, NULL, 0, &challenge, &error);
		steps++;
	}
	while (st == SASL_CONTINUE && p <= end) {
		const char *sep = memchr(p, 0xff, (size_t)(end - p));
		size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
		continues++;
		if (continues > 4)
			abort();	/* no mechanism needs this many rounds */
		if (challenge.len > 512 + last_len)
			abort();
		buf_reset(&challenge);
		const unsigned char *in = (const unsigned char *)p;
		size_t in_len = len;
		if (wire) {
			check_base64(p, len);
			buf_reset(&decoded);
			if (base64_decode(p, len, &decoded) < 0)
				break;	/* the protocols answer a bad response and stop */
			in = decoded.data ? (const unsigned char *)decoded.data :
			     (const unsigned char *)"";
			in_len = decoded.len;
		}
		error = NULL;
		last_len = in_len;
		st = sasl_step(s, in, in_len, &challenge, &error);
		steps++;
		p += len + 1;
	}
	switch (st) {
	case SASL_FAIL:
		if (error == NULL)
			abort();
		break;
	case SASL_OK:
		abort();	/* a proof without the password */
	case SASL_CHECK_PASSWORD: {
		if ((data[0] & 3) >= 2)
			abort();
		const char *user = sasl_authcid(s), *pass = sasl_password(s);
		if (user == NULL || pass == NULL || user[0] == '\0' || pass[0] == '\0')
			abort();
		break;
	}
	case SASL_CONTINUE:
		break;
	}
	(void)steps;
	sasl_free(&s);
	if (s != NULL)
		abort();
	buf_deinit(&challenge);
	buf_deinit(&decoded);
	return 0;
}
