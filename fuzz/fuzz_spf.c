/* libFuzzer target: SPF evaluation (src/mailauth/spf.c) with every DNS
 * answer made of the fuzzer's bytes.
 *
 * Input: a first byte of flags (bit 0: IPv6 client, bit 1: MAIL FROM <>,
 * bit 2: a sender without local-part), then the SPF record of the
 * sender's domain up to the first '\n' (it answers the first TXT
 * question, so the record parser and the macro expansion see the input
 * as it is), then the answers to every later question, each:
 *   status byte (mod 5: OK, NODATA, NXDOMAIN, TEMPFAIL, PERMFAIL),
 *   count byte (mod 12), and per record: for TXT, MX and PTR a length
 *   byte and that many bytes of text; for A/AAAA 4 or 16 bytes.
 * When the bytes run out, every answer is NXDOMAIN.
 *
 * Invariants: the evaluation ends; it asks at most 200 questions (10 DNS
 * terms of at most 11 lookups each, the validated names, the record, the
 * explanation); every question's name is 1 to 253 bytes of lower-case
 * printable ASCII without empty labels; the result is one of the seven;
 * an explanation only with fail, within SPF_EXPLANATION_MAX; a problem
 * only with the errors. Seeds in fuzz/corpus/spf/. */
#include "mailauth/spf.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QUESTIONS_MAX 200

struct input {
	const uint8_t *p, *end;
};

static unsigned take(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

static void check_query(const struct ma_query *q)
{
	size_t n = strlen(q->name);
	if (n == 0 || n > MA_NAME_MAX || q->name[0] == '.' || q->name[n - 1] == '.')
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)q->name[i];
		if (c < ' ' || c >= 0x7f || (c >= 'A' && c <= 'Z'))
			abort();
		if (c == '.' && q->name[i + 1] == '.')
			abort();
	}
	if (q->type != MA_DNS_A && q->type != MA_DNS_AAAA && q->type != MA_DNS_MX &&
	    q->type != MA_DNS_PTR && q->type != MA_DNS_TXT)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	struct input in = { data + 1, data + size };
	unsigned flags = data[0];

	struct ma_ip ip;
	memset(&ip, 0, sizeof(ip));
	if (flags & 1) {
		ip.family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8::cb01", &ip.u.v6);
	} else {
		ip.family = AF_INET;
		inet_pton(AF_INET, "192.0.2.3", &ip.u.v4);
	}
	const char *sender = flags & 2 ? "" : flags & 4 ? "@example.com" : "strong-bad@example.com";
	struct spf *spf = spf_new(&ip, "mx.example.org", sender, "receiver.example");

	/* the record: up to the first '\n' */
	const uint8_t *nl = memchr(in.p, '\n', (size_t)(in.end - in.p));
	size_t rlen = nl ? (size_t)(nl - in.p) : (size_t)(in.end - in.p);
	char *record = malloc(rlen + 1);
	memcpy(record, in.p, rlen);
	record[rlen] = '\0';
	in.p += rlen + (nl != NULL);

	struct ma_record recs[MA_ANSWER_MAX];
	char *texts[MA_ANSWER_MAX];
	struct ma_query q;
	struct ma_answer a;
	const struct ma_answer *ap = NULL;
	unsigned asked = 0;
	bool first_txt = true;
	while (spf_step(spf, ap, &q) == MA_STEP_QUERY) {
		check_query(&q);
		if (++asked > QUESTIONS_MAX)
			abort();
		for (size_t i = 0; ap != NULL && i < ap->count; i++)
			free(texts[i]);
		memset(&a, 0, sizeof(a));
		a.records = recs;
		if (q.type == MA_DNS_TXT && first_txt) {
			first_txt = false;
			a.status = MA_DNS_OK;
			a.count = 1;
			texts[0] = malloc(rlen + 1);
			memcpy(texts[0], record, rlen + 1);
			recs[0] = (struct ma_record){ .text = texts[0], .len = rlen };
			ap = &a;
			continue;
		}
		if (in.p >= in.end) {
			a.status = MA_DNS_NXDOMAIN;
			ap = &a;
			continue;
		}
		static const enum ma_dns_status st[] = { MA_DNS_OK, MA_DNS_NODATA, MA_DNS_NXDOMAIN,
							 MA_DNS_TEMPFAIL, MA_DNS_PERMFAIL };
		a.status = st[take(&in) % 5];
		size_t count = a.status == MA_DNS_OK ? take(&in) % 12 : 0;
		for (size_t i = 0; i < count; i++) {
			memset(&recs[i], 0, sizeof(recs[i]));
			texts[i] = NULL;
			if (q.type == MA_DNS_A || q.type == MA_DNS_AAAA) {
				bool v6 = q.type == MA_DNS_AAAA;
				recs[i].ip.family = v6 ? AF_INET6 : AF_INET;
				unsigned char *b = (unsigned char *)&recs[i].ip.u;
				for (size_t k = 0; k < (v6 ? 16u : 4u); k++)
					b[k] = (unsigned char)take(&in);
			} else {
				size_t n = take(&in);
				if (n > (size_t)(in.end - in.p))
					n = (size_t)(in.end - in.p);
				texts[i] = malloc(n + 1);
				memcpy(texts[i], in.p, n);
				texts[i][n] = '\0';
				in.p += n;
				recs[i].text = texts[i];
				recs[i].len = n;
			}
			a.count++;
		}
		ap = &a;
	}
	for (size_t i = 0; ap != NULL && i < ap->count; i++)
		free(texts[i]);

	enum spf_result r = spf_result(spf);
	if (r > SPF_PERMERROR || spf_result_name(r) == NULL)
		abort();
	const char *exp = spf_explanation(spf);
	if (exp != NULL && (r != SPF_FAIL || strlen(exp) > SPF_EXPLANATION_MAX))
		abort();
	if (spf_problem(spf) != NULL && r != SPF_PERMERROR && r != SPF_TEMPERROR)
		abort();
	if (spf_queries(spf) != asked)
		abort();
	spf_free(&spf);
	free(record);
	return 0;
}
