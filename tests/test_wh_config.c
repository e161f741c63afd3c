/* Tests for webhook/wh_config: defaults, every key of the schema, and the
 * errors (unknown key, wrong type, bad enum, bad value) naming file and
 * line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wh_config.h"

static char err[1024];

static wh_config *parse(const char *text)
{
	err[0] = '\0';
	return wh_config_parse(text, strlen(text), "test.yaml", err, sizeof err);
}

/* The text must be refused with a message naming the file, the line (0:
 * no line expected) and containing `needle`. */
static void refuse(const char *text, unsigned line, const char *needle)
{
	wh_config *cfg = parse(text);
	cr_assert_null(cfg, "accepted: %s", text);
	cr_assert(strncmp(err, "test.yaml: ", 11) == 0, "no file name: %s", err);
	if (line) {
		char want[32];
		snprintf(want, sizeof want, "line %u:", line);
		cr_assert(strstr(err, want), "want %s in: %s", want, err);
	}
	cr_assert(strstr(err, needle), "want \"%s\" in: %s", needle, err);
}

static const cJSON *labels(const char *json)
{
	static cJSON *keep[8];
	static size_t n;
	cJSON *j = cJSON_Parse(json);
	cr_assert_not_null(j);
	if (n == 8) {
		cJSON_Delete(keep[0]);
		memmove(keep, keep + 1, 7 * sizeof keep[0]);
		n = 7;
	}
	keep[n++] = j;
	return j;
}

/* ---- positive ---- */

Test(wh_config, defaults_match_the_schema)
{
	wh_config *cfg = wh_config_new_default();
	cr_assert_not_null(cfg);
	cr_assert_eq(cfg->profile, WH_PROFILE_WORKER);
	cr_assert_eq(cfg->mode, WH_MODE_ENFORCE);
	cr_assert_str_eq(cfg->server.listen, "0.0.0.0:8443");
	cr_assert_eq(cfg->server.threads, 4);
	cr_assert_eq(cfg->server.connection_limit, 1024);
	cr_assert_eq(cfg->server.connection_timeout, 10);
	cr_assert_str_eq(cfg->server.probe_listen, "");
	cr_assert(cfg->policy.read_only_root_filesystem && cfg->policy.network_policy);
	cr_assert(!cfg->policy.seccomp_localhost);
	cr_assert(cfg->policy.require_cpu_limit && cfg->policy.require_memory_limit);
	cr_assert(!cfg->policy.require_ephemeral_storage_limit);
	cr_assert(!cfg->policy.netpol_unsynced_warn);
	cr_assert_null(cfg->worker_selector);
	cr_assert_eq(cfg->refs, 1);
	wh_config_unref(cfg);
}

Test(wh_config, empty_and_comment_only_files_are_the_defaults)
{
	wh_config *cfg = parse("");
	cr_assert_not_null(cfg, "%s", err);
	cr_assert_eq(cfg->profile, WH_PROFILE_WORKER);
	wh_config_unref(cfg);
	cfg = parse("# nothing set\n---\n");
	cr_assert_not_null(cfg, "%s", err);
	cr_assert_str_eq(cfg->server.listen, "0.0.0.0:8443");
	wh_config_unref(cfg);
}

Test(wh_config, the_documented_schema_file_loads_as_the_defaults)
{
	wh_config *cfg = wh_config_load("docs/config-schema.yaml", err, sizeof err);
	cr_assert_not_null(cfg, "%s", err);
	wh_config *def = wh_config_new_default();
	cr_assert_eq(cfg->profile, def->profile);
	cr_assert_eq(cfg->mode, def->mode);
	cr_assert_str_eq(cfg->policy.seccomp_localhost_profile,
	                 def->policy.seccomp_localhost_profile);
	cr_assert_eq(cfg->policy.require_cpu_limit, def->policy.require_cpu_limit);
	cr_assert_eq(cfg->policy.require_ephemeral_storage_limit,
	             def->policy.require_ephemeral_storage_limit);
	cr_assert_eq(cfg->policy.has_max_cpu, false);
	cr_assert_str_eq(cfg->server.listen, def->server.listen);
	cr_assert_eq(cfg->server.threads, def->server.threads);
	cr_assert_eq(cfg->n_worker_namespaces, 0);
	cr_assert_null(cfg->worker_selector);
	wh_config_unref(def);
	wh_config_unref(cfg);
}

