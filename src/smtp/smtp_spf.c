/* SPF in the SMTP session: spf_step() driven by ma_resolve(), one question
 * at a time, with one timer over the whole evaluation. */
#include "smtp/smtp_spf.h"
#include "core/log.h"
#include "core/util.h"
#include "dns/dns.h"
#include "mailauth/ma_resolve.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct smtp_spf {
	struct spf *spf;
	char *session_id;
	bool helo_identity;
	bool done;
	bool timed_out;
	struct ma_lookup *lookup;
	struct dns_timer *timer;
	smtp_spf_ready_fn *ready;
	void *ready_arg;
	struct dns_timer *ready_event;	/* runs ready() from the loop */
};

static void finish(struct smtp_spf *x)
{
	x->done = true;
	ma_resolve_cancel(&x->lookup);
	dns_timer_free(&x->timer);
	const char *problem = smtp_spf_problem(x);
	log_info("event=spf session=%s result=%s identity=%s domain=%s queries=%u%s%s%s",
		 x->session_id, spf_result_name(smtp_spf_result(x)),
		 x->helo_identity ? "helo" : "mailfrom", spf_domain(x->spf), spf_queries(x->spf),
		 problem ? " problem=\"" : "", problem ? problem : "", problem ? "\"" : "");
	if (x->ready != NULL) {
		smtp_spf_ready_fn *ready = x->ready;
		x->ready = NULL;
		ready(x->ready_arg);
	}
}

static void on_answer(const struct ma_answer *a, void *ctx);

/* Runs the evaluator until it asks a question or ends. */
static void run(struct smtp_spf *x, const struct ma_answer *a)
{
	struct ma_query q;
	if (spf_step(x->spf, a, &q) == MA_STEP_DONE) {
		finish(x);
		return;
	}
	x->lookup = ma_resolve(&q, on_answer, x);
}

static void on_answer(const struct ma_answer *a, void *ctx)
{
	struct smtp_spf *x = ctx;
	x->lookup = NULL;	/* the handle is gone once its callback runs */
	run(x, a);
}

static void on_timeout(void *ctx)
{
	struct smtp_spf *x = ctx;
	dns_timer_free(&x->timer);
	x->timed_out = true;
	finish(x);
}

static void on_start(void *ctx)
{
	struct smtp_spf *x = ctx;
	dns_timer_free(&x->ready_event);
	run(x, NULL);
}

struct smtp_spf *smtp_spf_start(const char *session_id, const char *peer_ip, const char *helo,
				const char *sender, const char *receiver, unsigned timeout_ms)
{
	struct smtp_spf *x = xcalloc(1, sizeof(*x));
	x->session_id = xstrdup(session_id);
	struct ma_ip ip;
	memset(&ip, 0, sizeof(ip));
	if (inet_pton(AF_INET, peer_ip, &ip.u.v4) == 1)
		ip.family = AF_INET;
	else if (inet_pton(AF_INET6, peer_ip, &ip.u.v6) == 1)
		ip.family = AF_INET6;
	x->helo_identity = sender == NULL || sender[0] == '\0';
	x->spf = spf_new(&ip, helo, sender, receiver);
	if (ip.family == 0) {
		/* Not an IP connection (cannot happen on a listener): nothing
		 * to check. */
		spf_free(&x->spf);
		x->spf = spf_new(&ip, "", "", receiver);
	}
	x->timer = dns_timer_new(timeout_ms ? timeout_ms : SMTP_SPF_TIMEOUT_MS, on_timeout, x);
	/* The first step from the loop too: the MAIL FROM reply goes out
	 * first, and an evaluation that needs no DNS at all (a HELO that is
	 * an address literal) finishes there. */
	x->ready_event = dns_timer_new(0, on_start, x);
	return x;
}

bool smtp_spf_done(const struct smtp_spf *x)
{
	return x == NULL || x->done;
}

void smtp_spf_wait(struct smtp_spf *x, smtp_spf_ready_fn *ready, void *arg)
{
	x->ready = ready;
	x->ready_arg = arg;
}

enum spf_result smtp_spf_result(const struct smtp_spf *x)
{
	if (x == NULL || !x->done)
		return SPF_NONE;
	/* RFC 7208 4.6.4: out of time is a temporary error. */
	return x->timed_out ? SPF_TEMPERROR : spf_result(x->spf);
}

const char *smtp_spf_domain(const struct smtp_spf *x)
{
	return x != NULL ? spf_domain(x->spf) : NULL;
}

bool smtp_spf_helo(const struct smtp_spf *x)
{
	return x != NULL && x->helo_identity;
}

const char *smtp_spf_identity(const struct smtp_spf *x)
{
	return x != NULL ? spf_identity(x->spf) : NULL;
}

const char *smtp_spf_explanation(const struct smtp_spf *x)
{
	return x != NULL && x->done && !x->timed_out ? spf_explanation(x->spf) : NULL;
}

const char *smtp_spf_problem(const struct smtp_spf *x)
{
	if (x == NULL || !x->done)
		return NULL;
	if (x->timed_out)
		return "the evaluation took too long (RFC 7208 4.6.4)";
	return spf_problem(x->spf);
}

void smtp_spf_free(struct smtp_spf **xp)
{
	struct smtp_spf *x = *xp;
	if (x == NULL)
		return;
	*xp = NULL;
	ma_resolve_cancel(&x->lookup);
	dns_timer_free(&x->timer);
	dns_timer_free(&x->ready_event);
	spf_free(&x->spf);
	free(x->session_id);
	free(x);
}
