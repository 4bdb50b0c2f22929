/* yubin serve: bind, drop privileges, open the store, run the I/O threads,
 * and stop cleanly on SIGTERM. */
#include "daemon/serve.h"
#include "daemon/privs.h"
#include "config/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "core/work.h"
#include "dns/dns.h"
#include "auth/auth.h"
#include "net/net.h"
#include "net/tls.h"
#include "pop3/pop3.h"
#include "queue/queue.h"
#include "imap/imap.h"
#include "smtp/smtp.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#define IO_THREADS_MAX 64

struct io_thread {
	pthread_t thread;
	struct loop *loop;
	struct listen_socket *socks;
	size_t sock_count;
};

static void *io_main(void *arg)
{
	struct io_thread *t = arg;
	/* SMTP sessions ask DNS (mailauth on port 25) from their own loop;
	 * dns_init ran in queue_start, before these threads */
	dns_thread_init(t->loop);
	net_listen_start(t->loop, t->socks, t->sock_count);
	loop_run(t->loop);
	net_listen_stop(t->loop);
	net_close_all(t->loop);
	dns_thread_deinit();
	smtp_thread_deinit();
	pop3_thread_deinit();
	imap_thread_deinit();
	auth_thread_deinit();
	return NULL;
}

static const struct conn_handler *handler_for(enum listener_kind kind)
{
	switch (kind) {
	case LISTENER_SMTP:
	case LISTENER_SUBMISSION:
	case LISTENER_SUBMISSIONS:
		return &smtp_conn_handler;
	case LISTENER_POP3:
	case LISTENER_POP3S:
		return &pop3_conn_handler;
	case LISTENER_IMAP:
	case LISTENER_IMAPS:
		return &imap_conn_handler;
	default:
		return NULL;	/* not yet: see docs/design.md */
	}
}

static bool implicit_tls(enum listener_kind kind)
{
	return kind == LISTENER_SUBMISSIONS || kind == LISTENER_IMAPS || kind == LISTENER_POP3S;
}

static int bind_all(struct config *cfg, struct listen_socket **socks_r, size_t *count_r)
{
	for (int k = 0; k < LISTENER__COUNT; k++) {
		struct config_listener *l = &cfg->listeners[k];
		if (!l->present)
			continue;
		const struct conn_handler *h = handler_for((enum listener_kind)k);
		if (h == NULL) {
			log_warn("event=listener_skipped section=%s reason=\"not implemented yet\"",
				 l->section);
			continue;
		}
		if (implicit_tls((enum listener_kind)k) && !tls_loaded()) {
			fprintf(stderr, "yubin: [%s] needs tls_cert and tls_key in [server]\n",
				l->section);
			return -1;
		}
		for (size_t i = 0; i < l->listen_count; i++) {
			struct config_listen *a = &l->listen[i];
			size_t first = *count_r;
			char *error = NULL;
			if (net_bind(a->host, a->port, socks_r, count_r, &error) < 0) {
				fprintf(stderr, "yubin: %s:%d: [%s] listen: %s\n", a->file, a->line,
					l->section, error);
				free(error);
				return -1;
			}
			for (size_t j = first; j < *count_r; j++) {
				(*socks_r)[j].kind = k;
				(*socks_r)[j].implicit_tls = implicit_tls((enum listener_kind)k);
				(*socks_r)[j].handler = h;
				log_info("event=listening listener=%s address=%s", l->section,
					 (*socks_r)[j].name);
			}
		}
	}
	return 0;
}

static int load_tls(struct config *cfg, char **error_r)
{
	struct tls_sni *sni = xcalloc(cfg->sni_count + 1, sizeof(*sni));
	for (size_t i = 0; i < cfg->sni_count; i++) {
		sni[i].name = cfg->sni[i].name;
		sni[i].cert = cfg->sni[i].cert;
		sni[i].key = cfg->sni[i].key;
	}
	int r = tls_load(cfg->tls_cert, cfg->tls_key, sni, cfg->sni_count, error_r);
	free(sni);
	return r;
}

