/*
 * wh_config.h - the webhook's configuration file (YAML), its whole schema:
 * profile and mode, the policy settings (wh_policy_config), worker
 * selection and exemptions, and the server's listen/TLS/probe settings.
 *
 * Unknown keys and wrong types are errors naming the line. Defaults are
 * what `serve` and `check` use with no file. Command-line flags override
 * the file (the caller applies them after loading).
 *
 * Thread-safety: a loaded config is immutable; the server swaps whole
 * configs on SIGHUP and reference-counts them (wh_config_ref/unref).
 * Ownership: wh_config_load allocates; wh_config_unref frees at zero.
 */
#ifndef WH_CONFIG_H
#define WH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "wh_policy.h"
#include "wh_selector.h"

typedef enum wh_mode {
	WH_MODE_ENFORCE = 0,
	WH_MODE_WARN = 1,
	WH_MODE_AUDIT = 2,
} wh_mode;

int wh_mode_parse(const char *name, wh_mode *out);
const char *wh_mode_name(wh_mode m);

typedef struct wh_server_config {
	char listen[128];    /* "ADDR:PORT", default "0.0.0.0:8443" */
	char tls_cert[4096]; /* PEM file; empty = none */
	char tls_key[4096];
	char probe_listen[128];      /* plain-HTTP /healthz /readyz /metrics; empty = off */
	unsigned threads;            /* default 4 */
	unsigned connection_limit;   /* default 1024 */
	unsigned connection_timeout; /* seconds, default 10 */
	char tls_secret[512];        /* self-managed TLS: NAMESPACE/NAME (issue 5) */
	char webhook_config[254];
	char service[254];
	char kubeconfig[4096];
	/* Self-managed TLS (docs/tls.md): key type "ecdsa-p256" (default),
	 * "rsa-2048", "rsa-3072", "rsa-4096"; validity periods, the rollover
	 * propagation period and the Secret re-read interval, in seconds. */
	char tls_key_type[16];
	unsigned tls_ca_validity;   /* default 157680000 (5 years) */
	unsigned tls_leaf_validity; /* default 7776000 (90 days) */
	unsigned tls_propagation;   /* default 300 */
	unsigned tls_sync_interval; /* default 60 */
	char **network_policy_files;
	size_t n_network_policy_files;
} wh_server_config;

typedef struct wh_config {
	wh_profile profile; /* default worker */
	wh_mode mode;       /* default enforce */
	wh_policy_config policy;
	/* Which pods are workers: all of these must hold. */
	wh_selector *worker_selector; /* NULL: every pod */
	char **worker_namespaces;     /* empty: every namespace */
	size_t n_worker_namespaces;
	char **exempt_namespaces;
	size_t n_exempt_namespaces;
	char **exempt_usernames;
	size_t n_exempt_usernames;
	wh_server_config server;
	int refs; /* atomic */
} wh_config;

/* A config with every default, one reference. NULL on allocation failure. */
wh_config *wh_config_new_default(void);
/* Parses YAML text (`name` is used in messages). NULL with `err` set on
 * any error: "config.yaml: line 7: unknown key \"modee\"". */
wh_config *wh_config_parse(const char *text, size_t len, const char *name, char *err,
                           size_t errlen);
/* Reads and parses a file (bounded by CF_MAX_INPUT_FILE_BYTES). */
wh_config *wh_config_load(const char *path, char *err, size_t errlen);
wh_config *wh_config_ref(wh_config *cfg);
void wh_config_unref(wh_config *cfg);

/* Whether a pod (namespace, labels) is a worker and not exempt, and
 * whether a username is exempt. */
bool wh_config_selects(const wh_config *cfg, const char *ns, const cJSON *labels);
bool wh_config_user_exempt(const wh_config *cfg, const char *username);

#endif
