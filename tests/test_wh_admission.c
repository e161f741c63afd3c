/* Tests for webhook/wh_admission: AdmissionReview validation, which
 * requests are evaluated, and the response in each mode. Uses the real
 * policy engine and config parser; NetworkPolicies are built in-process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_limits.h"
#include "support/ts_fixtures.h"
#include "wh_admission.h"
#include "wh_config.h"
#include "wh_netpol.h"

static char err[512];

static cJSON *parse_json(const char *s)
{
	cJSON *j = cJSON_Parse(s);
	cr_assert_not_null(j, "fixture JSON: %s", s);
	return j;
}

static cJSON *pod(const char *spec, const char *image_override)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "apiVersion", "v1");
	cJSON_AddStringToObject(p, "kind", "Pod");
	cJSON *md = cJSON_AddObjectToObject(p, "metadata");
	cJSON_AddStringToObject(md, "generateName", "worker-");
	cJSON_AddStringToObject(md, "namespace", "workers");
	cJSON_AddItemToObject(md, "labels", parse_json(ts_worker_labels));
	cJSON *s = parse_json(spec);
	if (image_override) {
		cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "containers"), 0);
		cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString(image_override));
	}
	cJSON_AddItemToObject(p, "spec", s);
	return p;
}

/* A controller of `kind` wrapping a pod spec in its template. */
static cJSON *controller(const char *kind, const char *spec, int replicas)
{
	const char *api = "apps/v1";
	if (!strcmp(kind, "Job") || !strcmp(kind, "CronJob"))
		api = "batch/v1";
	if (!strcmp(kind, "ReplicationController") || !strcmp(kind, "PodTemplate"))
		api = "v1";
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", api);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", "ctl");
	cJSON_AddStringToObject(md, "namespace", "workers");
	cJSON *tmpl = cJSON_CreateObject();
	cJSON *tmd = cJSON_AddObjectToObject(tmpl, "metadata");
	cJSON_AddItemToObject(tmd, "labels", parse_json(ts_worker_labels));
	cJSON_AddItemToObject(tmpl, "spec", parse_json(spec));
	if (!strcmp(kind, "PodTemplate")) {
		cJSON_AddItemToObject(o, "template", tmpl);
		return o;
	}
	cJSON *s = cJSON_AddObjectToObject(o, "spec");
	if (!strcmp(kind, "CronJob")) {
		cJSON_AddStringToObject(s, "schedule", "*/5 * * * *");
		cJSON *jt = cJSON_AddObjectToObject(s, "jobTemplate");
		cJSON *js = cJSON_AddObjectToObject(jt, "spec");
		cJSON_AddItemToObject(js, "template", tmpl);
		return o;
	}
	if (strcmp(kind, "Job") != 0 && strcmp(kind, "DaemonSet") != 0)
		cJSON_AddNumberToObject(s, "replicas", replicas);
	cJSON_AddItemToObject(s, "template", tmpl);
	return o;
}

static const char *group_of(const char *kind)
{
	if (!strcmp(kind, "Job") || !strcmp(kind, "CronJob"))
		return "batch";
	if (!strcmp(kind, "Pod") || !strcmp(kind, "ReplicationController") ||
	    !strcmp(kind, "PodTemplate") || !strcmp(kind, "ConfigMap"))
		return "";
	return "apps";
}

typedef struct rv {
	const char *op, *kind, *group, *resource, *sub, *user;
	bool dry_run;
	cJSON *object, *old; /* taken over */
} rv;

static char *review(rv r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "apiVersion", "admission.k8s.io/v1");
	cJSON_AddStringToObject(root, "kind", "AdmissionReview");
	cJSON *q = cJSON_AddObjectToObject(root, "request");
	cJSON_AddStringToObject(q, "uid", "705ab4f5-6393-11e8-b7cc-42010a800002");
	cJSON *k = cJSON_AddObjectToObject(q, "kind");
	cJSON_AddStringToObject(k, "group", r.group ? r.group : group_of(r.kind));
	cJSON_AddStringToObject(k, "version", "v1");
	cJSON_AddStringToObject(k, "kind", r.kind);
	cJSON *res = cJSON_AddObjectToObject(q, "resource");
	cJSON_AddStringToObject(res, "resource", r.resource ? r.resource : "pods");
	if (r.sub)
		cJSON_AddStringToObject(q, "subResource", r.sub);
	cJSON_AddStringToObject(q, "namespace", "workers");
	cJSON_AddStringToObject(q, "operation", r.op);
	cJSON *ui = cJSON_AddObjectToObject(q, "userInfo");
	cJSON_AddStringToObject(ui, "username", r.user ? r.user : "system:serviceaccount:ci:bot");
	if (r.object)
		cJSON_AddItemToObject(q, "object", r.object);
	if (r.old)
		cJSON_AddItemToObject(q, "oldObject", r.old);
	cJSON_AddBoolToObject(q, "dryRun", r.dry_run);
	char *s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}

