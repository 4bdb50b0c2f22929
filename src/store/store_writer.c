/* The store's writer thread: group commit.
 *
 * Every session that needs a durable write hands a job to this thread. The
 * thread takes all jobs waiting, syncs their files, applies them in one
 * transaction (each in a savepoint), commits once, and tells each session
 * the result on its own loop. Under load many sessions share one fsync of
 * the WAL; with one session it costs what a plain commit costs. */
#include "store/store_private.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Enough to amortise the commit; small enough that one slow batch does not
 * hold back answers for long. */
#define WRITER_BATCH_MAX 512

int store_sync_dir(struct store *s, const char *dir)
{
	int fd = openat(s->data_dir_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = fd < 0 || fsync(fd) < 0 ? -1 : 0;
	if (r < 0)
		log_error("event=dir_sync_failed dir=%s error=\"%s\"", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

static void run_batch(struct store *s, struct store_job *jobs)
{
	char *error = NULL;
	struct store_job *j;
	size_t n = 0;

	for (j = jobs; j; j = j->next, n++)
		j->result = j->prepare ? j->prepare(j) : 0;

	/* Make the new directory entries durable, once per folder. */
	for (j = jobs; j; j = j->next) {
		if (j->result < 0 || j->sync_dir[0] == '\0')
			continue;
		bool seen = false, parent = j->sync_parent;
		for (struct store_job *k = jobs; k != j; k = k->next) {
			if (k->result == 0 && strcmp(k->sync_dir, j->sync_dir) == 0)
				seen = true;
		}
		if (seen)
			continue;
		for (struct store_job *k = j->next; k; k = k->next) {
			if (k->result == 0 && strcmp(k->sync_dir, j->sync_dir) == 0)
				parent |= k->sync_parent;
		}
		(void)store_sync_dir(s, j->sync_dir);
		if (parent) {
			char *p = xstrdup(j->sync_dir), *slash = strrchr(p, '/');
			if (slash != NULL) {
				*slash = '\0';
				(void)store_sync_dir(s, p);
			}
			free(p);
		}
	}

	int r = store_exec(s->writer_db, "BEGIN IMMEDIATE", &error);
	for (j = jobs; r == 0 && j; j = j->next) {
		if (j->result < 0)
			continue;
		if (store_exec(s->writer_db, "SAVEPOINT job", &error) < 0) {
			r = -1;
			break;
		}
		j->result = j->apply(j, s->writer_db);
		if (j->result < 0)
			sqlite3_exec(s->writer_db, "ROLLBACK TO job", NULL, NULL, NULL);
		if (store_exec(s->writer_db, "RELEASE job", &error) < 0)
			r = -1;
	}
	if (r == 0)
		r = store_exec(s->writer_db, "COMMIT", &error);
	if (r < 0) {
		log_error("event=commit_failed jobs=%zu error=\"%s\"", n, error);
		free(error);
		sqlite3_exec(s->writer_db, "ROLLBACK", NULL, NULL, NULL);
		for (j = jobs; j; j = j->next)
			j->result = -1;
	} else {
		log_debug("event=commit jobs=%zu", n);
	}

	while (jobs) {
		j = jobs;
		jobs = j->next;
		j->finish(j, j->result);
	}
}

static void *writer_main(void *arg)
{
	struct store *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->writer_lock);
		while (s->jobs_head == NULL && !s->writer_stopping)
			pthread_cond_wait(&s->writer_cond, &s->writer_lock);
		if (s->jobs_head == NULL) {
			pthread_mutex_unlock(&s->writer_lock);
			break;
		}
		struct store_job *batch = s->jobs_head, *last = batch;
		size_t n = 1;
		while (last->next && n < WRITER_BATCH_MAX) {
			last = last->next;
			n++;
		}
		s->jobs_head = last->next;
		if (s->jobs_head == NULL)
			s->jobs_tail = &s->jobs_head;
		last->next = NULL;
		pthread_mutex_unlock(&s->writer_lock);
		run_batch(s, batch);
	}
	return NULL;
}

int store_writer_start(struct store *s, char **error_r)
{
	store_clean_tmp(s);
	if (store_db_open(s, &s->writer_db, false, error_r) < 0)
		return -1;
	int e = pthread_create(&s->writer_thread, NULL, writer_main, s);
	if (e != 0) {
		*error_r = xasprintf("starting the writer thread: %s", strerror(e));
		sqlite3_close(s->writer_db);
		s->writer_db = NULL;
		return -1;
	}
	s->writer_running = true;
	return 0;
}

void store_writer_stop(struct store *s)
{
	if (!s->writer_running)
		return;
	pthread_mutex_lock(&s->writer_lock);
	s->writer_stopping = true;
	pthread_cond_signal(&s->writer_cond);
	pthread_mutex_unlock(&s->writer_lock);
	pthread_join(s->writer_thread, NULL);
	s->writer_running = false;
	sqlite3_close(s->writer_db);
	s->writer_db = NULL;
}

void store_writer_submit(struct store *s, struct store_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&s->writer_lock);
	if (!s->writer_running || s->writer_stopping) {
		pthread_mutex_unlock(&s->writer_lock);
		job->finish(job, -1);
		return;
	}
	*s->jobs_tail = job;
	s->jobs_tail = &job->next;
	pthread_cond_signal(&s->writer_cond);
	pthread_mutex_unlock(&s->writer_lock);
}
