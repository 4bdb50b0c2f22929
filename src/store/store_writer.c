/* The store's writer thread: group commit.
 *
 * Every session that needs a durable write hands a job to this thread. The
 * thread takes all jobs waiting, syncs their folders, applies them in one
 * transaction (each in a savepoint), commits once, and tells each session
 * the result on its own loop. Under load many sessions share one fsync of
 * the WAL; with one session it costs what a plain commit costs.
 *
 * A job with files of its own (a new body: fdatasync, then its rename into
 * msg/) has them synced first by one of a few sync threads, so that the
 * bodies of concurrent sessions reach the disk side by side (the block
 * layer merges their cache flushes) and while the writer commits the
 * batch before, instead of one after the other in the writer. The job
 * reaches the writer only then: nothing is committed, and so nothing is
 * acknowledged, before its body is on stable storage. */
#include "store/store_private.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
		j->result = j->prepared ? j->prepare_result : j->prepare ? j->prepare(j) : 0;

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

/* ---- the full-text index, after the commits ----
 *
 * A message's text is indexed after the commit that stored it (its 250 or
 * OK does not wait for it), many messages in one transaction: FTS5 writes
 * one new segment per transaction, so a batch of a few hundred costs a
 * fraction of what as many one-message segments (and their merges) cost
 * in pages written and synced. The batch is written when INDEX_BATCH_MAX
 * messages or INDEX_BYTES_MAX of text wait, when the writer has had no
 * job for INDEX_IDLE_MS, and when the server stops. */
#define INDEX_BATCH_MAX 256
#define INDEX_BYTES_MAX (16 * 1024 * 1024)
#define INDEX_IDLE_MS 200

void store_index_later(struct store *s, int64_t message_id, const char *queue_id,
		       struct store_text *t)
{
	struct store_index_item *it = xcalloc(1, sizeof(*it));
	it->message_id = message_id;
	snprintf(it->queue_id, sizeof(it->queue_id), "%s", queue_id);
	it->text = *t;
	memset(t, 0, sizeof(*t));
	*s->index_tail = it;
	s->index_tail = &it->next;
	s->index_count++;
	s->index_bytes += it->text.header.len + it->text.body.len;
}

