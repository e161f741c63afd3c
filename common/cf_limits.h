/*
 * cf_limits.h - every bound on untrusted input, in one place.
 *
 * Purpose: the webhook and the agent read bytes from API servers, manifest
 * files, sockets and other processes' memory. Each bound those readers apply
 * is named here so that a reviewer can see all of them at once and tests can
 * refer to them by name.
 * Thread-safety: constants only. Ownership: n/a.
 */
#ifndef CF_LIMITS_H
#define CF_LIMITS_H

/* Manifest and config files read by `check`, `--config`, `--policy`. */
#define CF_MAX_INPUT_FILE_BYTES (16u * 1024u * 1024u)
/* YAML/JSON structure: nesting depth, total nodes (after alias expansion),
 * anchors per document, and a single scalar's length. */
#define CF_YAML_MAX_DEPTH        128
#define CF_YAML_MAX_NODES        1000000u
#define CF_YAML_MAX_ANCHORS      4096u
#define CF_YAML_MAX_SCALAR_BYTES (4u * 1024u * 1024u)
#define CF_YAML_MAX_DOCUMENTS    10000u

/* Admission: body size the webhook accepts (the API server caps objects at
 * 3 MiB in etcd; a review carries object + oldObject). */
#define CF_MAX_ADMISSION_BODY_BYTES (3u * 1024u * 1024u)
/* A chunked /validate body past the limit is read and discarded so the
 * client still gets its 413; past this many bytes the connection is cut. */
#define CF_MAX_HTTP_DISCARD_BYTES (4u * CF_MAX_ADMISSION_BODY_BYTES)

/* Warnings returned to kubectl: each and all together (API server limits). */
#define CF_MAX_WARNING_CHARS        120u
#define CF_MAX_WARNINGS_TOTAL_BYTES 4096u

/* Log lines: a single field value is truncated past this. */
#define CF_LOG_MAX_FIELD_BYTES 4096u

/* Kubernetes API client (cf_kube) and the NetworkPolicy watch (wh_watch).
 * A kubeconfig file; the service account token; one response body of a
 * plain request (a list page: the client asks for CF_KUBE_LIST_PAGE_ITEMS
 * items at a time); one watch event line (objects are at most 1.5 MiB in
 * etcd by default, the request limit is 3 MiB; JSON framing adds a little);
 * the error body kept from a failed request (for the Status message). */
#define CF_KUBE_MAX_KUBECONFIG_BYTES  (4u * 1024u * 1024u)
#define CF_KUBE_MAX_TOKEN_BYTES       (64u * 1024u)
#define CF_KUBE_MAX_CA_BYTES          (1024u * 1024u)
#define CF_KUBE_MAX_RESPONSE_BYTES    (64u * 1024u * 1024u)
#define CF_KUBE_MAX_WATCH_EVENT_BYTES (4u * 1024u * 1024u)
#define CF_KUBE_MAX_ERROR_BODY_BYTES  (64u * 1024u)
/* A server URL from kubeconfig or the environment, and a resourceVersion
 * (opaque, but the API server's are decimal integers; bounded anyway). */
#define CF_KUBE_MAX_URL_BYTES              2048u
#define CF_KUBE_MAX_RESOURCE_VERSION_BYTES 128u
/* Items per list page (the list's `limit`), not an input bound but the
 * reason CF_KUBE_MAX_RESPONSE_BYTES is enough. */
#define CF_KUBE_LIST_PAGE_ITEMS 500u

/* Admission: the request uid is echoed back, so it is bounded; the deny
 * message and each audit annotation value are bounded so that a pod with
 * thousands of containers cannot produce a megabyte response. */
#define CF_MAX_ADMISSION_UID_BYTES    256u
#define CF_MAX_DENY_MESSAGE_BYTES     (16u * 1024u)
#define CF_MAX_AUDIT_ANNOTATION_BYTES (8u * 1024u)