static wh_netpol_set *policies(void)
{
	wh_netpol_set *set = wh_netpol_set_new();
	const char *np[] = {
	    "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":"
	    "{\"name\":\"deny-in\",\"namespace\":\"workers\"},\"spec\":{\"podSelector\":{"
	    "\"matchLabels\":{\"codeframe.io/role\":\"worker\"}},\"policyTypes\":[\"Ingress\"]}}",
	    "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":"
	    "{\"name\":\"dns-out\",\"namespace\":\"workers\"},\"spec\":{\"podSelector\":{"
	    "\"matchLabels\":{\"codeframe.io/role\":\"worker\"}},\"policyTypes\":[\"Egress\"],"
	    "\"egress\":[{\"ports\":[{\"protocol\":\"UDP\",\"port\":53}]}]}}",
	};
	for (size_t i = 0; i < 2; i++) {
		cJSON *j = parse_json(np[i]);
		cr_assert_eq(wh_netpol_set_add(set, j, err, sizeof err), 0, "%s", err);
		cJSON_Delete(j);
	}
	return set;
}

static wh_config *config_yaml(const char *yaml)
{
	wh_config *c = wh_config_parse(yaml, strlen(yaml), "test.yaml", err, sizeof err);
	cr_assert_not_null(c, "config: %s", err);
	return c;
}

/* Parses, decides and renders; returns the response JSON (caller frees). */
static cJSON *run(wh_config *cfg, char *body, wh_decision *decision)
{
	wh_admission_request req;
	wh_admission_decision d;
	wh_netpol_set *np = policies();
	cr_assert_eq(wh_admission_parse(body, strlen(body), &req, err, sizeof err), 0, "%s", err);
	cr_assert_eq(wh_admission_decide(cfg, &req, np, &d), 0);
	size_t len = 0;
	char *text = wh_admission_response(&req, &d, &len);
	cr_assert_not_null(text);
	cr_assert_eq(len, strlen(text));
	cJSON *resp = cJSON_Parse(text);
	cr_assert_not_null(resp);
	if (decision)
		*decision = d.decision;
	free(text);
	wh_admission_decision_free(&d);
	wh_admission_request_free(&req);
	wh_netpol_set_unref(np);
	free(body);
	return resp;
}

static cJSON *response_of(cJSON *review_json)
{
	cr_assert_str_eq(cJSON_GetObjectItem(review_json, "apiVersion")->valuestring,
	                 "admission.k8s.io/v1");
	cr_assert_str_eq(cJSON_GetObjectItem(review_json, "kind")->valuestring, "AdmissionReview");
	cJSON *r = cJSON_GetObjectItem(review_json, "response");
	cr_assert_str_eq(cJSON_GetObjectItem(r, "uid")->valuestring,
	                 "705ab4f5-6393-11e8-b7cc-42010a800002");
	cr_assert_null(cJSON_GetObjectItem(r, "patch"), "never a patch");
	cr_assert_null(cJSON_GetObjectItem(r, "patchType"), "never a patchType");
	return r;
}

static bool allowed(cJSON *review_json)
{
	return cJSON_IsTrue(cJSON_GetObjectItem(response_of(review_json), "allowed"));
}

static wh_decision decide_default(char *body)
{
	wh_config *cfg = wh_config_new_default();
	wh_decision d;
	cJSON *r = run(cfg, body, &d);
	cJSON_Delete(r);
	wh_config_unref(cfg);
	return d;
}

/* ---- parsing: rejected inputs ---- */

static int parse_str(const char *s)
{
	wh_admission_request req;
	err[0] = '\0';
	int rc = wh_admission_parse(s, strlen(s), &req, err, sizeof err);
	if (rc == 0)
		wh_admission_request_free(&req);
	return rc;
}

Test(admission_parse, rejects_non_json)
{
	cr_assert_eq(parse_str("hello"), -EINVAL);
	cr_assert(strstr(err, "not JSON"), "%s", err);
}

