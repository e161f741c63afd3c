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
#define CF_YAML_MAX_DEPTH 128
#define CF_YAML_MAX_NODES 1000000u
#define CF_YAML_MAX_ANCHORS 4096u
#define CF_YAML_MAX_SCALAR_BYTES (4u * 1024u * 1024u)
#define CF_YAML_MAX_DOCUMENTS 10000u

/* Admission: body size the webhook accepts (the API server caps objects at
 * 3 MiB in etcd; a review carries object + oldObject). */
#define CF_MAX_ADMISSION_BODY_BYTES (3u * 1024u * 1024u)
/* A chunked /validate body past the limit is read and discarded so the
 * client still gets its 413; past this many bytes the connection is cut. */
#define CF_MAX_HTTP_DISCARD_BYTES (4u * CF_MAX_ADMISSION_BODY_BYTES)

/* Warnings returned to kubectl: each and all together (API server limits). */
#define CF_MAX_WARNING_CHARS 120u
#define CF_MAX_WARNINGS_TOTAL_BYTES 4096u

/* Log lines: a single field value is truncated past this. */
#define CF_LOG_MAX_FIELD_BYTES 4096u

/* Admission: the request uid is echoed back, so it is bounded; the deny
 * message and each audit annotation value are bounded so that a pod with
 * thousands of containers cannot produce a megabyte response. */
#define CF_MAX_ADMISSION_UID_BYTES 256u
#define CF_MAX_DENY_MESSAGE_BYTES (16u * 1024u)
#define CF_MAX_AUDIT_ANNOTATION_BYTES (8u * 1024u)

/* TLS certificate and key files, and certificates in one chain. */
#define CF_MAX_TLS_FILE_BYTES (1024u * 1024u)
#define CF_MAX_TLS_CHAIN_CERTS 16u

/* Metrics: label sets per family (label values can come from requests),
 * histogram buckets, and a label value's length (longer ones are cut). */
#define CF_METRICS_MAX_SERIES 1024u
#define CF_METRICS_MAX_BUCKETS 64u
#define CF_METRICS_MAX_LABEL_VALUE_BYTES 256u

/* Policy engine (webhook/wh_quantity, wh_policy): a resource quantity's text
 * (the API server's own grammar has no limit, but no real quantity is near
 * this), and the exponent range a quantity may use before it is -ERANGE. */
#define CF_QUANTITY_MAX_CHARS 128u
#define CF_QUANTITY_MAX_EXPONENT 64

#endif
