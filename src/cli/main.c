/* yubin: one binary, subcommands chosen by words ("yubin user add a@b").
 *
 * The grammar is the table below, as in OpenSMTPD's smtpctl: the words of a
 * command, then its options, then its arguments. "-c FILE" may come before
 * the words (yubin -c FILE user add a@b) or right after them. */
#include "cli/cli.h"
#include "config/config.h"
#include "core/log.h"
#include "core/util.h"
#include "daemon/privs.h"
#include "daemon/serve.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef YUBIN_VERSION
#define YUBIN_VERSION "0.1.0"
#endif

#define CLI_CONFIG_LOCAL "yubin.conf"
#define CLI_CONFIG_SYSTEM "/etc/yubin/yubin.conf"

/* Command flags. */
#define CLI_STORE 0x01	/* runs on the open store, as the server's user */
#define CLI_HASH 0x02	/* takes --hash */

struct cli_command {
	const char *words;
	const char *args;	/* for the usage line */
	int min_args;
	int max_args;		/* -1: no limit */
	unsigned flags;
	int (*run)(struct cli *c);
};

static int cmd_serve(struct cli *c);

static const struct cli_command commands[] = {
	{ "serve", "", 0, 0, 0, cmd_serve },
	{ "domain add", "DOMAIN", 1, 1, CLI_STORE, cli_domain_add },
	{ "domain del", "DOMAIN", 1, 1, CLI_STORE, cli_domain_del },
	{ "domain list", "", 0, 0, CLI_STORE, cli_domain_list },
	{ "user add", "[--hash] ADDRESS", 1, 1, CLI_STORE | CLI_HASH, cli_user_add },
	{ "user del", "ADDRESS", 1, 1, CLI_STORE, cli_user_del },
	{ "user list", "[DOMAIN]", 0, 1, CLI_STORE, cli_user_list },
	{ "user passwd", "[--hash] ADDRESS", 1, 1, CLI_STORE | CLI_HASH, cli_user_passwd },
	{ "user sendas add", "ADDRESS EXTRA", 2, 2, CLI_STORE, cli_sendas_add },
	{ "user sendas del", "ADDRESS EXTRA", 2, 2, CLI_STORE, cli_sendas_del },
	{ "user sendas list", "ADDRESS", 1, 1, CLI_STORE, cli_sendas_list },
	{ "user quota", "ADDRESS [SIZE [MESSAGES]]", 1, 3, CLI_STORE, cli_user_quota },
	{ "alias add", "SOURCE TARGET...", 2, -1, CLI_STORE, cli_alias_add },
	{ "alias del", "SOURCE [TARGET]", 1, 2, CLI_STORE, cli_alias_del },
	{ "alias list", "[DOMAIN]", 0, 1, CLI_STORE, cli_alias_list },
	{ "mail list", "ADDRESS [MAILBOX]", 1, 2, CLI_STORE, cli_mail_list },
	{ "mail show", "ADDRESS MAILBOX UID", 3, 3, CLI_STORE, cli_mail_show },
	{ "queue list", "", 0, 0, CLI_STORE, cli_queue_list },
	{ "queue show", "ID", 1, 1, CLI_STORE, cli_queue_show },
	{ "queue flush", "", 0, 0, CLI_STORE, cli_queue_flush },
	{ "queue delete", "ID [RECIPIENT]", 1, 2, CLI_STORE, cli_queue_delete },
	{ "queue bounce", "ID [RECIPIENT]", 1, 2, CLI_STORE, cli_queue_bounce },
	{ "dns mx", "DOMAIN", 1, 1, 0, cli_dns_mx },
	{ "dns addr", "HOST", 1, 1, 0, cli_dns_addr },
	{ "dkim keygen", "DOMAIN [--selector S] [--algorithm rsa|ed25519] [--bits N]", 1, 7,
	  CLI_STORE, cli_dkim_keygen },
	{ "dkim sign", "KEYFILE MESSAGE", 2, 2, 0, cli_dkim_sign },
	{ "dkim verify", "MESSAGE --dns FILE [--now SECONDS]", 3, 5, 0, cli_dkim_verify },
};

static void usage_line(const struct cli_command *cmd, const char *lead)
{
	fprintf(stderr, "%syubin %s%s%s\n", lead, cmd->words, *cmd->args ? " " : "",
		cmd->args);
}