Test(admission_parse, rejects_empty_body)
{
	cr_assert_eq(parse_str(""), -EINVAL);
	cr_assert(strstr(err, "empty"), "%s", err);
}

Test(admission_parse, rejects_trailing_garbage)
{
	cr_assert_eq(parse_str("{\"apiVersion\":\"admission.k8s.io/v1\"} x"), -EINVAL);
	cr_assert(strstr(err, "trailing"), "%s", err);
}

Test(admission_parse, rejects_embedded_nul)
{
	wh_admission_request req;
	const char body[] = "{\"a\":1}\0{\"b\":2}";
	cr_assert_eq(wh_admission_parse(body, sizeof body - 1, &req, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "NUL"), "%s", err);
}

Test(admission_parse, rejects_non_object)
{
	cr_assert_eq(parse_str("[1,2,3]"), -EINVAL);
	cr_assert(strstr(err, "not a JSON object"), "%s", err);
}

Test(admission_parse, rejects_wrong_api_version)
{
	cr_assert_eq(parse_str("{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":"
	                       "\"AdmissionReview\",\"request\":{\"uid\":\"u\"}}"),
	             -EINVAL);
	cr_assert(strstr(err, "apiVersion") && strstr(err, "v1beta1"), "%s", err);
}

Test(admission_parse, rejects_missing_api_version)
{
	cr_assert_eq(parse_str("{\"kind\":\"AdmissionReview\"}"), -EINVAL);
	cr_assert(strstr(err, "apiVersion"), "%s", err);
}

Test(admission_parse, rejects_wrong_kind)
{
	cr_assert_eq(parse_str("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}"),
	             -EINVAL);
	cr_assert(strstr(err, "kind must be"), "%s", err);
}

Test(admission_parse, rejects_missing_request)
{
	cr_assert_eq(parse_str("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
	                       "\"AdmissionReview\"}"),
	             -EINVAL);
	cr_assert(strstr(err, "request"), "%s", err);
}

static const char *HEAD = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                          "\"request\":";

static int parse_request(const char *request)
{
	char buf[2048];
	snprintf(buf, sizeof buf, "%s%s}", HEAD, request);
	return parse_str(buf);
}

Test(admission_parse, rejects_missing_uid)
{
	cr_assert_eq(parse_request("{\"operation\":\"CREATE\",\"kind\":{\"kind\":\"Pod\"}}"),
	             -EINVAL);
	cr_assert(strstr(err, "request.uid is missing"), "%s", err);
}

Test(admission_parse, rejects_non_string_and_empty_uid)
{
	cr_assert_eq(
	    parse_request("{\"uid\":7,\"operation\":\"CREATE\",\"kind\":{\"kind\":\"Pod\"}}"),
	    -EINVAL);
	cr_assert(strstr(err, "request.uid must be a string"), "%s", err);
	cr_assert_eq(parse_request("{\"uid\":\"\",\"operation\":\"CREATE\",\"kind\":{\"kind\":"
	                           "\"Pod\"}}"),
	             -EINVAL);
	cr_assert(strstr(err, "request.uid is empty"), "%s", err);
}

Test(admission_parse, rejects_oversized_or_unprintable_uid)
{
	char uid[CF_MAX_ADMISSION_UID_BYTES + 2];
	memset(uid, 'a', sizeof uid - 1);
	uid[sizeof uid - 1] = '\0';
	char req[1024];
	snprintf(req, sizeof req,
	         "{\"uid\":\"%s\",\"operation\":\"CREATE\",\"kind\":{\"kind\":"
	         "\"Pod\"}}",
	         uid);
	cr_assert_eq(parse_request(req), -EINVAL);
	cr_assert(strstr(err, "longer"), "%s", err);
	cr_assert_eq(parse_request("{\"uid\":\"a\\nb\",\"operation\":\"CREATE\",\"kind\":{\"kind\":"
	                           "\"Pod\"}}"),
	             -EINVAL);
	cr_assert(strstr(err, "non-printable"), "%s", err);
}

