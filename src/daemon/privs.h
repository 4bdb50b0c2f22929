/* Running as an unprivileged user.
 *
 * Started as root, yubin binds its ports and reads its keys first, then
 * becomes [server] user for good. Every process that touches data_dir (the
 * server and the admin CLI alike) does so as that user, so all data files
 * belong to it. */
#ifndef YUBIN_DAEMON_PRIVS_H
#define YUBIN_DAEMON_PRIVS_H

/* When running as root and user is set: creates data_dir (mode 0750) if it
 * is missing and makes it and everything in it belong to user. Does nothing
 * otherwise. Returns 0 or -1 with *error_r. */
int privs_prepare_data_dir(const char *data_dir, const char *user, char **error_r);

/* When running as root and user is set: makes path (a file yubin made as
 * root, e.g. a self-signed key) and its folder belong to user, so the
 * server can read them again after dropping privileges (SIGHUP reload).
 * Does nothing otherwise. Returns 0 or -1 with *error_r. */
int privs_give(const char *path, const char *user, char **error_r);

/* When running as root: becomes user (its uid, gid and groups) for good and
 * checks that root cannot be regained. user NULL while root is an error
 * (yubin never runs as root). Not root: does nothing. Returns 0 or -1. */
int privs_drop(const char *user, char **error_r);

#endif
