#include "core/loop.h"
#include "core/log.h"
#include "core/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <event2/event.h>
#include <event2/thread.h>

struct post {
	struct post *next;
	loop_fn *fn;
	void *arg;
};

struct loop {
	struct event_base *base;
	struct event *wake;
	pthread_mutex_t lock;
	struct post *head, **tail;
};

void loop_global_init(void)
{
	if (evthread_use_pthreads() < 0)
		log_fatal("event=loop_init error=\"libevent without pthreads\"");
}

static void run_posts(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct loop *loop = arg;
	pthread_mutex_lock(&loop->lock);
	struct post *p = loop->head;
	loop->head = NULL;
	loop->tail = &loop->head;
	pthread_mutex_unlock(&loop->lock);
	while (p) {
		struct post *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
	}
}

struct loop *loop_new(void)
{
	struct loop *loop = xcalloc(1, sizeof(*loop));
	loop->base = event_base_new();
	if (loop->base == NULL)
		log_fatal("event=loop_init error=\"event_base_new failed\"");
	loop->wake = event_new(loop->base, -1, 0, run_posts, loop);
	pthread_mutex_init(&loop->lock, NULL);
	loop->tail = &loop->head;
	return loop;
}

void loop_free(struct loop **loopp)
{
	struct loop *loop = *loopp;
	if (loop == NULL)
		return;
	run_posts(-1, 0, loop);
	event_free(loop->wake);
	event_base_free(loop->base);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
	*loopp = NULL;
}

struct event_base *loop_base(struct loop *loop)
{
	return loop->base;
}

void loop_post(struct loop *loop, loop_fn *fn, void *arg)
{
	struct post *p = xmalloc(sizeof(*p));
	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&loop->lock);
	*loop->tail = p;
	loop->tail = &p->next;
	pthread_mutex_unlock(&loop->lock);
	event_active(loop->wake, 0, 0);
}

void loop_run(struct loop *loop)
{
	event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
}

void loop_stop(struct loop *loop)
{
	event_base_loopbreak(loop->base);
}