Test(wh_config, the_example_config_loads)
{
	wh_config *cfg = wh_config_load("examples/config.yaml", err, sizeof err);
	cr_assert_not_null(cfg, "%s", err);
	wh_config_unref(cfg);
}

Test(wh_config, every_key_is_read)
{
	wh_config *cfg = parse("profile: restricted\n"
	                       "mode: audit\n"
	                       "checks:\n"
	                       "  readOnlyRootFilesystem: false\n"
	                       "  resourceLimits: false\n"
	                       "  networkPolicy: false\n"
	                       "  secrets: false\n"
	                       "  serviceAccountToken: false\n"
	                       "  seccompLocalhost: true\n"
	                       "seccompLocalhostProfile: profiles/other.json\n"
	                       "resources:\n"
	                       "  requireLimits: [memory, ephemeral-storage]\n"
	                       "  max: {cpu: \"4\", memory: 8Gi, ephemeral-storage: 10Gi}\n"
	                       "allowedCapabilities: [NET_RAW, SYS_PTRACE]\n"
	                       "optional:\n"
	                       "  allowedRuntimeClasses: [gvisor, kata-qemu]\n"
	                       "  requireHostUsersFalse: true\n"
	                       "  requireEmptyDirSizeLimit: true\n"
	                       "networkPolicyNotSynced: warn\n"
	                       "workers:\n"
	                       "  namespaces: [ci, builds]\n"
	                       "  selector: {matchLabels: {app: worker}}\n"
	                       "exemptions:\n"
	                       "  namespaces: [ops]\n"
	                       "  usernames: [\"system:serviceaccount:ops:deployer\"]\n"
	                       "server:\n"
	                       "  listen: \"[::]:9443\"\n"
	                       "  tlsCert: /tls/tls.crt\n"
	                       "  tlsKey: /tls/tls.key\n"
	                       "  probeListen: 127.0.0.1:8080\n"
	                       "  threads: 8\n"
	                       "  connectionLimit: 200\n"
	                       "  connectionTimeoutSeconds: 30\n"
	                       "  tlsSecret: guard/webhook-tls\n"
	                       "  webhookConfiguration: codeframe-guard\n"
	                       "  service: codeframe-guard-webhook\n"
	                       "  kubeconfig: /root/.kube/config\n"
	                       "  networkPolicyFiles: [/etc/np/a.yaml, /etc/np/b.yaml]\n");
	cr_assert_not_null(cfg, "%s", err);
	const wh_policy_config *p = &cfg->policy;
	cr_assert_eq(cfg->profile, WH_PROFILE_RESTRICTED);
	cr_assert_eq(cfg->mode, WH_MODE_AUDIT);
	cr_assert(!p->read_only_root_filesystem && !p->resource_limits && !p->network_policy);
	cr_assert(!p->secrets && !p->service_account_token && p->seccomp_localhost);
	cr_assert_str_eq(p->seccomp_localhost_profile, "profiles/other.json");
	cr_assert(!p->require_cpu_limit && p->require_memory_limit &&
	          p->require_ephemeral_storage_limit);
	cr_assert(p->has_max_cpu && p->has_max_memory && p->has_max_ephemeral_storage);
	wh_quantity four;
	cr_assert_eq(wh_quantity_parse("4", &four), 0);
	cr_assert_eq(wh_quantity_cmp(&p->max_cpu, &four), 0);
	wh_quantity eight;
	cr_assert_eq(wh_quantity_parse("8Gi", &eight), 0);
	cr_assert_eq(wh_quantity_cmp(&p->max_memory, &eight), 0);
	cr_assert_eq(p->n_allowed_capabilities, 2);
	cr_assert_str_eq(p->allowed_capabilities[1], "SYS_PTRACE");
	cr_assert_eq(p->n_allowed_runtime_classes, 2);
	cr_assert_str_eq(p->allowed_runtime_classes[0], "gvisor");
	cr_assert(p->require_host_users_false && p->require_emptydir_size_limit);
	cr_assert(p->netpol_unsynced_warn);
	cr_assert_eq(cfg->n_worker_namespaces, 2);
	cr_assert_not_null(cfg->worker_selector);
	cr_assert_eq(cfg->n_exempt_namespaces, 1);
	cr_assert_str_eq(cfg->exempt_usernames[0], "system:serviceaccount:ops:deployer");
	const wh_server_config *s = &cfg->server;
	cr_assert_str_eq(s->listen, "[::]:9443");
	cr_assert_str_eq(s->tls_cert, "/tls/tls.crt");
	cr_assert_str_eq(s->tls_key, "/tls/tls.key");
	cr_assert_str_eq(s->probe_listen, "127.0.0.1:8080");
	cr_assert_eq(s->threads, 8);
	cr_assert_eq(s->connection_limit, 200);
	cr_assert_eq(s->connection_timeout, 30);
	cr_assert_str_eq(s->tls_secret, "guard/webhook-tls");
	cr_assert_str_eq(s->webhook_config, "codeframe-guard");
	cr_assert_str_eq(s->service, "codeframe-guard-webhook");
	cr_assert_str_eq(s->kubeconfig, "/root/.kube/config");
	cr_assert_eq(s->n_network_policy_files, 2);
	cr_assert_str_eq(s->network_policy_files[1], "/etc/np/b.yaml");
	wh_config_unref(cfg);
}