Test(admission_parse, rejects_missing_operation_or_kind)
{
	cr_assert_eq(parse_request("{\"uid\":\"u\",\"kind\":{\"kind\":\"Pod\"}}"), -EINVAL);
	cr_assert(strstr(err, "request.operation"), "%s", err);
	cr_assert_eq(parse_request("{\"uid\":\"u\",\"operation\":\"CREATE\"}"), -EINVAL);
	cr_assert(strstr(err, "request.kind"), "%s", err);
	cr_assert_eq(parse_request("{\"uid\":\"u\",\"operation\":\"CREATE\",\"kind\":{}}"),
	             -EINVAL);
	cr_assert(strstr(err, "request.kind.kind"), "%s", err);
}

/* ---- parsing: accepted inputs ---- */

Test(admission_parse, reads_fields_and_falls_back_to_generate_name)
{
	char *body = review((rv){
	    .op = "CREATE", .kind = "Pod", .dry_run = true, .object = pod(ts_worker_spec, NULL)});
	wh_admission_request req;
	cr_assert_eq(wh_admission_parse(body, strlen(body), &req, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(req.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
	cr_assert_str_eq(req.kind, "Pod");
	cr_assert_str_eq(req.operation, "CREATE");
	cr_assert_str_eq(req.namespace_, "workers");
	cr_assert_str_eq(req.name, "worker-");
	cr_assert_str_eq(req.username, "system:serviceaccount:ci:bot");
	cr_assert(req.dry_run);
	cr_assert_not_null(req.object);
	cr_assert_null(req.old_object);
	wh_admission_request_free(&req);
	free(body);
}

Test(admission_parse, accepts_whitespace_around_the_document)
{
	char *body = review((rv){.op = "DELETE", .kind = "Pod"});
	size_t n = strlen(body);
	char *padded = malloc(n + 8);
	snprintf(padded, n + 8, "\n %s \r\n", body);
	wh_admission_request req;
	cr_assert_eq(wh_admission_parse(padded, strlen(padded), &req, err, sizeof err), 0, "%s",
	             err);
	wh_admission_request_free(&req);
	free(padded);
	free(body);
}

/* ---- what is evaluated ---- */

Test(admission_decide, compliant_worker_pod_is_allowed)
{
	wh_config *cfg = wh_config_new_default();
	wh_decision d;
	cJSON *r = run(
	    cfg, review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_worker_spec, NULL)}),
	    &d);
	cr_assert_eq(d, WH_DECISION_ALLOW, "got %s", wh_decision_name(d));
	cr_assert(allowed(r));
	cr_assert_null(cJSON_GetObjectItem(response_of(r), "status"));
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

Test(admission_decide, noncompliant_pod_is_denied_with_every_violation)
{
	wh_config *cfg = wh_config_new_default();
	wh_decision d;
	cJSON *r =
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d);
	cr_assert_eq(d, WH_DECISION_DENY);
	cr_assert_not(allowed(r));
	cJSON *st = cJSON_GetObjectItem(response_of(r), "status");
	cr_assert_eq(cJSON_GetObjectItem(st, "code")->valueint, 403);
	const char *msg = cJSON_GetObjectItem(st, "message")->valuestring;
	cr_assert(strstr(msg, "[readOnlyRootFilesystem]"), "%s", msg);
	cr_assert(strstr(msg, "[resourceLimits]"), "%s", msg);
	cr_assert(strstr(msg, "[runAsNonRoot]"), "%s", msg);
	cr_assert(strstr(msg, "Pod workers/worker-"), "%s", msg);
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

Test(admission_decide, every_controller_kind_is_evaluated_through_its_template)
{
	const char *kinds[] = {"Deployment", "ReplicaSet", "StatefulSet",           "DaemonSet",
	                       "Job",        "CronJob",    "ReplicationController", "PodTemplate"};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		wh_decision bad = decide_default(
		    review((rv){.op = "CREATE",
		                .kind = kinds[i],
		                .resource = "x",
		                .object = controller(kinds[i], ts_violating_spec, 1)}));
		cr_assert_eq(bad, WH_DECISION_DENY, "%s with a bad template", kinds[i]);
		wh_decision good =
		    decide_default(review((rv){.op = "CREATE",
		                               .kind = kinds[i],
		                               .resource = "x",
		                               .object = controller(kinds[i], ts_worker_spec, 1)}));
		cr_assert_eq(good, WH_DECISION_ALLOW, "%s with a good template: %s", kinds[i],
		             wh_decision_name(good));
	}
}

