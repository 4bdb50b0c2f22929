/* Becoming the unprivileged user, and handing data_dir over to it.
 *
 * data_dir belongs to the unprivileged user, who can change anything in it
 * while root walks it: plant a symbolic link to /etc, or a hard link to
 * /etc/shadow, or swap a folder for a link between our check and our chown.
 * So the walk never goes by path: every folder is held open and entered
 * with O_NOFOLLOW, every entry is examined through a file descriptor of its
 * own (O_PATH) and changed through that same descriptor, and a file with
 * more than one link is left alone (ours never have one). This is why it
 * does not use nftw(), which goes by path names. */
#include "daemon/privs.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* data_dir/msg/BUCKET/ID is three deep; anything far deeper is not ours. */
#define PRIVS_WALK_DEPTH_MAX 16

struct owner {
	uid_t uid;
	gid_t gid;
};

static int lookup_user(const char *user, struct owner *o, char **error_r)
{
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = errno != 0 ?
			xasprintf("user %s: %s", user, strerror(errno)) :
			xasprintf("user %s: no such user on this system", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = xasprintf("user %s: is root; yubin must run as an "
				     "unprivileged user", user);
		return -1;
	}
	o->uid = pw->pw_uid;
	o->gid = pw->pw_gid;
	return 0;
}