/* TLS certificate and key files, and certificates in one chain. */
#define CF_MAX_TLS_FILE_BYTES  (1024u * 1024u)
#define CF_MAX_TLS_CHAIN_CERTS 16u
/* Self-managed TLS: the Secret's values are untrusted (anyone with update
 * on it could have written them): CAs in ca.crt (two during a rollover),
 * and bytes of one decoded PEM value. */
#define CF_MAX_TLS_BUNDLE_CERTS     8u
#define CF_MAX_TLS_SECRET_PEM_BYTES (64u * 1024u)

/* Metrics: label sets per family (label values can come from requests),
 * histogram buckets, and a label value's length (longer ones are cut). */
#define CF_METRICS_MAX_SERIES            1024u
#define CF_METRICS_MAX_BUCKETS           64u
#define CF_METRICS_MAX_LABEL_VALUE_BYTES 256u

/* Policy engine (webhook/wh_quantity, wh_policy): a resource quantity's text
 * (the API server's own grammar has no limit, but no real quantity is near
 * this), and the exponent range a quantity may use before it is -ERANGE. */
#define CF_QUANTITY_MAX_CHARS    128u
#define CF_QUANTITY_MAX_EXPONENT 64

/* Node agent: what is read from a target process at each exec. The kernel
 * caps one argument at 32 pages (MAX_ARG_STRLEN) and argv+envp at a quarter
 * of the stack limit (at most 6 MiB); these bounds sit above what a normal
 * exec can carry so only a hostile or broken caller reaches them, and a
 * command that does is reported as truncated (a finding), never as allowed
 * on a partial view. */
#define CF_AGENT_MAX_ARGC       131072u
#define CF_AGENT_MAX_ARGV_BYTES (8u * 1024u * 1024u)
#define CF_AGENT_MAX_PATH_BYTES 4096u
/* Ancestry: ppid links walked per exec, and pids remembered per tree. */
#define CF_AGENT_MAX_ANCESTRY_DEPTH 256u
#define CF_AGENT_MAX_TRACKED_PIDS   65536u
/* Events waiting for the writer thread; more are dropped (and counted). */
#define CF_AGENT_EVENT_QUEUE_LEN 8192u
/* Shell scanner: nesting of quotes/substitutions, here-documents pending on
 * one line, and a here-document delimiter's length. */
#define CF_AGENT_MAX_SHELL_DEPTH   64u
#define CF_AGENT_MAX_HEREDOCS      16u
#define CF_AGENT_MAX_HEREDOC_DELIM 256u
/* Command policy files: entries per list, findings kept per decision. */
#define CF_AGENT_MAX_POLICY_ENTRIES 4096u
#define CF_AGENT_MAX_FINDINGS       16u
/* Node agent: a runtime's seccomp handoff (OCI container process state JSON
 * plus SCM_RIGHTS). Pod annotations ride along (Kubernetes caps them at
 * 256 KiB), so 1 MiB leaves room; a handoff that is not complete within the
 * timeout is dropped so one stuck runtime cannot stall the listener. */
#define CF_HANDOFF_MAX_BYTES  (1024u * 1024u)
#define CF_HANDOFF_MAX_FDS    16u
#define CF_HANDOFF_TIMEOUT_MS 5000
/* Identity strings from annotations: Kubernetes object names are <= 253
 * characters; project/user ids are operator-defined and capped here. */
#define CF_IDENTITY_MAX_FIELD 256u
/* /proc/PID/environ of a container's init process, read for
 * CODEFRAME_PROJECT_ID/CODEFRAME_USER_ID (ARG_MAX-sized environments exist). */
#define CF_PROC_ENVIRON_MAX_BYTES (2u * 1024u * 1024u)
/* Agent config file (`run --config`). */
#define CF_AGENT_CONFIG_MAX_BYTES (1024u * 1024u)
/* Metrics HTTP server: request head size and per-connection deadline. */
#define CF_METRICS_MAX_REQUEST_BYTES 8192u
#define CF_METRICS_IO_TIMEOUT_MS     2000

#endif
