/* libFuzzer target: the config parser, from memory. Whatever the input,
 * loading either gives a config that keeps the promises of config.h or
 * one line of error text naming the file, and freeing leaves nothing. */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An absolute name, so that relative paths do not depend on getcwd(). */
#define NAME "/fuzz/etc/yubin.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char *error = NULL;
	int r = config_load_string((const char *)data, size, NAME, &cfg, &error);
	if (r < 0) {
		if (cfg != NULL || error == NULL || strncmp(error, NAME, strlen(NAME)) != 0 ||
		    strchr(error, '\n') != NULL)
			abort();
		free(error);
		return 0;
	}
	if (r != 0 || cfg == NULL || error != NULL)
		abort();
	if (cfg->hostname == NULL || cfg->hostname[0] == '\0' || cfg->data_dir[0] != '/' ||
	    (cfg->tls_cert != NULL && cfg->tls_cert[0] != '/') ||
	    (cfg->tls_cert == NULL) != (cfg->tls_key == NULL) || cfg->log_level == NULL ||
	    cfg->recipient_delimiter == NULL || cfg->max_line_length < 1000 ||
	    cfg->max_recipients < 100 || cfg->smtp_timeout == 0)
		abort();
	for (int k = 0; k < LISTENER__COUNT; k++) {
		const struct config_listener *l = &cfg->listeners[k];
		if (strcmp(l->section, config_listener_name((enum listener_kind)k)) != 0)
			abort();
		if (l->present != (l->listen_count > 0) || l->listen_count > CONFIG_LISTEN_MAX)
			abort();
		for (size_t i = 0; i < l->listen_count; i++) {
			const struct config_listen *a = &l->listen[i];
			long port = strtol(a->port, NULL, 10);
			if (a->host[0] == '\0' || port < 1 || port > 65535 || a->line < 1 ||
			    strcmp(a->file, NAME) != 0)
				abort();
		}
	}
	config_free(&cfg);
	if (cfg != NULL)
		abort();
	return 0;
}
