/* The outbound queue's scheduler: see queue.h. */
#include "queue/queue.h"
#include "queue/queue_private.h"
#include "config/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "dns/dns.h"
#include "net/net.h"
#include "smtp/smtp_client.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

/* Rows read per look at the queue. */
#define DUE_BATCH 1000
/* Messages sent over one connection before the next look. */
#define DEST_MSGS_MAX 100

struct queue {
	const struct config *cfg;
	struct store *store;
	struct store_reader *reader;
	struct loop *loop;
	pthread_t thread;
	struct event *timer;
	bool stopping;
	struct dest *dests;		/* attempts in progress */
	size_t active;
	int64_t *inflight;		/* queue rows being tried */
	size_t inflight_count;
};

static struct queue *q_global;
static atomic_bool kick_pending;

/* ---- rows in flight ---- */

static bool inflight_has(const struct queue *q, int64_t id)
{
	for (size_t i = 0; i < q->inflight_count; i++) {
		if (q->inflight[i] == id)
			return true;
	}
	return false;
}

static void inflight_add(struct queue *q, int64_t id)
{
	q->inflight = xrealloc(q->inflight, (q->inflight_count + 1) * sizeof(*q->inflight));
	q->inflight[q->inflight_count++] = id;
}

static void inflight_del(struct queue *q, int64_t id)
{
	for (size_t i = 0; i < q->inflight_count; i++) {
		if (q->inflight[i] == id) {
			q->inflight[i] = q->inflight[--q->inflight_count];
			return;
		}
	}
}

/* ---- a destination: one domain's due mail ---- */

struct dest {
	struct dest *next;
	struct queue *q;
	char *domain;
	struct store_queue_item *items;	/* owned */
	size_t count;
	/* Outcome per item, and the DSN it gets. */
	enum smtp_rcpt_state *state;
	enum dsn_action *action;
	char **reply;
	char *last_error;		/* of the host(s): for deferrals */
	char *remote_mta;		/* the host that answered last */
	struct route route;
	size_t next_host, next_addr;
	/* The attempt on the current address. */
	struct smtp_client_msg *msgs;
	size_t msg_count;
	size_t *msg_item;		/* rcpt k of msgs[i] is item msg_item[...] */
	size_t pending_updates;
};

static void dest_finish(struct dest *d);
static void dest_try_next(struct dest *d);

static const char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	return at ? at + 1 : address;
}

static void dest_free(struct dest *d)
{
	store_queue_items_free(&d->items, d->count);
	for (size_t i = 0; i < d->count; i++)
		free(d->reply ? d->reply[i] : NULL);
	free(d->reply);
	free(d->state);
	free(d->action);
	free(d->domain);
	free(d->last_error);
	free(d->remote_mta);
	route_free(&d->route);
	free(d);
}

static void attempt_free(struct dest *d)
{
	for (size_t i = 0; i < d->msg_count; i++) {
		struct smtp_client_msg *m = &d->msgs[i];
		for (size_t k = 0; k < m->rcpt_count; k++)
			free(m->rcpts[k].reply);
		free(m->rcpts);
	}
	free(d->msgs);
	d->msgs = NULL;
	d->msg_count = 0;
}

/* The client's verdict on an address: record it, then the next address
 * for whoever is still pending, or the end. */
static void attempt_done(void *arg, const char *host_error)
{
	struct dest *d = arg;
	bool pending = false;
	for (size_t i = 0; i < d->msg_count; i++) {
		struct smtp_client_msg *m = &d->msgs[i];
		for (size_t k = 0; k < m->rcpt_count; k++) {
			struct smtp_client_rcpt *r = &m->rcpts[k];
			size_t it = (size_t)r->queue_row;
			if (r->state == SMTP_RCPT_PENDING) {
				pending = true;
				continue;
			}
			d->state[it] = r->state;
			free(d->reply[it]);
			d->reply[it] = r->reply;
			r->reply = NULL;
			log_info("event=%s queue_id=%s rcpt=%s relay=%s reply=\"%s\"",
				 r->state == SMTP_RCPT_DELIVERED ? "relayed" :
				 r->state == SMTP_RCPT_FAILED ? "relay_failed" : "relay_deferred",
				 m->queue_id, r->address, d->remote_mta ? d->remote_mta : "",
				 d->reply[it] ? d->reply[it] : "");
		}
	}
	attempt_free(d);
	if (host_error != NULL) {
		free(d->last_error);
		d->last_error = xstrdup(host_error);
		log_info("event=relay_host_failed domain=%s host=%s error=\"%s\"", d->domain,
			 d->remote_mta ? d->remote_mta : "", host_error);
	}
	if (pending && !d->q->stopping)
		dest_try_next(d);
	else
		dest_finish(d);
}

/* Builds the messages of the items still pending and sends them to the
 * next address of the route. */
