/* yubin dkim keygen|sign|verify (docs/config.md, "DKIM").
 *
 *   keygen DOMAIN [--selector S] [--algorithm rsa|ed25519] [--bits N]
 *       writes <data_dir>/dkim/<domain>/<selector>.pem (0600, as the
 *       server's user) and prints the TXT record to publish, one line in
 *       zone-file form: NAME IN TXT "..." "..." (strings of at most 255
 *       characters, RFC 1035 3.3.14).
 *   sign KEYFILE MESSAGE
 *       prints the message signed with that key (its domain and selector
 *       from the path: .../<domain>/<selector>.pem), line ends as CRLF.
 *   verify MESSAGE --dns FILE [--now SECONDS]
 *       verifies every signature, the key records taken from FILE (lines
 *       "NAME TXT-VALUE"; the value "NXDOMAIN", or "TEMPFAIL", for those
 *       answers), no real DNS; prints "RESULT d=D s=S a=A [reason]" per
 *       signature. Exit 0 when one passes, 1 when none does.
 * sign and verify are for testing and debugging: a bare LF in MESSAGE is
 * read as CRLF. */
#include "cli/cli.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/util.h"
#include "mailauth/dkim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CLI_DKIM_MAX_FILE (64 * 1024 * 1024)

/* The file as CRLF text (bare LF become CRLF). */
static char *read_crlf(const char *path, size_t *len_r)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "yubin: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	struct buf b;
	buf_init(&b, CLI_DKIM_MAX_FILE);
	int c, prev = 0;
	while ((c = getc(f)) != EOF) {
		if ((c == '\n' && prev != '\r' && buf_append_c(&b, '\r') < 0) ||
		    buf_append_c(&b, (char)c) < 0) {
			fprintf(stderr, "yubin: %s: too large\n", path);
			buf_deinit(&b);
			if (f != stdin)
				fclose(f);
			return NULL;
		}
		prev = c;
	}
	if (f != stdin)
		fclose(f);
	return buf_steal(&b, len_r);
}

static bool selector_ok(const char *s)
{
	if (*s == '\0' || *s == '.' || strlen(s) > 63)
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return false;
		if (s[0] == '.' && (s[1] == '.' || s[1] == '\0'))
			return false;
	}
	return true;
}

static bool domain_ok(const char *s)
{
	return strlen(s) <= 200 && strchr(s, '/') == NULL && selector_ok(s) &&
		strchr(s, '.') != NULL;
}

int cli_dkim_keygen(struct cli *c)
{
	const char *domain = NULL, *selector = NULL, *alg_name = "rsa";
	unsigned bits = 0;

	for (int i = 0; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (strcmp(a, "--selector") == 0 && i + 1 < c->argc) {
			selector = c->argv[++i];
		} else if (strcmp(a, "--algorithm") == 0 && i + 1 < c->argc) {
			alg_name = c->argv[++i];
		} else if (strcmp(a, "--bits") == 0 && i + 1 < c->argc) {
			uint64_t b;
			if (str_to_u64(c->argv[++i], &b) < 0 || b < 1024 || b > 8192) {
				fprintf(stderr, "yubin: --bits is 1024 to 8192\n");
				return CLI_EXIT_USAGE;
			}
			bits = (unsigned)b;
		} else if (a[0] != '-' && domain == NULL) {
			domain = a;
		} else {
			fprintf(stderr, "usage: yubin dkim keygen DOMAIN [--selector S] "
				"[--algorithm rsa|ed25519] [--bits N]\n");
			return CLI_EXIT_USAGE;
		}
	}
	enum dkim_alg alg;
	if (strcmp(alg_name, "rsa") == 0)
		alg = DKIM_ALG_RSA_SHA256;
	else if (strcmp(alg_name, "ed25519") == 0)
		alg = DKIM_ALG_ED25519_SHA256;
	else {
		fprintf(stderr, "yubin: --algorithm is rsa or ed25519\n");
		return CLI_EXIT_USAGE;
	}
	if (domain == NULL) {
		fprintf(stderr, "usage: yubin dkim keygen DOMAIN [--selector S] "
			"[--algorithm rsa|ed25519] [--bits N]\n");
		return CLI_EXIT_USAGE;
	}
	char *dom = xstrdup(domain);
	str_lower(dom);
	/* the default selector names the algorithm and the month, so that a
	 * new key (a rotation) gets a new name: "rsa-202612" */
	char *sel;
	if (selector != NULL) {
		sel = xstrdup(selector);
		str_lower(sel);
	} else {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		sel = xasprintf("%s-%04d%02d", alg_name, tm.tm_year + 1900, tm.tm_mon + 1);
	}
	int status = CLI_EXIT_FAIL;
	char *dir = NULL, *ddir = NULL, *path = NULL, *txt = NULL, *error = NULL;
	if (!domain_ok(dom)) {
		fprintf(stderr, "yubin: %s: not a domain name\n", domain);
		goto out;
	}
	if (!selector_ok(sel)) {
		fprintf(stderr, "yubin: %s: not a selector (letters, digits, - _ .)\n", sel);
		goto out;
	}
	dir = xasprintf("%s/dkim", c->config->data_dir);
	ddir = xasprintf("%s/%s", dir, dom);
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(ddir, 0700) < 0 && errno != EEXIST)) {
		fprintf(stderr, "yubin: %s: %s\n", ddir, strerror(errno));
		goto out;
	}
	path = xasprintf("%s/%s.pem", ddir, sel);
	txt = dkim_keygen(path, alg, bits, &error);
	if (txt == NULL) {
		fprintf(stderr, "yubin: %s\n", error);
		goto out;
	}
	printf("%s._domainkey.%s. IN TXT", sel, dom);
	for (size_t i = 0, n = strlen(txt); i < n; i += 255)
		printf(" \"%.*s\"", (int)(n - i < 255 ? n - i : 255), txt + i);
	printf("\n");
	fprintf(stderr, "yubin: key written to %s; publish the TXT record above\n", path);
	status = CLI_EXIT_OK;
