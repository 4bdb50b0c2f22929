/* "yubin serve": the mail server daemon. */
#ifndef YUBIN_DAEMON_SERVE_H
#define YUBIN_DAEMON_SERVE_H

struct config;

/* Runs the server in the foreground until SIGTERM or SIGINT. Takes
 * ownership of config (reloaded parts are replaced on SIGHUP). Returns the
 * process exit status: 0 after a clean shutdown, 2 for a configuration
 * problem found at start (a port in use, unreadable certificate), 1 for any
 * other failure to start. */
int serve_run(struct config *config);

#endif