Test(wh_config, null_sections_and_lists_keep_defaults)
{
	wh_config *cfg = parse("checks:\nresources:\n  requireLimits:\n  max:\nworkers:\n"
	                       "  selector: null\nexemptions: ~\nserver:\n");
	cr_assert_not_null(cfg, "%s", err);
	cr_assert(cfg->policy.require_cpu_limit && cfg->policy.require_memory_limit);
	cr_assert_null(cfg->worker_selector);
	cr_assert_eq(cfg->server.threads, 4);
	wh_config_unref(cfg);
}

Test(wh_config, empty_require_limits_requires_none)
{
	wh_config *cfg = parse("resources:\n  requireLimits: []\n");
	cr_assert_not_null(cfg, "%s", err);
	cr_assert(!cfg->policy.require_cpu_limit && !cfg->policy.require_memory_limit);
	wh_config_unref(cfg);
}

Test(wh_config, selection_by_namespace_labels_and_exemption)
{
	wh_config *cfg = parse("workers:\n  namespaces: [ci]\n"
	                       "  selector: {matchLabels: {role: worker}}\n"
	                       "exemptions:\n  usernames: [admin]\n");
	cr_assert_not_null(cfg, "%s", err);
	cr_assert(wh_config_selects(cfg, "ci", labels("{\"role\":\"worker\"}")));
	cr_assert(!wh_config_selects(cfg, "ci", labels("{\"role\":\"web\"}")));
	cr_assert(!wh_config_selects(cfg, "ci", NULL));
	cr_assert(!wh_config_selects(cfg, "other", labels("{\"role\":\"worker\"}")));
	cr_assert(!wh_config_selects(cfg, NULL, labels("{\"role\":\"worker\"}")),
	          "no namespace is default, not ci");
	cr_assert(wh_config_user_exempt(cfg, "admin"));
	cr_assert(!wh_config_user_exempt(cfg, "admin2"));
	cr_assert(!wh_config_user_exempt(cfg, NULL));
	wh_config_unref(cfg);
}

Test(wh_config, exempt_namespace_wins_and_default_selects_everything)
{
	wh_config *cfg = parse("exemptions:\n  namespaces: [default, ops]\n");
	cr_assert_not_null(cfg, "%s", err);
	cr_assert(!wh_config_selects(cfg, "ops", NULL));
	cr_assert(!wh_config_selects(cfg, "", NULL), "empty namespace is default");
	cr_assert(wh_config_selects(cfg, "ci", NULL));
	wh_config_unref(cfg);
	cfg = wh_config_new_default();
	cr_assert(wh_config_selects(cfg, "anything", NULL));
	cr_assert(!wh_config_user_exempt(cfg, "admin"));
	wh_config_unref(cfg);
}