static int usage(void)
{
	fprintf(stderr, "usage: yubin [-c FILE] COMMAND [ARGUMENTS]\n"
		"       yubin --version\n"
		"commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		usage_line(&commands[i], "  ");
	fprintf(stderr, "Passwords are read from standard input. The default FILE is\n"
		"./" CLI_CONFIG_LOCAL " if it exists, else " CLI_CONFIG_SYSTEM ".\n");
	return CLI_EXIT_USAGE;
}

/* Usage of every command starting with the word first. */
static int usage_of(const char *first)
{
	bool any = false;
	size_t n = strlen(first);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const char *w = commands[i].words;
		if (strncmp(w, first, n) == 0 && (w[n] == ' ' || w[n] == '\0')) {
			usage_line(&commands[i], any ? "       " : "usage: ");
			any = true;
		}
	}
	return any ? CLI_EXIT_USAGE : usage();
}

/* How many of argv the command's words take, or 0 when they do not match. */
static int match_words(const char *words, int argc, char **argv)
{
	int n = 0;
	const char *w = words;
	while (*w) {
		size_t len = strcspn(w, " ");
		if (n >= argc || strlen(argv[n]) != len || strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		w += *w == ' ';
	}
	return n;
}

static const struct cli_command *find_command(int argc, char **argv, int *words_r)
{
	const struct cli_command *best = NULL;
	int best_n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		int n = match_words(commands[i].words, argc, argv);
		if (n > best_n) {
			best = &commands[i];
			best_n = n;
		}
	}
	*words_r = best_n;
	return best;
}

static int cmd_serve(struct cli *c)
{
	struct config *cfg = c->config;
	c->config = NULL;	/* serve_run owns it now */
	return serve_run(cfg);
}

/* Config, privileges and store around one admin command. */
static int run_admin(const struct cli_command *cmd, struct cli *c)
{
	struct config *cfg = c->config;
	char *error = NULL;
	enum log_level level;

	if (cfg->log_level != NULL && log_level_parse(cfg->log_level, &level) == 0)
		log_set_level(level);
	/* As root, become the server's user first, so everything the
	 * command creates in data_dir belongs to the server. */
	if (geteuid() == 0 && cfg->user == NULL) {
		fprintf(stderr, "yubin: %s: [server] user is needed when running as "
			"root (yubin never runs as root)\n", cfg->path);
		return CLI_EXIT_USAGE;
	}
	if (privs_prepare_data_dir(cfg->data_dir, cfg->user, &error) < 0 ||
	    privs_drop(cfg->user, &error) < 0 ||
	    store_open(cfg->data_dir, &c->store, &error) < 0) {
		fprintf(stderr, "yubin: %s\n", error);
		free(error);
		return CLI_EXIT_FAIL;
	}
	int status = cmd->run(c);
	store_close(&c->store);
	return status;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct cli c = { 0 };
	char *error = NULL;
	int i = 1;

	/* Data files are the server's alone (and its group's, to read). */
	umask(027);

	for (; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc)
				return usage();
			config_path = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			return usage();
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("yubin %s\n", YUBIN_VERSION);
			return CLI_EXIT_OK;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "yubin: unknown option: %s\n", argv[i]);
			return usage();
		} else {
			break;
		}
	}
	if (i >= argc)
		return usage();

	int nwords;
	const struct cli_command *cmd = find_command(argc - i, argv + i, &nwords);
	if (cmd == NULL)
		return usage_of(argv[i]);
	i += nwords;

	/* Options right after the words; "--" ends them. Anything else is an
	 * argument, even with a leading "-": "domain add -bad.example" is a
	 * bad domain (exit 1), not a bad option. */
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "--hash") == 0 && (cmd->flags & CLI_HASH))
			c.hash = true;
		else
			break;
	}
	c.argc = argc - i;
	c.argv = argv + i;
	if (c.argc < cmd->min_args || (cmd->max_args >= 0 && c.argc > cmd->max_args)) {
		usage_line(cmd, "usage: ");
		return CLI_EXIT_USAGE;
	}

	if (config_path == NULL)
		config_path = access(CLI_CONFIG_LOCAL, F_OK) == 0 ?
			CLI_CONFIG_LOCAL : CLI_CONFIG_SYSTEM;
	if (config_load(config_path, &c.config, &error) < 0) {
		fprintf(stderr, "yubin: %s\n", error);
		free(error);
		return CLI_EXIT_USAGE;
	}

	int status = (cmd->flags & CLI_STORE) ? run_admin(cmd, &c) : cmd->run(&c);
	if (c.config != NULL)
		config_free(&c.config);
	return status;
}