static int setup_tls(struct config *cfg)
{
	if (cfg->tls_cert == NULL && cfg->tls_key == NULL)
		return 0;
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		fprintf(stderr, "yubin: %s: [server] tls_cert and tls_key go together\n", cfg->path);
		return -1;
	}
	char *error = NULL;
	if (cfg->tls_selfsigned) {
		int r = tls_make_selfsigned(cfg->hostname, cfg->tls_cert, cfg->tls_key, &error);
		if (r < 0) {
			fprintf(stderr, "yubin: %s\n", error);
			free(error);
			return -1;
		}
		if (r > 0 && (privs_give(cfg->tls_cert, cfg->user, &error) < 0 ||
			      privs_give(cfg->tls_key, cfg->user, &error) < 0)) {
			fprintf(stderr, "yubin: %s\n", error);
			free(error);
			return -1;
		}
		if (r > 0)
			log_warn("event=selfsigned_certificate cert=%s hostname=%s note=\"replace it with a real one\"",
				 cfg->tls_cert, cfg->hostname);
	}
	if (load_tls(cfg, &error) < 0) {
		fprintf(stderr, "yubin: %s: [server] tls: %s\n", cfg->path, error);
		free(error);
		return -1;
	}
	return 0;
}

static unsigned thread_count(const struct config *cfg)
{
	long n = cfg->io_threads ? (long)cfg->io_threads : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > IO_THREADS_MAX)
		n = IO_THREADS_MAX;
	return (unsigned)n;
}

/* One server per data_dir. Start-up removes the body files no row names
 * (store_writer_start), which is right only while nobody else may be about
 * to commit one; a second server on the same folder (another config, other
 * ports) would break that. The lock is on the folder itself, so no file is
 * left behind, and the kernel drops it with the process, SIGKILL included.
 * The CLI does not take it: it never adds a body. */
