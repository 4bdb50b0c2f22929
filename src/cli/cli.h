/* The `yubin` command: main.c maps words to handlers (the table of
 * subcommands, as OpenSMTPD's smtpctl does), loads the config, drops
 * privileges and opens the store; cli_admin.c holds the admin handlers.
 *
 * Exit status of every handler: 0 success; 1 the operation failed (one line
 * "yubin: ..." on standard error, nothing changed); 2 usage or config. */
#ifndef YUBIN_CLI_H
#define YUBIN_CLI_H

#include <stdbool.h>

struct config;
struct store;

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_TEMPFAIL 75	/* sysexits.h EX_TEMPFAIL: try again later (dns) */

struct cli {
	struct config *config;
	struct store *store;	/* open for the admin commands */
	bool hash;		/* --hash: stdin holds a hash, not a password */
	int argc;		/* the arguments after the words and options */
	char **argv;
};

int cli_domain_add(struct cli *c);
int cli_domain_del(struct cli *c);
int cli_domain_list(struct cli *c);
int cli_user_add(struct cli *c);
int cli_user_del(struct cli *c);
int cli_user_list(struct cli *c);
int cli_user_passwd(struct cli *c);
int cli_user_quota(struct cli *c);
int cli_sendas_add(struct cli *c);
int cli_sendas_del(struct cli *c);
int cli_sendas_list(struct cli *c);
int cli_alias_add(struct cli *c);
int cli_alias_del(struct cli *c);
int cli_alias_list(struct cli *c);
int cli_mail_list(struct cli *c);
int cli_mail_show(struct cli *c);
int cli_queue_list(struct cli *c);
int cli_queue_show(struct cli *c);
int cli_queue_flush(struct cli *c);
int cli_queue_delete(struct cli *c);
int cli_queue_bounce(struct cli *c);
int cli_dns_mx(struct cli *c);
int cli_dns_addr(struct cli *c);

/* yubin dkim keygen|sign|verify (cli_dkim.c) */
int cli_dkim_keygen(struct cli *c);
int cli_dkim_sign(struct cli *c);
int cli_dkim_verify(struct cli *c);

#endif