/* Gives one entry of dir to o, if it is not already its. */
static int chown_entry(int dir, const char *name, const struct owner *o,
		       const char *path, char **error_r)
{
	int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;	/* gone meanwhile: nothing to own */
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		log_warn("event=chown_skipped path=%s reason=\"several hard links\"", path);
	} else if ((st.st_uid != o->uid || st.st_gid != o->gid) &&
		   fchownat(fd, "", o->uid, o->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		*error_r = xasprintf("%s: chown: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Walks the folder open as dir (and closes it): every entry, then every
 * sub-folder in turn. */
static int walk(int dir, const char *path, const struct owner *o, int depth,
		char **error_r)
{
	DIR *d = fdopendir(dir);
	if (d == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		close(dir);
		return -1;
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = xasprintf("%s/%s", path, de->d_name);
		struct stat st;
		bool is_dir = false;
		/* The cheap look first: most entries are already right. */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				*error_r = xasprintf("%s: %s", sub, strerror(errno));
				r = -1;
			}
		} else {
			is_dir = S_ISDIR(st.st_mode);
			if (st.st_uid != o->uid || st.st_gid != o->gid)
				r = chown_entry(dirfd(d), de->d_name, o, sub, error_r);
		}
		if (r == 0 && is_dir) {
			if (depth >= PRIVS_WALK_DEPTH_MAX) {
				log_warn("event=chown_skipped path=%s reason=\"too deep\"", sub);
			} else {
				int fd = openat(dirfd(d), de->d_name,
						O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (fd >= 0)
					r = walk(fd, sub, o, depth + 1, error_r);
				else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
					*error_r = xasprintf("%s: %s", sub, strerror(errno));
					r = -1;
				}
			}
		}
		free(sub);
	}
	if (r == 0 && errno != 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		r = -1;
	}
	closedir(d);
	return r;
}

/* Checks, as user would, that data_dir can be entered and written: a
 * folder above it that user may not search (a checkout under /root, mode
 * 0700) is otherwise found only after the drop, as a bare "Permission
 * denied" on the database. A child process becomes user (and its groups)
 * and tries; only system calls run in it, so this is safe with threads. */
static int check_reachable(const char *data_dir, const char *user,
			   const struct owner *o, char **error_r)
{
	gid_t groups[256];
	int ngroups = (int)ARRAY_SIZE(groups);
	if (getgrouplist(user, o->gid, groups, &ngroups) < 0)
		ngroups = 0;	/* more than we hold: the primary group only */
	pid_t pid = fork();
	if (pid < 0) {
		*error_r = xasprintf("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int err = 0;
		if (setgroups((size_t)ngroups, groups) < 0 ||
		    setresgid(o->gid, o->gid, o->gid) < 0 ||
		    setresuid(o->uid, o->uid, o->uid) < 0)
			_exit(255);
		int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			err = errno;
		else if (faccessat(fd, ".", W_OK | X_OK, 0) < 0)
			err = errno;
		_exit(err > 0 && err < 255 ? err : err == 0 ? 0 : 254);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			*error_r = xasprintf("waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) >= 254) {
		*error_r = xasprintf("%s: could not check as user %s that it is reachable",
				     data_dir, user);
		return -1;
	}
	int err = WEXITSTATUS(status);
	if (err == 0)
		return 0;
	*error_r = xasprintf("data_dir %s is not reachable by [server] user %s (%s): "
			     "every folder above it must be searchable by %s; "
			     "move data_dir or open the way (chmod o+x)",
			     data_dir, user, strerror(err), user);
	return -1;
}

int privs_prepare_data_dir(const char *data_dir, const char *user, char **error_r)
{
	struct owner o;
	if (geteuid() != 0 || user == NULL)
		return 0;
	if (lookup_user(user, &o, error_r) < 0)
		return -1;
	if (mkdir(data_dir, 0750) < 0 && errno != EEXIST) {
		*error_r = xasprintf("%s: %s", data_dir, strerror(errno));
		return -1;
	}
	/* data_dir itself comes from root's config file: a symbolic link
	 * there is the admin's choice and is followed. */
	int fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = xasprintf("%s: %s", data_dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if ((st.st_uid != o.uid || st.st_gid != o.gid) && fchown(fd, o.uid, o.gid) < 0) {
		*error_r = xasprintf("%s: chown: %s", data_dir, strerror(errno));
		close(fd);
		return -1;
	}
	if (walk(fd, data_dir, &o, 0, error_r) < 0)
		return -1;
	return check_reachable(data_dir, user, &o, error_r);
}

int privs_drop(const char *user, char **error_r)
{
	struct owner o;
	if (geteuid() != 0)
		return 0;
	if (user == NULL) {
		*error_r = xstrdup("running as root needs [server] user: "
				   "yubin never runs as root");
		return -1;
	}
	if (lookup_user(user, &o, error_r) < 0)
		return -1;
	/* Groups first, while we still may; then the group, then the user,
	 * real, effective and saved alike, so there is no way back. */
	if (initgroups(user, o.gid) < 0) {
		*error_r = xasprintf("initgroups %s: %s", user, strerror(errno));
		return -1;
	}
	if (setresgid(o.gid, o.gid, o.gid) < 0) {
		*error_r = xasprintf("setresgid %lu: %s", (unsigned long)o.gid, strerror(errno));
		return -1;
	}
	if (setresuid(o.uid, o.uid, o.uid) < 0) {
		*error_r = xasprintf("setresuid %lu: %s", (unsigned long)o.uid, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != o.uid || geteuid() != o.uid ||
	    getgid() != o.gid || getegid() != o.gid) {
		/* The kernel let us back: this process must not go on. */
		log_fatal("event=privs_drop_failed user=%s reason=\"root could be regained\"", user);
	}
	log_debug("event=privs_dropped user=%s uid=%lu gid=%lu", user,
		  (unsigned long)o.uid, (unsigned long)o.gid);
	return 0;
}

int privs_give(const char *path, const char *user, char **error_r)
{
	if (geteuid() != 0 || user == NULL)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = xasprintf("[server] user %s: no such user", user);
		return -1;
	}
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir)
		*slash = '\0';
	int r = 0;
	if (lchown(path, pw->pw_uid, pw->pw_gid) < 0 ||
	    (slash != NULL && slash != dir && lchown(dir, pw->pw_uid, pw->pw_gid) < 0)) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		r = -1;
	}
	free(dir);
	return r;
}