static void dest_try_next(struct dest *d)
{
	struct queue *q = d->q;
	const struct route_host *h = NULL;
	while (d->next_host < d->route.count) {
		h = &d->route.hosts[d->next_host];
		if (d->next_addr < h->count)
			break;
		d->next_host++;
		d->next_addr = 0;
		h = NULL;
	}
	if (h == NULL) {
		dest_finish(d);
		return;
	}
	size_t a = d->next_addr++;
	/* One message per queued message, with its pending recipients. */
	for (size_t i = 0; i < d->count; i++) {
		if (d->state[i] != SMTP_RCPT_PENDING)
			continue;
		struct store_queue_item *it = &d->items[i];
		struct smtp_client_msg *m = NULL;
		for (size_t j = 0; j < d->msg_count; j++) {
			if (strcmp(d->msgs[j].queue_id, it->queue_id) == 0)
				m = &d->msgs[j];
		}
		if (m == NULL) {
			if (d->msg_count >= DEST_MSGS_MAX)
				continue;	/* the next look takes it */
			d->msgs = xrealloc(d->msgs, (d->msg_count + 1) * sizeof(*d->msgs));
			m = &d->msgs[d->msg_count++];
			memset(m, 0, sizeof(*m));
			m->queue_id = it->queue_id;
			m->sender = it->sender;
			m->body = it->body;
			m->size = it->size;
		}
		m->rcpts = xrealloc(m->rcpts, (m->rcpt_count + 1) * sizeof(*m->rcpts));
		struct smtp_client_rcpt *r = &m->rcpts[m->rcpt_count++];
		memset(r, 0, sizeof(*r));
		r->address = it->recipient;
		r->queue_row = (int64_t)i;
		r->state = SMTP_RCPT_PENDING;
	}
	if (d->msg_count == 0) {
		dest_finish(d);
		return;
	}
	free(d->remote_mta);
	d->remote_mta = xstrdup(h->name);
	struct smtp_client_params p = {
		.helo_name = q->cfg->hostname,
		.peer_name = h->name,
		.addr = h->addrs[a],
		.addrlen = h->lens[a],
		.tls = d->route.tls == RELAY_TLS_OPPORTUNISTIC ? SMTP_TLS_OPPORTUNISTIC :
		       SMTP_TLS_REQUIRED,
		.tls_verify = d->route.tls == RELAY_TLS_VERIFY,
		.auth_user = d->route.smarthost ? q->cfg->smarthost_user : NULL,
		.auth_password = d->route.smarthost ? q->cfg->smarthost_password : NULL,
		.connect_timeout = q->cfg->queue_connect_timeout,
	};
	smtp_client_start(q->loop, q->store, &p, d->msgs, d->msg_count, attempt_done, d);
}

static void route_done(void *arg, const char *error, bool permanent)
{
	struct dest *d = arg;
	if (error != NULL) {
		/* No host to try: everyone gets the resolver's answer. */
		for (size_t i = 0; i < d->count; i++) {
			d->state[i] = permanent ? SMTP_RCPT_FAILED : SMTP_RCPT_DEFERRED;
			free(d->reply[i]);
			d->reply[i] = xstrdup(error);
		}
		log_info("event=route_failed domain=%s permanent=%s error=\"%s\"", d->domain,
			 permanent ? "yes" : "no", error);
		dest_finish(d);
		return;
	}
	dest_try_next(d);
}

/* ---- the end of an attempt: bounces, then the rows ---- */

static void updates_done(void *arg, int result)
{
	struct dest *d = arg;
	struct queue *q = d->q;
	if (result < 0)
		log_error("event=queue_update_failed domain=%s note=\"the rows stay due\"", d->domain);
	for (size_t i = 0; i < d->count; i++)
		inflight_del(q, d->items[i].id);
	for (struct dest **p = &q->dests; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			break;
		}
	}
	q->active--;
	dest_free(d);
	if (!q->stopping)
		queue_kick();
}

/* Seconds until the next try after attempts failed ones: retry_min,
 * doubling, at most retry_max. */
static int64_t backoff(const struct config *cfg, uint32_t attempts)
{
	uint64_t t = cfg->queue_retry_min;
	for (uint32_t i = 0; i < attempts && t < cfg->queue_retry_max; i++)
		t *= 2;
	return (int64_t)(t < cfg->queue_retry_max ? t : cfg->queue_retry_max);
}