static void index_run(struct store *s)
{
	struct store_index_item *items = s->index_head;
	size_t n = s->index_count;
	if (items == NULL)
		return;
	s->index_head = NULL;
	s->index_tail = &s->index_head;
	s->index_count = s->index_bytes = 0;

	sqlite3 *db = s->writer_db;
	sqlite3_stmt *mark = NULL, *ins = NULL, *gc = NULL, *old = NULL;
	char *error = NULL;
	int r = store_exec(db, "BEGIN IMMEDIATE", &error);
	/* The row must still be the one the text belongs to (queue_id: an
	 * expunged message's id may be reused) and not indexed yet. */
	if (r == 0 && (sqlite3_prepare_v2(db, "UPDATE messages SET text_indexed = ?"
					  " WHERE id = ? AND queue_id = ? AND text_indexed = "
					  STORE_TEXT_PENDING_SQL,
					  -1, &mark, NULL) != SQLITE_OK ||
		       sqlite3_prepare_v2(db, "INSERT INTO message_text (rowid, header, body)"
					  " VALUES (?, ?, ?)", -1, &ins, NULL) != SQLITE_OK ||
		       sqlite3_prepare_v2(db, "DELETE FROM text_gc WHERE id = ?",
					  -1, &gc, NULL) != SQLITE_OK ||
		       sqlite3_prepare_v2(db, "DELETE FROM message_text WHERE rowid = ?",
					  -1, &old, NULL) != SQLITE_OK))
		r = -1;
	for (struct store_index_item *it = items; r == 0 && it; it = it->next) {
		sqlite3_reset(mark);
		sqlite3_bind_int(mark, 1, it->text.complete);
		sqlite3_bind_int64(mark, 2, it->message_id);
		sqlite3_bind_text(mark, 3, it->queue_id, -1, SQLITE_STATIC);
		if (sqlite3_step(mark) != SQLITE_DONE) {
			r = -1;
			break;
		}
		if (sqlite3_changes(db) != 1)
			continue;	/* expunged meanwhile */
		/* The id of an expunged message whose text is still in the
		 * index: that goes first. */
		sqlite3_reset(gc);
		sqlite3_bind_int64(gc, 1, it->message_id);
		if (sqlite3_step(gc) != SQLITE_DONE) {
			r = -1;
			break;
		}
		if (sqlite3_changes(db) == 1) {
			sqlite3_reset(old);
			sqlite3_bind_int64(old, 1, it->message_id);
			if (sqlite3_step(old) != SQLITE_DONE) {
				r = -1;
				break;
			}
		}
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, it->message_id);
		sqlite3_bind_text(ins, 2, it->text.header.data ? it->text.header.data : "",
				  (int)it->text.header.len, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, it->text.body.data ? it->text.body.data : "",
				  (int)it->text.body.len, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			r = -1;
	}
	if (r < 0 && error == NULL)
		error = xstrdup(sqlite3_errmsg(db));
	sqlite3_finalize(mark);
	sqlite3_finalize(ins);
	sqlite3_finalize(gc);
	sqlite3_finalize(old);
	if (r == 0)
		r = store_exec(db, "COMMIT", &error);
	if (r < 0) {
		/* The rows stay unindexed: SEARCH reads those messages. */
		log_error("event=index_failed messages=%zu error=\"%s\"", n, error);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		log_debug("event=indexed messages=%zu", n);
	}
	free(error);
	while (items) {
		struct store_index_item *it = items;
		items = it->next;
		store_text_deinit(&it->text);
		free(it);
	}
}

/* Removes from the index the texts of up to TEXT_GC_BATCH expunged
 * messages (text_gc), in one transaction. Returns how many, or -1. */