Test(wh_config, reference_counting_keeps_the_config_alive)
{
	wh_config *cfg = parse("exemptions: {usernames: [a]}\n");
	cr_assert_not_null(cfg);
	cr_assert_eq(wh_config_ref(cfg), cfg);
	cr_assert_eq(cfg->refs, 2);
	wh_config_unref(cfg);
	cr_assert_eq(cfg->refs, 1);
	cr_assert(wh_config_user_exempt(cfg, "a"), "still usable after one unref");
	wh_config_unref(cfg);
	cr_assert_null(wh_config_ref(NULL));
	wh_config_unref(NULL);
}

Test(wh_config, mode_names_round_trip)
{
	wh_mode m;
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(wh_mode_parse(wh_mode_name((wh_mode)i), &m), 0);
		cr_assert_eq((int)m, i);
	}
	cr_assert_str_eq(wh_mode_name(WH_MODE_WARN), "warn");
}

/* ---- negative ---- */

Test(wh_config, mode_parse_rejects_unknown)
{
	wh_mode m = WH_MODE_AUDIT;
	cr_assert_eq(wh_mode_parse("Enforce", &m), -EINVAL);
	cr_assert_eq(wh_mode_parse("", &m), -EINVAL);
	cr_assert_eq(wh_mode_parse(NULL, &m), -EINVAL);
	cr_assert_eq(m, WH_MODE_AUDIT, "untouched on error");
	cr_assert_str_eq(wh_mode_name((wh_mode)7), "unknown");
}

Test(wh_config, unknown_top_level_key_names_line)
{
	refuse("profile: worker\nmodee: warn\n", 2, "unknown key \"modee\"");
}

Test(wh_config, unknown_nested_keys_name_their_path)
{
	refuse("checks:\n  secret: true\n", 2, "unknown key \"checks.secret\"");
	refuse("server:\n  listen: 0.0.0.0:1\n  thread: 2\n", 3, "\"server.thread\"");
	refuse("resources:\n  max: {cpus: 2}\n", 2, "\"resources.max.cpus\"");
	refuse("workers: {namespace: [a]}\n", 1, "\"workers.namespace\"");
	refuse("exemptions: {users: [a]}\n", 1, "\"exemptions.users\"");
	refuse("optional:\n\n  hostUsers: false\n", 3, "\"optional.hostUsers\"");
}

Test(wh_config, booleans_must_be_booleans)
{
	refuse("checks:\n  secrets: yes\n", 2,
	       "\"checks.secrets\" must be true or false, not a string");
	refuse("checks: {networkPolicy: 1}\n", 1, "not a number");
	refuse("optional:\n  requireHostUsersFalse: \"true\"\n", 2, "requireHostUsersFalse");
	refuse("checks: {seccompLocalhost: }\n", 1, "not null");
}

Test(wh_config, integers_are_typed_and_ranged)
{
	refuse("server:\n  threads: \"4\"\n", 2, "\"server.threads\" must be an integer");
	refuse("server:\n  threads: 0\n", 2, "between 1 and 256");
	refuse("server:\n  threads: 1000\n", 2, "between 1 and 256");
	refuse("server:\n  threads: 2.5\n", 2, "whole number");
	refuse("server:\n  connectionLimit: -1\n", 2, "connectionLimit");
	refuse("server:\n  connectionTimeoutSeconds: 86400\n", 2, "between 1 and 3600");
	refuse("server:\n  connectionTimeoutSeconds: .nan\n", 2, "connectionTimeoutSeconds");
}

Test(wh_config, enums_are_checked)
{
	refuse("profile: strict\n", 1, "\"profile\": \"strict\" is not one of");
	refuse("profile: 3\n", 1, "\"profile\" must be one of");
	refuse("\n\nmode: deny\n", 3, "\"mode\": \"deny\"");
	refuse("mode: [warn]\n", 1, "not a list");
	refuse("networkPolicyNotSynced: allow\n", 1, "deny, warn");
	refuse("profile:\n", 1, "not null");
}

Test(wh_config, sections_must_be_mappings)
{
	refuse("checks: true\n", 1, "\"checks\" must be a mapping, not a boolean");
	refuse("server: [a]\n", 1, "\"server\" must be a mapping, not a list");
	refuse("resources:\n  max: 4\n", 2, "\"resources.max\" must be a mapping");
	refuse("workers:\n  selector: app=worker\n", 2, "LabelSelector mapping");
}