static void bounces_done(void *arg, int result)
{
	struct dest *d = arg;
	struct queue *q = d->q;
	if (q->stopping) {
		/* The writer is stopping too: the rows stay as they are (a
		 * committed bounce may then be sent again after the restart:
		 * twice rather than never). */
		updates_done(d, 0);
		return;
	}
	int64_t now = time_now_ms() / 1000;
	struct store_queue_update *u = xcalloc(d->count, sizeof(*u));
	for (size_t i = 0; i < d->count; i++) {
		struct store_queue_item *it = &d->items[i];
		u[i].id = it->id;
		switch (d->state[i]) {
		case SMTP_RCPT_DELIVERED:
			u[i].remove = true;
			break;
		case SMTP_RCPT_FAILED:
			if (result == 0) {
				u[i].remove = true;
				break;
			}
			/* The bounce could not be stored: keep the row. */
			u[i].next_attempt = now + q->cfg->queue_retry_min;
			u[i].error = "the bounce could not be stored";
			break;
		case SMTP_RCPT_DEFERRED:
		case SMTP_RCPT_PENDING:
			u[i].next_attempt = now + backoff(q->cfg, it->attempts);
			u[i].error = d->reply[i] ? d->reply[i] : d->last_error;
			u[i].delay_notified = d->action[i] == DSN_DELAYED && result == 0;
			break;
		}
	}
	store_queue_update(q->store, u, d->count, q->loop, updates_done, d);
	free(u);
}

static void dest_finish(struct dest *d)
{
	struct queue *q = d->q;
	int64_t now = time_now_ms() / 1000;
	if (q->stopping) {
		/* Cut short: nothing is recorded, the rows stay due and are
		 * tried again after the restart. */
		updates_done(d, 0);
		return;
	}
	/* Deferred for longer than max_age: that is a failure now. */
	for (size_t i = 0; i < d->count; i++) {
		enum smtp_rcpt_state st = d->state[i];
		if ((st == SMTP_RCPT_DEFERRED || st == SMTP_RCPT_PENDING) &&
		    now - d->items[i].created >= (int64_t)q->cfg->queue_max_age) {
			const char *last = d->reply[i] ? d->reply[i] : d->last_error;
			char *why = xasprintf("%s (given up after %u attempts over %u days)",
					      last ? last : "451 4.4.7 Delivery time expired",
					      d->items[i].attempts + 1,
					      (unsigned)(q->cfg->queue_max_age / 86400));
			free(d->reply[i]);
			d->reply[i] = why;
			d->state[i] = SMTP_RCPT_FAILED;
			log_info("event=relay_expired queue_id=%s rcpt=%s", d->items[i].queue_id,
				 d->items[i].recipient);
		}
	}
	/* Failed: a bounce. Still deferred after delay_notice: a delay notice,
	 * once. */
	for (size_t i = 0; i < d->count; i++) {
		const struct store_queue_item *it = &d->items[i];
		enum smtp_rcpt_state st = d->state[i];
		if (st == SMTP_RCPT_FAILED) {
			d->action[i] = DSN_FAILED;
		} else if ((st == SMTP_RCPT_DEFERRED || st == SMTP_RCPT_PENDING) &&
			   q->cfg->queue_delay_notice > 0 && !it->delay_notified &&
			   now - it->created >= (int64_t)q->cfg->queue_delay_notice) {
			d->action[i] = DSN_DELAYED;
			if (d->reply[i] == NULL && d->last_error != NULL)
				d->reply[i] = xstrdup(d->last_error);
		}
	}
	bounce_send(q->cfg, q->store, q->reader, q->loop, d->items, d->count, d->action,
		    (const char *const *)d->reply, d->remote_mta, bounces_done, d);
}

/* ---- looking at the queue ---- */

static void start_dest(struct queue *q, const char *domain, struct store_queue_item *items,
		       size_t count)
{
	struct dest *d = xcalloc(1, sizeof(*d));
	d->q = q;
	d->domain = xstrdup(domain);
	d->items = items;
	d->count = count;
	d->state = xcalloc(count, sizeof(*d->state));
	d->action = xcalloc(count, sizeof(*d->action));
	d->reply = xcalloc(count, sizeof(*d->reply));
	for (size_t i = 0; i < count; i++) {
		inflight_add(q, items[i].id);
		if (items[i].bounce_reason != NULL) {
			/* `yubin queue bounce`: the operator's verdict. */
			d->state[i] = SMTP_RCPT_FAILED;
			d->reply[i] = xasprintf("550 5.0.0 %s", items[i].bounce_reason);
		}
	}
	d->next = q->dests;
	q->dests = d;
	q->active++;
	bool any = false;
	for (size_t i = 0; i < count; i++)
		any |= d->state[i] == SMTP_RCPT_PENDING;
	if (!any) {
		dest_finish(d);
		return;
	}
	route_lookup(q->cfg, q->loop, domain, &d->route, route_done, d);
}

static bool dest_active(const struct queue *q, const char *domain)
{
	for (const struct dest *d = q->dests; d; d = d->next) {
		if (str_ieq(d->domain, domain))
			return true;
	}
	return false;
}

