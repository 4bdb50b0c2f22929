/* SPF evaluation, RFC 7208. (First step: the interface; the evaluation
 * answers "none" until the evaluator lands.) */
#include "mailauth/spf.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

struct spf {
	struct ma_ip ip;
	char *domain;
	char *identity;
	enum spf_result result;
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail", "softfail",
					     "temperror", "permerror" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

struct spf *spf_new(const struct ma_ip *ip, const char *helo, const char *sender,
		    const char *receiver)
{
	struct spf *s = xcalloc(1, sizeof(*s));
	s->ip = *ip;
	const char *at = sender != NULL ? strrchr(sender, '@') : NULL;
	if (sender == NULL || sender[0] == '\0') {
		s->domain = xstrdup(helo != NULL ? helo : "");
		s->identity = xasprintf("postmaster@%s", s->domain);
	} else {
		s->domain = xstrdup(at != NULL ? at + 1 : sender);
		s->identity = xstrdup(sender);
	}
	(void)receiver;
	return s;
}

struct spf *spf_new_helo(const struct ma_ip *ip, const char *helo, const char *receiver)
{
	return spf_new(ip, helo, "", receiver);
}

enum ma_step spf_step(struct spf *s, const struct ma_answer *answer, struct ma_query *q_r)
{
	(void)s;
	(void)answer;
	(void)q_r;
	return MA_STEP_DONE;
}

enum spf_result spf_result(const struct spf *s) { return s->result; }
const char *spf_domain(const struct spf *s) { return s->domain; }
const char *spf_identity(const struct spf *s) { return s->identity; }
const char *spf_explanation(const struct spf *s) { (void)s; return NULL; }
const char *spf_problem(const struct spf *s) { (void)s; return NULL; }
unsigned spf_queries(const struct spf *s) { (void)s; return 0; }

void spf_free(struct spf **sp)
{
	struct spf *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	free(s->domain);
	free(s->identity);
	free(s);
}