Test(wh_config, lists_are_lists_of_valid_unique_strings)
{
	refuse("allowedCapabilities: NET_RAW\n", 1, "must be a list, not a string");
	refuse("allowedCapabilities:\n- NET_RAW\n- 5\n", 3, "entries must be strings");
	refuse("allowedCapabilities: [NET_RAW, NET_RAW]\n", 1, "listed twice");
	refuse("workers:\n  namespaces:\n  - ok\n  - Not_OK\n", 4, "not a valid namespace name");
	refuse("exemptions:\n  usernames: [\"\"]\n", 2, "is empty");
	refuse("optional:\n  allowedRuntimeClasses: [gVisor]\n", 2,
	       "not a valid Kubernetes object name");
	refuse("server:\n  networkPolicyFiles: [\"\"]\n", 2, "is empty");
}

Test(wh_config, capabilities_are_names_without_prefix_and_never_all)
{
	refuse("allowedCapabilities: [ALL]\n", 1, "cannot be allowed");
	refuse("allowedCapabilities: [CAP_NET_RAW]\n", 1, "without the CAP_ prefix");
	refuse("allowedCapabilities: [net_raw]\n", 1, "not a capability name");
}

Test(wh_config, resource_names_and_quantities_are_checked)
{
	refuse("resources:\n  requireLimits: [cpu, gpu]\n", 2, "\"gpu\" is not one of cpu, memory");
	refuse("resources:\n  requireLimits: [cpu, cpu]\n", 2, "listed twice");
	refuse("resources:\n  max:\n    memory: 8 GB\n", 3, "not a Kubernetes quantity");
	refuse("resources:\n  max: {cpu: -1}\n", 2, "greater than zero");
	refuse("resources:\n  max: {cpu: \"0\"}\n", 2, "greater than zero");
	refuse("resources:\n  max: {memory: [1Gi]}\n", 2, "must be a quantity, not a list");
}

Test(wh_config, selector_errors_name_the_selector)
{
	refuse("workers:\n  selector:\n    matchLabel: {a: b}\n", 3,
	       "unknown key \"workers.selector.matchLabel\"");
	refuse("workers:\n  selector:\n    matchExpressions: [{key: a, operator: Has}]\n", 2,
	       "\"workers.selector\":");
	refuse("workers:\n  selector:\n    matchLabels: {a: [b]}\n", 2, "\"workers.selector\":");
}

Test(wh_config, listen_addresses_are_checked)
{
	refuse("server: {listen: \"8443\"}\n", 1, "is not ADDRESS:PORT");
	refuse("server: {listen: \"0.0.0.0:0\"}\n", 1, "is not ADDRESS:PORT");
	refuse("server: {listen: \"0.0.0.0:70000\"}\n", 1, "is not ADDRESS:PORT");
	refuse("server: {listen: \":::8443\"}\n", 1, "is not ADDRESS:PORT");
	refuse("server: {listen: \"host:\"}\n", 1, "is not ADDRESS:PORT");
	refuse("server: {listen: \"\"}\n", 1, "is not ADDRESS:PORT");
	refuse("server: {probeListen: \"0.0.0.0:http\"}\n", 1, "server.probeListen");
}

