/* yubin dns mx DOMAIN, yubin dns addr HOST: what the relay's resolver finds,
 * asked exactly as the queue asks it ([dns] servers, timeout, attempts of
 * the config), for operators and for the tests.
 *
 * Output, one result per line on standard output:
 *   mx:    "PREFERENCE HOST" in the order the relay would try them; a
 *          domain without MX gives "0 DOMAIN implicit" (RFC 5321 5.1);
 *   addr:  one address per line, in the order the relay would try them.
 * Exit status: 0 found; 1 a permanent answer (NXDOMAIN, null MX, no
 * address, a malformed name), with one line "yubin: ..." on standard
 * error; 75 (EX_TEMPFAIL) a temporary one (SERVFAIL, timeout, ...). */
#include "cli/cli.h"
#include "config/config.h"
#include "core/loop.h"
#include "core/util.h"
#include "dns/dns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dns_cli {
	struct loop *loop;
	int status;
};

static int exit_status(enum dns_status s)
{
	if (s == DNS_OK)
		return CLI_EXIT_OK;
	return dns_status_permanent(s) ? CLI_EXIT_FAIL : CLI_EXIT_TEMPFAIL;
}

static const char *status_text(enum dns_status s)
{
	switch (s) {
	case DNS_NULL_MX:
		return "accepts no mail";
	case DNS_NXDOMAIN:
		return "no such domain";
	case DNS_NODATA:
		return "no address";
	case DNS_BADNAME:
		return "not a valid domain name";
	case DNS_TEMPFAIL:
		return "temporary DNS failure";
	default:
		return "found";
	}
}

/* "yubin: NAME: no such domain (NXDOMAIN)" */
static void print_failure(const char *name, enum dns_status s, const char *detail)
{
	bool show = detail[0] != '\0' && s != DNS_BADNAME;
	fprintf(stderr, "yubin: %s: %s%s%s%s\n", name, status_text(s), show ? " (" : "",
		show ? detail : "", show ? ")" : "");
}

static void on_mx(const struct dns_mx_result *r, void *ctx)
{
	struct dns_cli *d = ctx;
	d->status = exit_status(r->status);
	if (r->status == DNS_OK) {
		for (size_t i = 0; i < r->count; i++)
			printf("%u %s%s\n", r->mx[i].preference, r->mx[i].host,
			       r->implicit ? " implicit" : "");
	} else {
		print_failure(r->domain, r->status, r->detail);
	}
	loop_stop(d->loop);
}

static void on_addr(const struct dns_addr_result *r, void *ctx)
{
	struct dns_cli *d = ctx;
	char text[DNS_ADDRSTRLEN];
	d->status = exit_status(r->status);
	if (r->status == DNS_OK) {
		for (size_t i = 0; i < r->count; i++)
			printf("%s\n", dns_addr_text(&r->addrs[i], text));
		if (r->partial)
			fprintf(stderr, "yubin: %s: some addresses may be missing (%s)\n",
				r->host, r->detail);
	} else {
		print_failure(r->host, r->status, r->detail);
	}
	loop_stop(d->loop);
}

static int run(struct cli *c, bool mx)
{
	const struct config *cfg = c->config;
	char *error = NULL;
	struct dns_settings settings = {
		.servers = cfg->dns_servers,
		.timeout_ms = cfg->dns_timeout * 1000,
		.attempts = cfg->dns_attempts,
	};
	if (dns_init(&settings, &error) < 0) {
		fprintf(stderr, "yubin: %s\n", error);
		free(error);
		return CLI_EXIT_FAIL;
	}
	struct dns_cli d = { .loop = loop_new(), .status = CLI_EXIT_TEMPFAIL };
	dns_thread_init(d.loop);
	if (mx)
		dns_mx(c->argv[0], on_mx, &d);
	else
		dns_addr(c->argv[0], on_addr, &d);
	loop_run(d.loop);
	dns_thread_deinit();
	loop_free(&d.loop);
	dns_deinit();
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "yubin: writing to standard output: %s\n", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	return d.status;
}

int cli_dns_mx(struct cli *c)
{
	return run(c, true);
}

int cli_dns_addr(struct cli *c)
{
	return run(c, false);
}