static void tick(struct queue *q)
{
	atomic_store(&kick_pending, false);
	if (q->stopping || q->active >= q->cfg->queue_max_destinations)
		return;
	struct store_queue_item *items;
	size_t count;
	if (store_queue_due(q->reader, time_now_ms() / 1000, DUE_BATCH, &items, &count) < 0)
		return;
	if (count > 0)
		log_debug("event=queue_due rows=%zu active=%zu", count, q->active);
	/* Group by domain (one smarthost takes everything, still per domain:
	 * a failing domain's replies do not hold up another's). */
	bool *taken = xcalloc(count ? count : 1, sizeof(bool));
	for (size_t i = 0; i < count && q->active < q->cfg->queue_max_destinations; i++) {
		if (taken[i] || inflight_has(q, items[i].id))
			continue;
		const char *domain = domain_of(items[i].recipient);
		if (dest_active(q, domain))
			continue;
		size_t n = 0;
		for (size_t j = i; j < count; j++) {
			if (!taken[j] && !inflight_has(q, items[j].id) &&
			    str_ieq(domain_of(items[j].recipient), domain))
				n++;
		}
		struct store_queue_item *mine = xcalloc(n, sizeof(*mine));
		size_t k = 0;
		for (size_t j = i; j < count; j++) {
			if (!taken[j] && !inflight_has(q, items[j].id) &&
			    str_ieq(domain_of(items[j].recipient), domain)) {
				mine[k++] = items[j];
				memset(&items[j], 0, sizeof(items[j]));
				taken[j] = true;
			}
		}
		char *dom = xstrdup(domain_of(mine[0].recipient));
		start_dest(q, dom, mine, n);
		free(dom);
	}
	free(taken);
	store_queue_items_free(&items, count);
}

static void timer_cb(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	tick(arg);
}

static void kick_cb(void *arg)
{
	tick(arg);
}

void queue_kick(void)
{
	struct queue *q = q_global;
	if (q == NULL || atomic_exchange(&kick_pending, true))
		return;
	loop_post(q->loop, kick_cb, q);
}

static void *queue_main(void *arg)
{
	struct queue *q = arg;
	q->reader = store_reader_new(q->store);
	dns_thread_init(q->loop);
	/* Each second: retries that came due, and `yubin queue flush`. */
	q->timer = event_new(loop_base(q->loop), -1, EV_PERSIST, timer_cb, q);
	struct timeval tv = { 1, 0 };
	event_add(q->timer, &tv);
	tick(q);
	loop_run(q->loop);
	event_free(q->timer);
	/* Cut what is in flight: the clients' on_close reports come now,
	 * and end their destinations; those still looking up their route end
	 * here. Those whose bounces or updates are in the store writer end
	 * when it answers (queue_free). */
	net_close_all(q->loop);
	for (struct dest *d = q->dests, *next; d; d = next) {
		next = d->next;
		if (d->route.pending != NULL) {
			route_cancel(&d->route);
			updates_done(d, 0);
		}
	}
	dns_thread_deinit();
	store_reader_free(&q->reader);
	return NULL;
}

static void stop_cb(void *arg)
{
	struct queue *q = arg;
	q->stopping = true;
	loop_stop(q->loop);
}

static void kick_hook(void *arg UNUSED)
{
	queue_kick();
}

int queue_start(const struct config *cfg, struct store *store)
{
	char *error = NULL;
	struct dns_settings dns = {
		.servers = cfg->dns_servers,
		.timeout_ms = cfg->dns_timeout * 1000,
		.attempts = cfg->dns_attempts,
	};
	if (dns_init(&dns, &error) < 0) {
		log_error("event=dns_init_failed error=\"%s\"", error);
		free(error);
		return -1;
	}
	struct queue *q = xcalloc(1, sizeof(*q));
	q->cfg = cfg;
	q->store = store;
	q->loop = loop_new();
	q_global = q;
	store_set_queue_hook(store, kick_hook, NULL);
	if (pthread_create(&q->thread, NULL, queue_main, q) != 0) {
		log_error("event=thread_create_failed what=queue");
		q_global = NULL;
		loop_free(&q->loop);
		free(q);
		return -1;
	}
	log_info("event=queue_started smarthost=%s", cfg->smarthost ? cfg->smarthost : "none");
	return 0;
}

void queue_stop(void)
{
	struct queue *q = q_global;
	if (q == NULL)
		return;
	store_set_queue_hook(q->store, NULL, NULL);
	loop_post(q->loop, stop_cb, q);
	pthread_join(q->thread, NULL);
	dns_deinit();
}

void queue_free(void)
{
	struct queue *q = q_global;
	if (q == NULL)
		return;
	q_global = NULL;
	/* The writer has stopped: the answers it posted to our loop run now
	 * (on this thread), and free what waited for them. */
	loop_free(&q->loop);
	free(q->inflight);
	free(q);
}
