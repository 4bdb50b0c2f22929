/* libFuzzer target: the DMARC record parser, the evaluator driven by
 * answers cut from the fuzzer's bytes, and the Authentication-Results
 * reader. Checked: the parser returns 0 or 1 and its strings stay
 * terminated; the evaluator always finishes within DMARC_QUERY_MAX
 * questions, asks only names it may (_dmarc.<suffix of a known domain>
 * or the Author Domain itself) and ends with a defined result. */
#include "mailauth/authres.h"
#include "mailauth/dmarc.h"
#include "core/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool name_allowed(const char *q)
{
	static const char *const known[] = {
		"a.b.c.example.com", "x.mail.example.com", "d.example.org",
	};
	const char *name = strncmp(q, "_dmarc.", 7) == 0 ? q + 7 : q;

	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		size_t n = strlen(name), m = strlen(known[i]);
		if (n <= m && strcmp(known[i] + m - n, name) == 0 &&
		    (n == m || known[i][m - n - 1] == '.'))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so a read past len is caught. */
	char *buf = xmalloc(size ? size : 1);
	struct dmarc_record r;
	memcpy(buf, data, size);

	int got = dmarc_record_parse(buf, size, &r);
	if (got != 0 && got != 1)
		abort();
	if (strlen(r.rua) >= sizeof(r.rua) || strlen(r.ruf) >= sizeof(r.ruf))
		abort();
	(void)authres_remove(buf, size, "mx.example.net");

	/* The evaluator: each answer is the next chunk up to a 0xff byte;
	 * its first byte picks the status and the record count. */
	const char *dk[] = { "example.com", "x.mail.example.com", "d.example.org" };
	struct dmarc *d = dmarc_new_ids("a.b.c.example.com", "mail.example.com", dk, ARRAY_SIZE(dk));
	struct ma_query q;
	struct ma_answer ans;
	struct ma_record recs[2];
	size_t pos = 0;
	int steps = 0;
	enum ma_step st = dmarc_step(d, NULL, &q);

	while (st == MA_STEP_QUERY) {
		if (++steps > DMARC_QUERY_MAX || !name_allowed(q.name)) {
			fprintf(stderr, "question %d: %s\n", steps, q.name);
			abort();
		}
		memset(&ans, 0, sizeof(ans));
		memset(recs, 0, sizeof(recs));
		if (pos >= size) {
			ans.status = MA_DNS_NXDOMAIN;
		} else {
			size_t end = pos + 1;
			uint8_t ctl = (uint8_t)buf[pos];
			while (end < size && (uint8_t)buf[end] != 0xff)
				end++;
			ans.status = (enum ma_dns_status)(ctl % 5);
			if (ans.status == MA_DNS_OK) {
				size_t n = end - pos - 1;
				/* ctl bit 3: the chunk twice (two records) */
				ans.count = (ctl & 8) ? 2 : 1;
				for (size_t i = 0; i < ans.count; i++) {
					char *t = xmalloc(n + 1);
					memcpy(t, buf + pos + 1, n);
					t[n] = '\0';
					recs[i].text = t;
					recs[i].len = n;
				}
				ans.records = recs;
			}
			pos = end + 1;
		}
		st = dmarc_step(d, &ans, &q);
		/* the answer only lives during the call */
		for (size_t i = 0; i < 2; i++)
			free((char *)recs[i].text);
	}
	enum dmarc_result res = dmarc_result(d);
	if (res > DMARC_PERMERROR || dmarc_policy(d) > DMARC_POLICY_REJECT)
		abort();
	dmarc_free(&d);
	free(buf);
	return 0;
}
