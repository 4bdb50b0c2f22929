/* The evaluators' questions asked through dns/: a thin adapter from
 * struct dns_rr_result to struct ma_answer.
 *
 * dns_query() already reports from the loop (never inside the call), so
 * the callback rules of dns.h carry over unchanged. */
#include "mailauth/ma_resolve.h"
#include "core/util.h"
#include "dns/dns.h"

#include <stdlib.h>
#include <string.h>

struct ma_lookup {
	struct dns_lookup *dns;
	ma_resolve_cb *cb;
	void *ctx;
};

static enum ma_dns_status status_of(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return MA_DNS_OK;
	case DNS_NODATA:
	case DNS_NULL_MX:
		return MA_DNS_NODATA;
	case DNS_NXDOMAIN:
		return MA_DNS_NXDOMAIN;
	case DNS_BADNAME:
		return MA_DNS_PERMFAIL;
	case DNS_TEMPFAIL:
		break;
	}
	return MA_DNS_TEMPFAIL;
}

static void on_answer(const struct dns_rr_result *r, void *ctx)
{
	struct ma_lookup *l = ctx;
	struct ma_record recs[MA_ANSWER_MAX];
	struct ma_answer a = { .status = status_of(r->status), .records = recs };
	for (size_t i = 0; a.status == MA_DNS_OK && i < r->count && i < MA_ANSWER_MAX; i++) {
		memset(&recs[i], 0, sizeof(recs[i]));
		if (r->rr[i].text != NULL) {
			recs[i].text = r->rr[i].text;
			recs[i].len = r->rr[i].len;
		} else {
			recs[i].ip.family = r->rr[i].family;
			if (r->rr[i].family == AF_INET6)
				recs[i].ip.u.v6 = r->rr[i].addr.v6;
			else
				recs[i].ip.u.v4 = r->rr[i].addr.v4;
		}
		a.count++;
	}
	ma_resolve_cb *cb = l->cb;
	void *cb_ctx = l->ctx;
	free(l);
	cb(&a, cb_ctx);
}

struct ma_lookup *ma_resolve(const struct ma_query *q, ma_resolve_cb *cb, void *ctx)
{
	struct ma_lookup *l = xcalloc(1, sizeof(*l));
	l->cb = cb;
	l->ctx = ctx;
	/* The numbers of enum ma_dns_type are those of the wire, as are
	 * dns_rr_type's. */
	l->dns = dns_query(q->name, (enum dns_rr_type)q->type, on_answer, l);
	return l;
}

void ma_resolve_cancel(struct ma_lookup **lp)
{
	struct ma_lookup *l = *lp;
	if (l == NULL)
		return;
	*lp = NULL;
	dns_cancel(&l->dns);
	free(l);
}
