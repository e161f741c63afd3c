/*
 * na_config.h - the agent's own configuration (`codeframe-agent run
 * --config FILE`), a YAML mapping; flags given on the command line override
 * the file. Keys (docs/nodeagent-runtime.md), with defaults:
 *   socket: /run/codeframe-guard/agent.sock
 *   stateDir: /run/codeframe-guard/state
 *   policies: [/etc/codeframe-guard/policy.yml]
 *   metricsListen: 0.0.0.0:9090        ("" turns metrics off)
 *   logLevel: info                     (debug, info, warning, error)
 *   profileDir: /var/lib/kubelet/seccomp   ("" = do not install the profile)
 *   approvalGroup: ""                  ("" = root only)
 *   approvalTimeoutSeconds: 60
 *   nodeName: ""                       ("" = $NODE_NAME)
 * Unknown keys, wrong types and out-of-range values are errors naming the
 * file and line, so a typo never silently falls back to a default.
 *
 * Thread-safety: loaded before threads start, then read-only.
 * Ownership: na_config owns its strings; na_config_free.
 */
#ifndef NA_CONFIG_H
#define NA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cf_log.h"

#define NA_CONFIG_DEFAULT_SOCKET       "/run/codeframe-guard/agent.sock"
#define NA_CONFIG_DEFAULT_STATE_DIR    "/run/codeframe-guard/state"
#define NA_CONFIG_DEFAULT_POLICY       "/etc/codeframe-guard/policy.yml"
#define NA_CONFIG_DEFAULT_METRICS      "0.0.0.0:9090"
#define NA_CONFIG_DEFAULT_PROFILE_DIR  "/var/lib/kubelet/seccomp"
#define NA_CONFIG_MAX_APPROVAL_TIMEOUT 86400

typedef struct na_config {
	char *socket;
	char *state_dir;
	char **policies;
	size_t n_policies;
	char *metrics_listen; /* "" = off */
	cf_log_level log_level;
	char *profile_dir;
	char *approval_group;
	long approval_timeout_s;
	char *node_name;
} na_config;

/* Fills the defaults (node name from $NODE_NAME). 0 or -ENOMEM. */
int na_config_init(na_config *c);
/* Reads FILE over the current values. 0, or -errno with "FILE:LINE: ..." in
 * err; on error `c` is unchanged. */
int na_config_load_file(na_config *c, const char *path, char *err, size_t errlen);
int na_config_load_buffer(na_config *c, const char *name, const char *data, size_t len, char *err,
                          size_t errlen);
/* Replaces a string setting (for command-line overrides). 0 or -ENOMEM. */
int na_config_set(char **field, const char *value);
/* Replaces the policy list. 0 or -ENOMEM. */
int na_config_set_policies(na_config *c, char *const *paths, size_t n);
void na_config_free(na_config *c);

/* "ADDR:PORT" (IPv4 dotted quad or "localhost"; port 1..65535) -> network
 * order address and host-order port. 0 or -EINVAL with err. */
int na_config_parse_listen(const char *s, uint32_t *addr_be, uint16_t *port, char *err,
                           size_t errlen);

#endif