static int lock_data_dir(const char *data_dir, int *fd_r, char **error_r)
{
	int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", data_dir, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		*error_r = errno == EWOULDBLOCK ?
			xasprintf("%s: in use by another yubin serve", data_dir) :
			xasprintf("%s: lock: %s", data_dir, strerror(errno));
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

/* Descriptors kept aside from connections: listeners, the store and its
 * readers, the log, the lock, thread wake-ups, DNS and outbound relay. */
#define FD_RESERVE 128

/* The connections the descriptor limit leaves room for. Each connection
 * is one descriptor, and its session may hold one more (a body file being
 * sent or written). max_connections must be met first: a connection over
 * it gets the protocol's busy reply and is closed, while one that finds no
 * descriptor waits in the backlog (net.c pauses accepting). So the soft
 * limit is raised to the hard one, and max_connections (0: no limit of
 * its own) is lowered, with a warning, to what fits under it. */
static uint32_t fit_connections(uint32_t max_conns)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return max_conns;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = rl;
		want.rlim_cur = rl.rlim_max;
		if (want.rlim_cur == RLIM_INFINITY || want.rlim_cur > (1u << 20))
			want.rlim_cur = 1u << 20;
		if (want.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	uint64_t fds = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
	uint64_t fit = fds > FD_RESERVE + 2 ? (fds - FD_RESERVE) / 2 : 1;
	if (max_conns != 0 && max_conns <= fit)
		return max_conns;
	log_warn("event=max_connections_lowered configured=%u used=%llu open_files_limit=%llu "
		 "note=\"two descriptors per connection and %d spare must fit under "
		 "RLIMIT_NOFILE\"", max_conns, (unsigned long long)fit,
		 (unsigned long long)fds, FD_RESERVE);
	return (uint32_t)fit;
}

static void stop_loop(void *arg)
{
	loop_stop(arg);
}

int serve_run(struct config *cfg)
{
	struct listen_socket *socks = NULL;
	size_t sock_count = 0;
	struct store *store = NULL;
	struct io_thread threads[IO_THREADS_MAX];
	unsigned nthreads = 0;
	char *error = NULL;
	int status = 1, lock_fd = -1;
	enum log_level level;

	if (log_level_parse(cfg->log_level, &level) == 0)
		log_set_level(level);
	signal(SIGPIPE, SIG_IGN);
	/* Signals are taken by the main thread only, with sigwait, from the
	 * start: a SIGTERM during start-up is a clean stop too. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* Said before any port is bound, naming the file to fix. */
	if (geteuid() == 0 && cfg->user == NULL) {
		fprintf(stderr, "yubin: %s: [server] user is needed when running as "
			"root (yubin never runs as root)\n", cfg->path);
		status = 2;
		goto out;
	}
	/* As root: make the data folder ours-to-be, bind, read keys. */
	if (privs_prepare_data_dir(cfg->data_dir, cfg->user, &error) < 0) {
		fprintf(stderr, "yubin: %s\n", error);
		goto out;
	}
	if (setup_tls(cfg) < 0 || bind_all(cfg, &socks, &sock_count) < 0) {
		status = 2;
		goto out;
	}
	if (sock_count == 0) {
		fprintf(stderr, "yubin: %s: no listener to start\n", cfg->path);
		status = 2;
		goto out;
	}
	/* A self-signed pair made just now belongs to root: hand it over. */
	if (privs_prepare_data_dir(cfg->data_dir, cfg->user, &error) < 0 ||
	    privs_drop(cfg->user, &error) < 0) {
		fprintf(stderr, "yubin: %s\n", error);
		goto out;
	}
	/* store_writer_start first empties tmp/ and removes the bodies in msg/
	 * that no row names (left by a kill between a body's rename and its
	 * commit): under the lock, before the writer and the I/O threads run,
	 * so no delivery of ours is in flight either. */
	if (lock_data_dir(cfg->data_dir, &lock_fd, &error) < 0 ||
	    store_open(cfg->data_dir, &store, &error) < 0 ||
	    store_writer_start(store, &error) < 0) {
		fprintf(stderr, "yubin: %s\n", error);
		goto out;
	}
	smtp_init(cfg, store);
	pop3_init(cfg, store);
	imap_init(cfg, store);
	auth_init(store, &(struct auth_limits){
		.fail_delay_ms = cfg->auth_fail_delay,
		.fail_delay_max_ms = cfg->auth_fail_delay_max,
		.lock_failures = cfg->auth_lock_failures,
		.lock_seconds = cfg->auth_lock_time,
		.cache_seconds = cfg->auth_cache_time,
		.max_sessions = cfg->max_sessions_per_user,
	});
	work_start(0);
	net_set_limits(&(struct net_limits){ fit_connections(cfg->max_connections),
					     cfg->max_connections_per_ip });
	loop_global_init();
	if (queue_start(cfg, store) < 0)
		goto out;

	nthreads = thread_count(cfg);
	for (unsigned i = 0; i < nthreads; i++) {
		threads[i].loop = loop_new();
		threads[i].socks = socks;
		threads[i].sock_count = sock_count;
		if (pthread_create(&threads[i].thread, NULL, io_main, &threads[i]) != 0)
			log_fatal("event=thread_create_failed");
	}
	log_info("event=ready hostname=%s threads=%u data_dir=%s pid=%d", cfg->hostname,
		 nthreads, cfg->data_dir, (int)getpid());

	for (;;) {
		int sig = 0;
		sigwait(&sigs, &sig);
		if (sig == SIGHUP) {
			log_info("event=reload");
			if (cfg->tls_cert && cfg->tls_key && load_tls(cfg, &error) < 0) {
				log_error("event=reload_failed error=\"%s\" note=\"keeping the old certificate\"",
					  error);
				xfree(&error);
			}
			continue;
		}
		log_info("event=stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
		break;
	}

	/* Stop taking connections and close them; a message whose end was
	 * already received is still committed by the writer below. */
	for (unsigned i = 0; i < nthreads; i++)
		loop_post(threads[i].loop, stop_loop, threads[i].loop);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i].thread, NULL);
	work_stop();
	queue_stop();
	store_writer_stop(store);
	queue_free();
	for (unsigned i = 0; i < nthreads; i++)
		loop_free(&threads[i].loop);
	status = 0;
	log_info("event=stopped");
out:
	free(error);
	store_close(&store);
	if (lock_fd >= 0)
		close(lock_fd);
	for (size_t i = 0; i < sock_count; i++) {
		close(socks[i].fd);
		free(socks[i].name);
	}
	free(socks);
	tls_unload();
	config_free(&cfg);
	return status;
}