Test(wh_config, strings_are_bounded)
{
	char text[400];
	char longv[200];
	memset(longv, 'a', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	snprintf(text, sizeof text, "server:\n  listen: \"%s:1\"\n", longv);
	refuse(text, 2, "longer than 127 characters");
	refuse("server: {kubeconfig: 5}\n", 1, "\"server.kubeconfig\" must be a string");
}

Test(wh_config, tls_settings_are_consistent)
{
	refuse("server:\n  tlsCert: /a.crt\n", 2, "must be given together");
	refuse("server:\n  tlsCert: \"\"\n  tlsKey: /a.key\n", 3, "must be given together");
	refuse("server: {tlsSecret: webhook-tls}\n", 1, "is not NAMESPACE/NAME");
	refuse("server: {tlsSecret: \"Guard/tls\"}\n", 1, "is not NAMESPACE/NAME");
	refuse("server: {service: my.service}\n", 1, "not a valid Service name");
	refuse("server: {webhookConfiguration: \"-bad\"}\n", 1, "not a valid name");
}

Test(wh_config, self_managed_tls_settings)
{
	wh_config *d = wh_config_new_default();
	cr_assert_str_eq(d->server.tls_key_type, "ecdsa-p256");
	cr_assert_eq(d->server.tls_ca_validity, 157680000u);
	cr_assert_eq(d->server.tls_leaf_validity, 7776000u);
	cr_assert_eq(d->server.tls_propagation, 300u);
	cr_assert_eq(d->server.tls_sync_interval, 60u);
	wh_config_unref(d);
	wh_config *c = parse("server:\n  tlsSecret: guard/guard-tls\n  tlsKeyType: rsa-3072\n"
	                     "  tlsCAValiditySeconds: 20\n  tlsLeafValiditySeconds: 10\n"
	                     "  tlsRolloverPropagationSeconds: 0\n  tlsSyncIntervalSeconds: 1\n");
	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->server.tls_key_type, "rsa-3072");
	cr_assert_eq(c->server.tls_ca_validity, 20u);
	cr_assert_eq(c->server.tls_leaf_validity, 10u);
	cr_assert_eq(c->server.tls_propagation, 0u);
	cr_assert_eq(c->server.tls_sync_interval, 1u);
	wh_config_unref(c);
}

Test(wh_config, self_managed_tls_settings_are_checked)
{
	refuse("server:\n  tlsKeyType: rsa-1024\n", 2, "is not ecdsa-p256");
	refuse("server:\n  tlsKeyType: 7\n", 2, "must be a string");
	refuse("server:\n  tlsLeafValiditySeconds: 2\n", 2, "between 3 and");
	refuse("server:\n  tlsCAValiditySeconds: -1\n", 2, "between 6 and");
	refuse("server:\n  tlsCAValiditySeconds: 100\n  tlsLeafValiditySeconds: 60\n", 0,
	       "at least twice");
	refuse("server:\n  tlsRolloverPropagationSeconds: 86401\n", 2, "between 0 and 86400");
	refuse("server:\n  tlsSyncIntervalSeconds: 0\n", 2, "between 1 and 3600");
	refuse("server:\n  tlsSyncIntervalSeconds: 1.5\n", 2, "");
}

Test(wh_config, seccomp_profile_must_be_relative)
{
	refuse("seccompLocalhostProfile: /etc/p.json\n", 1, "relative path");
	refuse("seccompLocalhostProfile: ../p.json\n", 1, "relative path");
	refuse("seccompLocalhostProfile: a/../../p.json\n", 1, "relative path");
	refuse("seccompLocalhostProfile: \"\"\n", 1, "relative path");
}

Test(wh_config, document_shape_is_checked)
{
	refuse("- profile: worker\n", 1, "top level must be a mapping of settings, not a list");
	refuse("worker\n", 1, "not a string");
	refuse("profile: worker\n---\nmode: warn\n", 3, "one YAML document");
}

Test(wh_config, yaml_errors_carry_the_file_and_line)
{
	refuse("profile: worker\nmode: [warn\n", 0, "line ");
	refuse("mode: warn\nprofile: worker\nmode: audit\n", 3, "duplicate key \"mode\"");
	refuse("a: &x {k: 1}\nb:\n  <<: *x\n", 3, "merge keys");
}

Test(wh_config, load_reports_missing_and_unreadable_files)
{
	cr_assert_null(wh_config_load("/nonexistent/config.yaml", err, sizeof err));
	cr_assert(strstr(err, "/nonexistent/config.yaml") && strstr(err, "No such file"), "%s",
	          err);
	cr_assert_null(wh_config_load("/", err, sizeof err));
	cr_assert(strstr(err, "is a directory"), "%s", err);
}

Test(wh_config, load_reports_the_file_name_in_parse_errors)
{
	char path[] = "/tmp/wh_config_testXXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	const char text[] = "profile: worker\n\nbogus: 1\n";
	cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);
	wh_config *cfg = wh_config_load(path, err, sizeof err);
	unlink(path);
	cr_assert_null(cfg);
	cr_assert(strstr(err, path) && strstr(err, "line 3") && strstr(err, "\"bogus\""), "%s",
	          err);
}