Test(admission_decide, delete_and_connect_are_not_evaluated)
{
	cr_assert_eq(decide_default(review(
	                 (rv){.op = "DELETE", .kind = "Pod", .old = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_SKIP);
	cr_assert_eq(
	    decide_default(review((rv){.op = "CONNECT",
	                               .kind = "Pod",
	                               .sub = "exec",
	                               .object = cJSON_Parse("{\"kind\":\"PodExecOptions\"}")})),
	    WH_DECISION_SKIP);
}

Test(admission_decide, pod_update_without_container_change_is_not_evaluated)
{
	cJSON *old = pod(ts_violating_spec, NULL), *now = pod(ts_violating_spec, NULL);
	cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(now, "metadata"), "labels"),
	                        "extra", "label");
	cr_assert_eq(
	    decide_default(review((rv){.op = "UPDATE", .kind = "Pod", .object = now, .old = old})),
	    WH_DECISION_SKIP);
}

Test(admission_decide, pod_update_changing_an_image_is_evaluated)
{
	cr_assert_eq(decide_default(review((rv){.op = "UPDATE",
	                                        .kind = "Pod",
	                                        .object = pod(ts_violating_spec, "busybox:2"),
	                                        .old = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_DENY);
}

Test(admission_decide, ephemeral_containers_and_resize_subresources_are_evaluated)
{
	cr_assert_eq(decide_default(review((rv){.op = "UPDATE",
	                                        .kind = "Pod",
	                                        .sub = "ephemeralcontainers",
	                                        .object = pod(ts_violating_spec, NULL),
	                                        .old = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_DENY);
	cr_assert_eq(decide_default(review((rv){.op = "UPDATE",
	                                        .kind = "Pod",
	                                        .sub = "resize",
	                                        .object = pod(ts_violating_spec, NULL),
	                                        .old = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_DENY);
}

Test(admission_decide, other_subresources_are_not_evaluated)
{
	cr_assert_eq(decide_default(review((rv){.op = "UPDATE",
	                                        .kind = "Pod",
	                                        .sub = "status",
	                                        .object = pod(ts_violating_spec, "x:2"),
	                                        .old = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_SKIP);
	cr_assert_eq(decide_default(review((rv){.op = "CREATE",
	                                        .kind = "Pod",
	                                        .sub = "binding",
	                                        .object = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_SKIP);
}

Test(admission_decide, controller_scale_update_is_not_evaluated)
{
	/* An old ReplicaSet with a bad template must still scale down. */
	cr_assert_eq(
	    decide_default(review((rv){.op = "UPDATE",
	                               .kind = "ReplicaSet",
	                               .resource = "replicasets",
	                               .object = controller("ReplicaSet", ts_violating_spec, 0),
	                               .old = controller("ReplicaSet", ts_violating_spec, 3)})),
	    WH_DECISION_SKIP);
}

Test(admission_decide, controller_template_update_is_evaluated)
{
	cr_assert_eq(
	    decide_default(review((rv){.op = "UPDATE",
	                               .kind = "Deployment",
	                               .resource = "deployments",
	                               .object = controller("Deployment", ts_violating_spec, 1),
	                               .old = controller("Deployment", ts_worker_spec, 1)})),
	    WH_DECISION_DENY);
}

Test(admission_decide, other_kinds_and_groups_are_not_evaluated)
{
	cr_assert_eq(
	    decide_default(review((rv){.op = "CREATE",
	                               .kind = "ConfigMap",
	                               .resource = "configmaps",
	                               .object = cJSON_Parse("{\"kind\":\"ConfigMap\"}")})),
	    WH_DECISION_SKIP);
	cr_assert_eq(
	    decide_default(review((rv){.op = "CREATE",
	                               .kind = "Deployment",
	                               .group = "example.com",
	                               .resource = "deployments",
	                               .object = controller("Deployment", ts_violating_spec, 1)})),
	    WH_DECISION_SKIP);
}

Test(admission_decide, dry_run_is_evaluated_the_same)
{
	cr_assert_eq(decide_default(review((rv){.op = "CREATE",
	                                        .kind = "Pod",
	                                        .dry_run = true,
	                                        .object = pod(ts_violating_spec, NULL)})),
	             WH_DECISION_DENY);
}

Test(admission_decide, missing_object_on_create_is_denied_as_invalid)
{
	wh_config *cfg = wh_config_new_default();
	wh_decision d;
	cJSON *r = run(cfg, review((rv){.op = "CREATE", .kind = "Pod"}), &d);
	cr_assert_eq(d, WH_DECISION_DENY);
	const char *msg =
	    cJSON_GetObjectItem(cJSON_GetObjectItem(response_of(r), "status"), "message")
	        ->valuestring;
	cr_assert(strstr(msg, "[invalid]"), "%s", msg);
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

Test(admission_decide, malformed_spec_is_denied_as_invalid)
{
	cJSON *p = pod(ts_worker_spec, NULL);
	cJSON_ReplaceItemInObject(p, "spec", cJSON_CreateString("not an object"));
	cr_assert_eq(decide_default(review((rv){.op = "CREATE", .kind = "Pod", .object = p})),
	             WH_DECISION_DENY);
}

Test(admission_decide, exempt_user_and_namespace_and_unselected_pods_are_skipped)
{
	wh_config *cfg =
	    config_yaml("exemptions:\n  usernames: [\"system:serviceaccount:ci:bot\"]\n");
	wh_decision d;
	cJSON_Delete(
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d));
	cr_assert_eq(d, WH_DECISION_SKIP);
	wh_config_unref(cfg);

	cfg = config_yaml("exemptions:\n  namespaces: [workers]\n");
	cJSON_Delete(
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d));
	cr_assert_eq(d, WH_DECISION_SKIP);
	wh_config_unref(cfg);

	cfg = config_yaml("workers:\n  selector:\n    matchLabels: {team: build}\n");
	cJSON_Delete(
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d));
	cr_assert_eq(d, WH_DECISION_SKIP);
	wh_config_unref(cfg);
}

Test(admission_decide, selected_namespace_is_evaluated)
{
	wh_config *cfg = config_yaml("workers:\n  namespaces: [workers]\n");
	wh_decision d;
	cJSON_Delete(
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d));
	cr_assert_eq(d, WH_DECISION_DENY);
	wh_config_unref(cfg);
}

Test(admission_decide, unsynced_network_policies_deny_a_worker)
{
	wh_config *cfg = wh_config_new_default();
	char *body =
	    review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_worker_spec, NULL)});
	wh_admission_request req;
	wh_admission_decision d;
	cr_assert_eq(wh_admission_parse(body, strlen(body), &req, err, sizeof err), 0);
	cr_assert_eq(wh_admission_decide(cfg, &req, NULL, &d), 0);
	cr_assert_eq(d.decision, WH_DECISION_DENY);
	cJSON *ids = wh_admission_check_ids(&d);
	cr_assert_str_eq(cJSON_GetArrayItem(ids, 0)->valuestring, "networkPolicy");
	cJSON_Delete(ids);
	wh_admission_decision_free(&d);
	wh_admission_request_free(&req);
	free(body);
	wh_config_unref(cfg);
}

/* ---- modes ---- */

Test(admission_modes, warn_admits_with_bounded_warnings)
{
	wh_config *cfg = config_yaml("mode: warn\n");
	wh_decision d;
	cJSON *r =
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d);
	cr_assert_eq(d, WH_DECISION_WARN);
	cr_assert(allowed(r));
	cJSON *w = cJSON_GetObjectItem(response_of(r), "warnings");
	cr_assert(cJSON_GetArraySize(w) >= 3);
	size_t total = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, w)
	{
		size_t n = strlen(it->valuestring);
		cr_assert_leq(n, CF_MAX_WARNING_CHARS, "%s", it->valuestring);
		total += n;
	}
	cr_assert_leq(total, CF_MAX_WARNINGS_TOTAL_BYTES);
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

Test(admission_modes, warn_truncates_many_findings_within_4k)
{
	wh_config *cfg = config_yaml("mode: warn\n");
	cJSON *spec = cJSON_CreateObject();
	cJSON *cs = cJSON_AddArrayToObject(spec, "containers");
	for (int i = 0; i < 200; i++) {
		char name[64];
		snprintf(name, sizeof name, "container-with-a-rather-long-name-%03d", i);
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", name);
		cJSON_AddStringToObject(c, "image", "busybox");
		cJSON_AddItemToArray(cs, c);
	}
	char *spec_text = cJSON_PrintUnformatted(spec);
	cJSON_Delete(spec);
	wh_decision d;
	cJSON *r = run(
	    cfg, review((rv){.op = "CREATE", .kind = "Pod", .object = pod(spec_text, NULL)}), &d);
	free(spec_text);
	cJSON *w = cJSON_GetObjectItem(response_of(r), "warnings");
	size_t total = 0;
	const cJSON *it, *last = NULL;
	cJSON_ArrayForEach(it, w)
	{
		cr_assert_leq(strlen(it->valuestring), CF_MAX_WARNING_CHARS);
		total += strlen(it->valuestring);
		last = it;
	}
	cr_assert_leq(total, CF_MAX_WARNINGS_TOTAL_BYTES);
	cr_assert(last && strstr(last->valuestring, "more findings"), "last: %s",
	          last ? last->valuestring : "none");
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

static bool qualified_name_part(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || i == n - 1 || (c != '-' && c != '_' && c != '.')))
			return false;
	}
	return true;
}

Test(admission_modes, audit_admits_with_valid_annotation_keys)
{
	wh_config *cfg = config_yaml("mode: audit\n");
	wh_decision d;
	cJSON *r =
	    run(cfg,
	        review((rv){.op = "CREATE", .kind = "Pod", .object = pod(ts_violating_spec, NULL)}),
	        &d);
	cr_assert_eq(d, WH_DECISION_AUDIT);
	cr_assert(allowed(r));
	cJSON *ann = cJSON_GetObjectItem(response_of(r), "auditAnnotations");
	cr_assert(cJSON_IsObject(ann));
	cr_assert_gt(cJSON_GetArraySize(ann), 0);
	const cJSON *it;
	cJSON_ArrayForEach(it, ann)
	{
		/* The API server prefixes "<webhook name>/": the key itself must
		 * be a bare qualified-name part. */
		cr_assert(qualified_name_part(it->string), "key %s", it->string);
		cr_assert(cJSON_IsString(it));
	}
	cr_assert(
	    strstr(cJSON_GetObjectItem(ann, "checks")->valuestring, "readOnlyRootFilesystem"));
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

Test(admission_modes, skip_response_is_a_bare_allow)
{
	wh_config *cfg = config_yaml("mode: audit\n");
	cJSON *r = run(cfg, review((rv){.op = "DELETE", .kind = "Pod"}), NULL);
	cJSON *resp = response_of(r);
	cr_assert(allowed(r));
	cr_assert_null(cJSON_GetObjectItem(resp, "warnings"));
	cr_assert_null(cJSON_GetObjectItem(resp, "auditAnnotations"));
	cr_assert_null(cJSON_GetObjectItem(resp, "status"));
	cJSON_Delete(r);
	wh_config_unref(cfg);
}

/* An admission with nothing to add is written without a cJSON tree: the
 * bytes must be what the tree would have printed, escapes included. */
Test(admission_modes, plain_admission_is_byte_identical_to_cjson)
{
	static const char *const uids[] = {"3f1c2a9e-0d2b-4b8e-9a41-5c6d7e8f9a01", "q\"u\\o/te",
	                                   "x"};
	for (size_t k = 0; k < 3; k++) {
		for (int decision = WH_DECISION_SKIP; decision <= WH_DECISION_ALLOW; decision++) {
			wh_admission_request req = {.uid = uids[k]};
			wh_admission_decision d = {.decision = (wh_decision)decision};
			size_t len = 0;
			char *got = wh_admission_response(&req, &d, &len);
			cJSON *want_tree = cJSON_CreateObject();
			cJSON_AddStringToObject(want_tree, "apiVersion", "admission.k8s.io/v1");
			cJSON_AddStringToObject(want_tree, "kind", "AdmissionReview");
			cJSON *resp = cJSON_AddObjectToObject(want_tree, "response");
			cJSON_AddStringToObject(resp, "uid", uids[k]);
			cJSON_AddTrueToObject(resp, "allowed");
			char *want = cJSON_PrintUnformatted(want_tree);
			cr_assert_not_null(got);
			cr_assert_str_eq(got, want);
			cr_assert_eq(len, strlen(want));
			free(got);
			cJSON_free(want);
			cJSON_Delete(want_tree);
		}
	}
}

Test(admission_modes, decision_names_are_stable)
{
	cr_assert_str_eq(wh_decision_name(WH_DECISION_SKIP), "skip");
	cr_assert_str_eq(wh_decision_name(WH_DECISION_ALLOW), "allow");
	cr_assert_str_eq(wh_decision_name(WH_DECISION_DENY), "deny");
	cr_assert_str_eq(wh_decision_name(WH_DECISION_WARN), "warn");
	cr_assert_str_eq(wh_decision_name(WH_DECISION_AUDIT), "audit");
	cr_assert_str_eq(wh_decision_name((wh_decision)42), "unknown");
}