out:
	free(dom);
	free(sel);
	free(dir);
	free(ddir);
	free(path);
	free(txt);
	free(error);
	return status;
}

int cli_dkim_sign(struct cli *c)
{
	char *error = NULL;
	struct dkim_key *key = dkim_key_load(c->argv[0], &error);
	if (key == NULL) {
		fprintf(stderr, "yubin: %s\n", error);
		free(error);
		return CLI_EXIT_FAIL;
	}
	size_t len;
	char *msg = read_crlf(c->argv[1], &len);
	int status = CLI_EXIT_FAIL;
	if (msg != NULL) {
		char *sig = dkim_sign(key, msg, len, 0);
		if (sig == NULL) {
			fprintf(stderr, "yubin: %s: cannot be signed (no From?)\n", c->argv[1]);
		} else {
			fputs(sig, stdout);
			fwrite(msg, 1, len, stdout);
			status = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
			free(sig);
		}
		free(msg);
	}
	dkim_key_free(&key);
	return status;
}

struct fake_rr {
	char *name;
	enum ma_dns_status status;
	char *text;
};

static size_t load_dns(const char *path, struct fake_rr *rr, size_t max)
{
	size_t len, n = 0;
	char *data = read_crlf(path, &len);
	if (data == NULL)
		return 0;
	char *save, *line;
	for (line = strtok_r(data, "\r\n", &save); line && n < max;
	     line = strtok_r(NULL, "\r\n", &save)) {
		if (*line == '#')
			continue;
		char *sp = line + strcspn(line, " \t");
		if (*sp == '\0')
			continue;
		*sp++ = '\0';
		sp += strspn(sp, " \t");
		size_t nl = strlen(line);
		if (nl > 0 && line[nl - 1] == '.')
			line[nl - 1] = '\0';
		rr[n].name = xstrdup(line);
		str_lower(rr[n].name);
		if (strcmp(sp, "NXDOMAIN") == 0) {
			rr[n].status = MA_DNS_NXDOMAIN;
		} else if (strcmp(sp, "TEMPFAIL") == 0) {
			rr[n].status = MA_DNS_TEMPFAIL;
		} else {
			rr[n].status = MA_DNS_OK;
			rr[n].text = xstrdup(sp);
		}
		n++;
	}
	free(data);
	return n;
}

int cli_dkim_verify(struct cli *c)
{
	const char *msg_path = NULL, *dns_path = NULL;
	int64_t now = 0;

	for (int i = 0; i < c->argc; i++) {
		if (strcmp(c->argv[i], "--dns") == 0 && i + 1 < c->argc)
			dns_path = c->argv[++i];
		else if (strcmp(c->argv[i], "--now") == 0 && i + 1 < c->argc)
			now = strtoll(c->argv[++i], NULL, 10);
		else if (msg_path == NULL)
			msg_path = c->argv[i];
		else
			msg_path = NULL, i = c->argc;
	}
	if (msg_path == NULL || dns_path == NULL) {
		fprintf(stderr, "usage: yubin dkim verify MESSAGE --dns FILE [--now SECONDS]\n");
		return CLI_EXIT_USAGE;
	}
	static struct fake_rr rr[256];
	size_t nrr = load_dns(dns_path, rr, 256);
	size_t len;
	char *msg = read_crlf(msg_path, &len);
	if (msg == NULL)
		return CLI_EXIT_FAIL;
	struct dkim_verify *v = dkim_verify_new();
	if (now != 0)
		dkim_verify_set_now(v, now);
	dkim_verify_feed(v, msg, len);
	dkim_verify_end(v);
	free(msg);
	struct ma_query q;
	struct ma_answer a, *ap = NULL;
	struct ma_record recs[MA_ANSWER_MAX];
	while (dkim_verify_step(v, ap, &q) == MA_STEP_QUERY) {
		a.status = MA_DNS_NXDOMAIN;
		a.count = 0;
		a.records = recs;
		for (size_t i = 0; i < nrr; i++) {
			if (strcmp(rr[i].name, q.name) != 0)
				continue;
			a.status = rr[i].status;
			if (rr[i].status == MA_DNS_OK && a.count < MA_ANSWER_MAX) {
				recs[a.count].text = rr[i].text;
				recs[a.count].len = strlen(rr[i].text);
				a.count++;
			}
		}
		ap = &a;
	}
	const struct dkim_sig_result *r;
	size_t n = dkim_verify_results(v, &r);
	bool pass = false;
	for (size_t i = 0; i < n; i++) {
		printf("%s d=%s s=%s a=%s%s%s%s\n", dkim_result_name(r[i].result),
		       r[i].domain ? r[i].domain : "", r[i].selector ? r[i].selector : "",
		       r[i].algorithm ? r[i].algorithm : "", r[i].reason ? " (" : "",
		       r[i].reason ? r[i].reason : "", r[i].reason ? ")" : "");
		pass |= r[i].result == DKIM_PASS;
	}
	if (n == 0)
		printf("none\n");
	dkim_verify_free(&v);
	for (size_t i = 0; i < nrr; i++) {
		free(rr[i].name);
		free(rr[i].text);
	}
	return pass ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