#define TEXT_GC_BATCH 64
static int text_gc_run(struct store *s)
{
	sqlite3 *db = s->writer_db;
	sqlite3_stmt *sel = NULL, *del = NULL, *gc = NULL;
	char *error = NULL;
	int n = 0;
	int r = store_exec(db, "BEGIN IMMEDIATE", &error);
	if (r == 0 && (sqlite3_prepare_v2(db, "SELECT id FROM text_gc ORDER BY id LIMIT ?",
					  -1, &sel, NULL) != SQLITE_OK ||
		       sqlite3_prepare_v2(db, "DELETE FROM message_text WHERE rowid = ?",
					  -1, &del, NULL) != SQLITE_OK ||
		       sqlite3_prepare_v2(db, "DELETE FROM text_gc WHERE id = ?",
					  -1, &gc, NULL) != SQLITE_OK))
		r = -1;
	if (r == 0) {
		sqlite3_bind_int(sel, 1, TEXT_GC_BATCH);
		int rc;
		while (r == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(sel, 0);
			sqlite3_reset(del);
			sqlite3_bind_int64(del, 1, id);
			sqlite3_reset(gc);
			sqlite3_bind_int64(gc, 1, id);
			if (sqlite3_step(del) != SQLITE_DONE || sqlite3_step(gc) != SQLITE_DONE)
				r = -1;
			n++;
		}
		if (r == 0 && rc != SQLITE_DONE)
			r = -1;
	}
	if (r < 0 && error == NULL)
		error = xstrdup(sqlite3_errmsg(db));
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	sqlite3_finalize(gc);
	if (r == 0)
		r = store_exec(db, "COMMIT", &error);
	if (r < 0) {
		/* Tried again when the writer is next idle. */
		log_error("event=text_gc_failed error=\"%s\"", error);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	free(error);
	return r < 0 ? -1 : n;
}

/* Under writer_lock: waits for a job (or the stop). In a quiet spell of
 * INDEX_IDLE_MS, texts waiting for the index are indexed, then expunged
 * texts leave it, a batch at a time (a job arriving waits for one batch
 * at most). */
static void writer_wait(struct store *s)
{
	while (s->jobs_head == NULL && !s->writer_stopping) {
		if (s->index_head == NULL && !s->text_gc_maybe) {
			pthread_cond_wait(&s->writer_cond, &s->writer_lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += INDEX_IDLE_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (pthread_cond_timedwait(&s->writer_cond, &s->writer_lock, &ts) != ETIMEDOUT)
			continue;
		while (s->jobs_head == NULL && !s->writer_stopping &&
		       (s->index_head != NULL || s->text_gc_maybe)) {
			pthread_mutex_unlock(&s->writer_lock);
			if (s->index_head != NULL)
				index_run(s);
			else if (text_gc_run(s) != TEXT_GC_BATCH)
				s->text_gc_maybe = false;
			pthread_mutex_lock(&s->writer_lock);
		}
	}
}

static void *writer_main(void *arg)
{
	struct store *s = arg;
	s->text_gc_maybe = true;	/* what the last run or the CLI left */
	for (;;) {
		pthread_mutex_lock(&s->writer_lock);
		writer_wait(s);
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
		/* Expunges may have left texts to remove; the next quiet
		 * spell looks. */
		s->text_gc_maybe = true;
		if (s->index_count >= INDEX_BATCH_MAX || s->index_bytes >= INDEX_BYTES_MAX) {
			index_run(s);
			/* Under steady load there is no quiet spell: the
			 * index loses a batch of expunged texts here too. */
			(void)text_gc_run(s);
		}
	}
	index_run(s);
	return NULL;
}

static void remover_stop(struct store *s);
static void *sync_main(void *arg);
static void sync_stop(struct store *s);

/* The remover thread: unlinks body files whose rows a committed
 * transaction dropped. Removing a file is not free (about 4 ms each on a
 * disk mounted with online discard), and nobody waits for it: the rows
 * are gone and the answer was sent, so a POP3 QUIT of 1,000 deletions or
 * an IMAP EXPUNGE does not wait for 1,000 unlinks, nor does the writer
 * hold back other commits meanwhile. A file left by a crash before its
 * turn names no row and is removed by the start-up sweep
 * (store_clean_tmp). */
static void *remover_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->writer_lock);
	for (;;) {
		while (s->removal_count == 0 && s->remover_running)
			pthread_cond_wait(&s->remover_cond, &s->writer_lock);
		if (s->removal_count == 0)
			break;
		char **paths = s->removals;
		size_t n = s->removal_count;
		s->removals = NULL;
		s->removal_count = s->removal_cap = 0;
		pthread_mutex_unlock(&s->writer_lock);
		for (size_t i = 0; i < n; i++) {
			if (unlinkat(s->data_dir_fd, paths[i], 0) < 0 && errno != ENOENT)
				log_warn("event=body_unlink_failed file=%s error=\"%s\"", paths[i],
					 strerror(errno));
			free(paths[i]);
		}
		free(paths);
		pthread_mutex_lock(&s->writer_lock);
	}
	pthread_mutex_unlock(&s->writer_lock);
	return NULL;
}

bool store_remove_later(struct store *s, char **paths, size_t count)
{
	pthread_mutex_lock(&s->writer_lock);
	if (!s->remover_running) {
		pthread_mutex_unlock(&s->writer_lock);
		return false;
	}
	if (s->removal_count + count > s->removal_cap) {
		s->removal_cap = (s->removal_count + count) * 2;
		s->removals = xrealloc(s->removals, s->removal_cap * sizeof(*s->removals));
	}
	memcpy(s->removals + s->removal_count, paths, count * sizeof(*paths));
	s->removal_count += count;
	pthread_cond_signal(&s->remover_cond);
	pthread_mutex_unlock(&s->writer_lock);
	return true;
}

int store_writer_start(struct store *s, char **error_r)
{
	store_clean_tmp(s);
	if (store_db_open(s, &s->writer_db, false, error_r) < 0)
		return -1;
	/* Without the remover, files are removed in the writer as before. */
	s->remover_running = true;
	if (pthread_create(&s->remover_thread, NULL, remover_main, s) != 0)
		s->remover_running = false;
	int e = pthread_create(&s->writer_thread, NULL, writer_main, s);
	if (e != 0) {
		*error_r = xasprintf("starting the writer thread: %s", strerror(e));
		sqlite3_close(s->writer_db);
		s->writer_db = NULL;
		remover_stop(s);
		return -1;
	}
	s->writer_running = true;
	/* Fewer sync threads only means less overlap. */
	while (s->sync_count < ARRAY_SIZE(s->sync_threads) &&
	       pthread_create(&s->sync_threads[s->sync_count], NULL, sync_main, s) == 0)
		s->sync_count++;
	return 0;
}

void store_writer_stop(struct store *s)
{
	if (!s->writer_running)
		return;
	sync_stop(s);
	pthread_mutex_lock(&s->writer_lock);
	s->writer_stopping = true;
	pthread_cond_signal(&s->writer_cond);
	pthread_mutex_unlock(&s->writer_lock);
	pthread_join(s->writer_thread, NULL);
	s->writer_running = false;
	sqlite3_close(s->writer_db);
	s->writer_db = NULL;
	remover_stop(s);
}

/* Removes what is still waiting, then stops the thread. */
static void remover_stop(struct store *s)
{
	pthread_mutex_lock(&s->writer_lock);
	bool running = s->remover_running;
	s->remover_running = false;
	pthread_cond_signal(&s->remover_cond);
	pthread_mutex_unlock(&s->writer_lock);
	if (running)
		pthread_join(s->remover_thread, NULL);
}

/* Under writer_lock: the job joins the writer's queue. */
static void writer_enqueue(struct store *s, struct store_job *job)
{
	job->next = NULL;
	*s->jobs_tail = job;
	s->jobs_tail = &job->next;
	pthread_cond_signal(&s->writer_cond);
}

void store_writer_submit(struct store *s, struct store_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&s->writer_lock);
	if (!s->writer_running || s->writer_stopping || s->sync_stopping) {
		pthread_mutex_unlock(&s->writer_lock);
		job->finish(job, -1);
		return;
	}
	if (job->prepare != NULL && s->sync_count > 0) {
		*s->sync_tail = job;
		s->sync_tail = &job->next;
		pthread_cond_signal(&s->sync_cond);
	} else {
		writer_enqueue(s, job);
	}
	pthread_mutex_unlock(&s->writer_lock);
}

static void *sync_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->writer_lock);
	for (;;) {
		while (s->sync_head == NULL && !s->sync_stopping)
			pthread_cond_wait(&s->sync_cond, &s->writer_lock);
		struct store_job *job = s->sync_head;
		if (job == NULL)
			break;
		s->sync_head = job->next;
		if (s->sync_head == NULL)
			s->sync_tail = &s->sync_head;
		pthread_mutex_unlock(&s->writer_lock);
		job->prepare_result = job->prepare(job);
		job->prepared = true;
		pthread_mutex_lock(&s->writer_lock);
		writer_enqueue(s, job);
	}
	pthread_mutex_unlock(&s->writer_lock);
	return NULL;
}

/* Every job handed to the sync threads goes on to the writer, then they
 * stop. */
static void sync_stop(struct store *s)
{
	pthread_mutex_lock(&s->writer_lock);
	s->sync_stopping = true;
	pthread_cond_broadcast(&s->sync_cond);
	pthread_mutex_unlock(&s->writer_lock);
	for (unsigned i = 0; i < s->sync_count; i++)
		pthread_join(s->sync_threads[i], NULL);
	s->sync_count = 0;
}
