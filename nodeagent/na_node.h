/*
 * na_node.h - node gating: the agent labels its node
 * `codeframe.io/agent-ready=true` once the profile is installed and the
 * runtime socket listens, and removes the label when it shuts down (not
 * when it hands over to a successor, which keeps the node ready), so worker
 * pods can require it with a nodeSelector and never land on a node where
 * nothing would answer their execs.
 *
 * Purpose: one merge PATCH on /api/v1/nodes/NAME through cf_kube
 * ({"metadata":{"labels":{KEY:"true"}}}, and KEY:null to remove), which
 * needs only `patch` on nodes. API access is in-cluster (the pod's service
 * account) or --kubeconfig; the node name is --node-name, config nodeName
 * or $NODE_NAME. Without API access or a node name the label is not
 * managed and na_node_new says why (a local run, not an error).
 *
 * Where it runs: in the policy side (na_run), never in the fd holder, so
 * a fault in the HTTP/TLS stack cannot take the notify fds down with it.
 * A thread sets the label (retrying with capped, jittered backoff until it
 * succeeds or the agent stops); removal is one bounded attempt at exit.
 *
 * Thread-safety: na_node_set_ready and na_node_remove are called from one
 * thread at a time (one cf_kube client). na_node_stop may be called from
 * any thread. Ownership: na_node_free.
 */
#ifndef NA_NODE_H
#define NA_NODE_H

#include <stdbool.h>
#include <stddef.h>

#define NA_NODE_LABEL "codeframe.io/agent-ready"

typedef struct na_node na_node;

/* kubeconfig "" -> in-cluster when in a pod; sa_dir NULL -> the default
 * service account directory. NULL with `why` when the label cannot be
 * managed (no API access, no node name, a broken kubeconfig). */
na_node *na_node_new(const char *kubeconfig, const char *sa_dir, const char *node_name, char *why,
                     size_t whylen);
void na_node_free(na_node *n);
const char *na_node_name(const na_node *n);

/* One PATCH setting (ready) or removing the label. 0 or -errno with err. */
int na_node_patch(na_node *n, bool ready, char *err, size_t errlen);

/* Starts the labelling thread: it sets the label, retrying until it
 * succeeds or na_node_stop. 0 or -errno. */
int na_node_start(na_node *n);
/* Stops the labelling thread (an in-flight request ends at its timeout).
 * Then, when `remove`, one attempt to remove the label. */
void na_node_stop(na_node *n, bool remove);

#endif
