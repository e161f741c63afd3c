/* na_node.c - see na_node.h. */
#include "na_node.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_kube.h"
#include "cf_log.h"

#define COMPONENT "agent"
/* Label requests: short, so shutdown is never held up for long. */
#define NODE_TIMEOUT_MS         5000u
#define NODE_CONNECT_TIMEOUT_MS 3000u
#define RETRY_BASE_MS           500u
#define RETRY_MAX_MS            30000u

struct na_node {
	cf_kube *kube;
	char name[254];
	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static bool valid_node_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

static int aborted(void *ud)
{
	na_node *n = ud;
	return atomic_load(&n->stop);
}

na_node *na_node_new(const char *kubeconfig, const char *sa_dir, const char *node_name, char *why,
                     size_t whylen)
{
	cf_kube_config kc;
	char err[1024] = "";
	bool have_kc = kubeconfig && kubeconfig[0];
	if (!have_kc && !cf_kube_in_cluster_detect(sa_dir)) {
		snprintf(why, whylen,
		         "no Kubernetes API access (not in a pod, no --kubeconfig): the node label "
		         "%s is not managed",
		         NA_NODE_LABEL);
		return NULL;
	}
	if (!node_name || !node_name[0]) {
		snprintf(why, whylen,
		         "no node name (--node-name, nodeName or NODE_NAME): the node label %s is "
		         "not managed",
		         NA_NODE_LABEL);
		return NULL;
	}
	if (!valid_node_name(node_name)) {
		snprintf(why, whylen,
		         "node name \"%.64s\" is not a valid Kubernetes name: the node "
		         "label is not managed",
		         node_name);
		return NULL;
	}
	cf_kube_config_init(&kc);
	int rc = have_kc ? cf_kube_config_kubeconfig(kubeconfig, NULL, &kc, err, sizeof err)
	                 : cf_kube_config_in_cluster(sa_dir, &kc, err, sizeof err);
	if (rc < 0) {
		snprintf(why, whylen,
		         "Kubernetes API configuration: %s; the node label is not managed", err);
		cf_kube_config_free(&kc);
		return NULL;
	}
	kc.timeout_ms = NODE_TIMEOUT_MS;
	kc.connect_timeout_ms = NODE_CONNECT_TIMEOUT_MS;
	na_node *n = calloc(1, sizeof *n);
	if (!n) {
		cf_kube_config_free(&kc);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	n->kube = cf_kube_new(&kc, err, sizeof err);
	cf_kube_config_free(&kc);
	if (!n->kube) {
		snprintf(why, whylen, "Kubernetes API client: %s; the node label is not managed",
		         err);
		free(n);
		return NULL;
	}
	snprintf(n->name, sizeof n->name, "%s", node_name);
	atomic_init(&n->stop, false);
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	cf_kube_set_abort(n->kube, aborted, n);
	return n;
}

const char *na_node_name(const na_node *n)
{
	return n->name;
}

int na_node_patch(na_node *n, bool ready, char *err, size_t errlen)
{
	char path[320], body[128];
	cf_kube_response resp;
	snprintf(path, sizeof path, "/api/v1/nodes/%s", n->name);
	snprintf(body, sizeof body, "{\"metadata\":{\"labels\":{\"%s\":%s}}}", NA_NODE_LABEL,
	         ready ? "\"true\"" : "null");
	cf_kube_response_init(&resp);
	int rc = cf_kube_request(n->kube, "PATCH", path, "application/merge-patch+json", body,
	                         strlen(body), &resp, err, errlen);
	cf_kube_response_free(&resp);
	return rc;
}

static void *label_main(void *arg)
{
	na_node *n = arg;
	uint64_t rng = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	for (unsigned attempt = 0; !atomic_load(&n->stop); attempt++) {
		char err[1024] = "";
		int rc = na_node_patch(n, true, err, sizeof err);
		if (rc == 0) {
			cf_log_msg(CF_LOG_INFO, COMPONENT, "node %s labelled %s=true", n->name,
			           NA_NODE_LABEL);
			break;
		}
		if (atomic_load(&n->stop))
			break;
		uint64_t wait = cf_kube_backoff_ms(attempt < 16 ? attempt : 16, RETRY_BASE_MS,
		                                   RETRY_MAX_MS, &rng);
		cf_log_msg(CF_LOG_ERROR, COMPONENT,
		           "cannot label node %s (retrying in %llu ms): %s", n->name,
		           (unsigned long long)wait, err);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&n->mu);
		while (!atomic_load(&n->stop) &&
		       pthread_cond_timedwait(&n->cv, &n->mu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&n->mu);
	}
	return NULL;
}

int na_node_start(na_node *n)
{
	int rc = pthread_create(&n->thread, NULL, label_main, n);
	if (rc != 0)
		return -rc;
	n->started = true;
	return 0;
}

void na_node_stop(na_node *n, bool remove)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	atomic_store(&n->stop, true);
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	if (n->started) {
		pthread_join(n->thread, NULL);
		n->started = false;
	}
	if (!remove)
		return;
	/* One bounded attempt; the abort flag is cleared for it. */
	atomic_store(&n->stop, false);
	char err[1024] = "";
	if (na_node_patch(n, false, err, sizeof err) == 0)
		cf_log_msg(CF_LOG_INFO, COMPONENT, "node %s: label %s removed", n->name,
		           NA_NODE_LABEL);
	else
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot remove the label %s from node %s: %s",
		           NA_NODE_LABEL, n->name, err);
	atomic_store(&n->stop, true);
}

void na_node_free(na_node *n)
{
	if (!n)
		return;
	na_node_stop(n, false);
	cf_kube_free(n->kube);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}
