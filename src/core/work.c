#include "core/work.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define WORK_THREADS_MAX 32

struct work {
	struct work *next;
	work_fn *fn, *done;
	void *arg;
	struct loop *loop;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct work *head, **tail = &head;
static bool stopping;
static pthread_t threads[WORK_THREADS_MAX];
static unsigned nthreads;

static void *worker(void *unused UNUSED)
{
	for (;;) {
		pthread_mutex_lock(&lock);
		while (head == NULL && !stopping)
			pthread_cond_wait(&cond, &lock);
		struct work *w = head;
		if (w == NULL) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		head = w->next;
		if (head == NULL)
			tail = &head;
		pthread_mutex_unlock(&lock);
		w->fn(w->arg);
		loop_post(w->loop, w->done, w->arg);
		free(w);
	}
}

void work_start(unsigned n)
{
	if (n == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores > 0 ? (unsigned)cores : 1;
	}
	if (n > WORK_THREADS_MAX)
		n = WORK_THREADS_MAX;
	stopping = false;
	for (nthreads = 0; nthreads < n; nthreads++) {
		if (pthread_create(&threads[nthreads], NULL, worker, NULL) != 0)
			log_fatal("event=thread_create_failed what=worker");
	}
}

void work_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
}

void work_submit(work_fn *fn, work_fn *done, void *arg, struct loop *loop)
{
	struct work *w = xmalloc(sizeof(*w));
	w->next = NULL;
	w->fn = fn;
	w->done = done;
	w->arg = arg;
	w->loop = loop;
	pthread_mutex_lock(&lock);
	*tail = w;
	tail = &w->next;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}
