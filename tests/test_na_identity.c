/* Tests for na_container_identity: container identity from runtime handoff JSON. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "na_identity.h"

static const char containerd_state[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"fds\":[\"seccompFd\"],\"pid\":4242,"
    "\"metadata\":\"codeframe-guard/worker/v1\",\"state\":{\"ociVersion\":\"1.0.2-dev\","
    "\"id\":\"3f0c1d2e4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0\","
    "\"status\":\"creating\",\"pid\":4242,\"bundle\":\"/run/containerd/io.containerd.runtime."
    "v2.task/k8s.io/3f0c1d2e\",\"annotations\":{"
    "\"io.kubernetes.cri.container-name\":\"runner\","
    "\"io.kubernetes.cri.container-type\":\"container\","
    "\"io.kubernetes.cri.image-name\":\"docker.io/library/python:3.12\","
    "\"io.kubernetes.cri.sandbox-id\":\"9a8b7c6d\","
    "\"io.kubernetes.cri.sandbox-name\":\"worker-7f9c\","
    "\"io.kubernetes.cri.sandbox-namespace\":\"team-a\","
    "\"io.kubernetes.cri.sandbox-uid\":\"1f1b2c3d-4e5f-6789-abcd-ef0123456789\"}}}";

static const char crio_state[] =
    "{\"ociVersion\":\"1.1.0\",\"fds\":[\"seccompFd\"],\"pid\":777,\"metadata\":\"\","
    "\"state\":{\"ociVersion\":\"1.1.0\",\"id\":\"c0ffee\",\"status\":\"created\","
    "\"pid\":777,\"bundle\":\"/run/containers/storage/overlay-containers/c0ffee/userdata\","
    "\"annotations\":{\"io.container.manager\":\"cri-o\","
    "\"io.kubernetes.container.name\":\"runner\","
    "\"io.kubernetes.cri-o.ContainerType\":\"container\","
    "\"io.kubernetes.pod.name\":\"worker-1\",\"io.kubernetes.pod.namespace\":\"team-b\","
    "\"io.kubernetes.pod.uid\":\"abcd-1234\","
    "\"io.kubernetes.cri-o.Annotations\":\"{\\\"codeframe.io/project-id\\\":\\\"p-42\\\","
    "\\\"codeframe.io/user-id\\\":\\\"u-7\\\"}\"}}}";

static int parse(const char *json, na_container_identity *id, char *err, size_t errlen)
{
	return na_identity_parse(json, strlen(json), id, err, errlen);
}

Test(na_container_identity, containerd_annotations)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(containerd_state, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(id.runtime, NA_RUNTIME_CONTAINERD);
	cr_assert_str_eq(id.namespace_, "team-a");
	cr_assert_str_eq(id.pod, "worker-7f9c");
	cr_assert_str_eq(id.container, "runner");
	cr_assert_str_eq(id.pod_uid, "1f1b2c3d-4e5f-6789-abcd-ef0123456789");
	cr_assert_str_eq(id.container_type, "container");
	cr_assert_str_eq(id.status, "creating");
	cr_assert_str_eq(id.metadata, "codeframe-guard/worker/v1");
	cr_assert_eq(id.pid, 4242);
	cr_assert_eq(id.init_pid, 4242);
	cr_assert_eq(id.is_exec, 0);
	cr_assert_eq(id.seccomp_fd_index, 0);
	cr_assert_str_eq(id.project_id, "");
	cr_assert_eq(id.project_from_annotations, 0);
	cr_assert_str_eq(na_runtime_kind_name(id.runtime), "containerd");
}

Test(na_container_identity, crio_annotations_with_pod_annotations)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(crio_state, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(id.runtime, NA_RUNTIME_CRIO);
	cr_assert_str_eq(id.namespace_, "team-b");
	cr_assert_str_eq(id.pod, "worker-1");
	cr_assert_str_eq(id.container, "runner");
	cr_assert_str_eq(id.pod_uid, "abcd-1234");
	cr_assert_str_eq(id.project_id, "p-42");
	cr_assert_str_eq(id.user_id, "u-7");
	cr_assert_eq(id.project_from_annotations, 1);
	cr_assert_str_eq(na_runtime_kind_name(id.runtime), "cri-o");
}

Test(na_container_identity, direct_project_annotations_win)
{
	const char *j = "{\"fds\":[\"seccompFd\"],\"pid\":5,\"state\":{\"id\":\"x\",\"pid\":5,"
	                "\"annotations\":{\"codeframe.io/project-id\":\"direct\","
	                "\"io.kubernetes.cri-o.Annotations\":\"{\\\"codeframe.io/project-id\\\":"
	                "\\\"inner\\\",\\\"codeframe.io/user-id\\\":\\\"u1\\\"}\"}}}";
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(j, &id, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(id.project_id, "direct");
	cr_assert_str_eq(id.user_id, "u1");
}

Test(na_container_identity, runc_exec_session)
{
	/* runc exec: the top-level pid is the new process, state.pid the init. */
	const char *j = "{\"ociVersion\":\"1.0.2-dev\",\"fds\":[\"seccompFd\"],\"pid\":9001,"
	                "\"metadata\":\"codeframe-guard/worker/v1\",\"state\":{\"ociVersion\":"
	                "\"1.0.2-dev\",\"id\":\"cf-test\",\"status\":\"running\",\"pid\":8000,"
	                "\"bundle\":\"/tmp/b\"}}";
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(j, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(id.is_exec, 1);
	cr_assert_eq(id.pid, 9001);
	cr_assert_eq(id.init_pid, 8000);
	cr_assert_eq(id.runtime, NA_RUNTIME_NONE);
	/* Without Kubernetes names the container is named by its runtime id. */
	cr_assert_str_eq(id.container, "cf-test");
	cr_assert_str_eq(id.namespace_, "");
}

Test(na_container_identity, fds_order_and_missing_fds)
{
	const char *j = "{\"fds\":[\"other\",\"seccompFd\"],\"pid\":3,"
	                "\"state\":{\"id\":\"a\",\"pid\":3}}";
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(j, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(id.seccomp_fd_index, 1);
	const char *k = "{\"state\":{\"id\":\"a\",\"pid\":3}}";
	cr_assert_eq(parse(k, &id, err, sizeof err), 0, "%s", err);
	cr_assert_eq(id.seccomp_fd_index, -1);
	cr_assert_eq(id.pid, 3);
	cr_assert_eq(id.is_exec, 0);
}

Test(na_container_identity, environ_fills_missing_ids)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(containerd_state, &id, err, sizeof err), 0);
	static const char env[] = "PATH=/bin\0CODEFRAME_PROJECT_ID=proj-1\0"
	                          "CODEFRAME_USER_IDX=no\0CODEFRAME_USER_ID=user-9\0HOME=/";
	na_identity_apply_environ(&id, env, sizeof env - 1);
	cr_assert_str_eq(id.project_id, "proj-1");
	cr_assert_str_eq(id.user_id, "user-9");
}

Test(na_container_identity, environ_does_not_override_annotations)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse(crio_state, &id, err, sizeof err), 0);
	static const char env[] = "CODEFRAME_PROJECT_ID=other\0CODEFRAME_USER_ID=other";
	na_identity_apply_environ(&id, env, sizeof env);
	cr_assert_str_eq(id.project_id, "p-42");
	cr_assert_str_eq(id.user_id, "u-7");
}

/* Negative cases. */

Test(na_container_identity, environ_hostile)
{
	na_container_identity id;
	memset(&id, 0, sizeof id);
	/* No terminating NUL, empty names, '=' only, a prefix match. */
	static const char env[] = {'=', '\0', 'C', 'O', 'D', 'E', '\0', 'C', 'O', 'D', 'E', 'F',
	                           'R', 'A',  'M', 'E', '_', 'U', 'S',  'E', 'R', '_', 'I', 'D'};
	na_identity_apply_environ(&id, env, sizeof env);
	cr_assert_str_eq(id.user_id, "");
	na_identity_apply_environ(&id, NULL, 10);
	cr_assert_str_eq(id.project_id, "");
	/* A value too long to hold is left empty, never truncated. */
	size_t n = CF_IDENTITY_MAX_FIELD + 40;
	char *big = malloc(n);
	memcpy(big, "CODEFRAME_PROJECT_ID=", 21);
	memset(big + 21, 'p', n - 21);
	na_identity_apply_environ(&id, big, n);
	cr_assert_str_eq(id.project_id, "");
	free(big);
}

Test(na_container_identity, not_json)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse("{\"state\":", &id, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "JSON"));
	cr_assert_eq(parse("[1,2]", &id, err, sizeof err), -EINVAL);
	cr_assert_eq(na_identity_parse(NULL, 0, &id, err, sizeof err), -EINVAL);
	cr_assert_eq(na_identity_parse("", 0, &id, err, sizeof err), -EINVAL);
	/* Trailing data after a valid handoff, including after a NUL. */
	static const char two[] = "{\"state\":{\"id\":\"a\",\"pid\":3}}\0{}";
	cr_assert_eq(na_identity_parse(two, sizeof two - 1, &id, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "trailing"), "%s", err);
	static const char nl[] = "{\"state\":{\"id\":\"a\",\"pid\":3}}\n";
	cr_assert_eq(na_identity_parse(nl, sizeof nl - 1, &id, err, sizeof err), 0, "%s", err);
}

Test(na_container_identity, missing_state)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse("{\"pid\":1}", &id, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "state"));
	cr_assert_eq(parse("{\"state\":\"x\"}", &id, err, sizeof err), -EINVAL);
}

Test(na_container_identity, bad_id)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse("{\"state\":{\"pid\":1}}", &id, err, sizeof err), -EINVAL);
	cr_assert_eq(parse("{\"state\":{\"id\":\"\",\"pid\":1}}", &id, err, sizeof err), -EINVAL);
	cr_assert_eq(parse("{\"state\":{\"id\":7,\"pid\":1}}", &id, err, sizeof err), -EINVAL);
	cr_assert_not_null(strstr(err, "state.id"));
}

Test(na_container_identity, bad_pids)
{
	static const char *const bad[] = {
	    "{\"state\":{\"id\":\"a\"}}",
	    "{\"state\":{\"id\":\"a\",\"pid\":0}}",
	    "{\"state\":{\"id\":\"a\",\"pid\":-5}}",
	    "{\"state\":{\"id\":\"a\",\"pid\":1.5}}",
	    "{\"state\":{\"id\":\"a\",\"pid\":\"12\"}}",
	    "{\"state\":{\"id\":\"a\",\"pid\":1e300}}",
	    "{\"pid\":\"x\",\"state\":{\"id\":\"a\",\"pid\":3}}",
	    "{\"pid\":0,\"state\":{\"id\":\"a\",\"pid\":3}}",
	};
	na_container_identity id;
	char err[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		cr_assert_eq(parse(bad[i], &id, err, sizeof err), -EINVAL, "%s", bad[i]);
		cr_assert_not_null(strstr(err, "pid"), "%s: %s", bad[i], err);
		cr_assert_eq(id.pid, 0);
	}
}

Test(na_container_identity, bad_fds)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(parse("{\"fds\":\"seccompFd\",\"state\":{\"id\":\"a\",\"pid\":3}}", &id, err,
	                   sizeof err),
	             -EINVAL);
	cr_assert_eq(parse("{\"fds\":[],\"state\":{\"id\":\"a\",\"pid\":3}}", &id, err, sizeof err),
	             -EINVAL);
	cr_assert_eq(
	    parse("{\"fds\":[1],\"state\":{\"id\":\"a\",\"pid\":3}}", &id, err, sizeof err),
	    -EINVAL);
}

Test(na_container_identity, bad_annotations)
{
	na_container_identity id;
	char err[256] = "";
	cr_assert_eq(
	    parse("{\"state\":{\"id\":\"a\",\"pid\":3,\"annotations\":[]}}", &id, err, sizeof err),
	    -EINVAL);
	cr_assert_eq(parse("{\"state\":{\"id\":\"a\",\"pid\":3,\"annotations\":{\"k\":1}}}", &id,
	                   err, sizeof err),
	             -EINVAL);
	cr_assert_eq(parse("{\"state\":{\"id\":\"a\",\"pid\":3,\"annotations\":{"
	                   "\"io.kubernetes.cri-o.Annotations\":\"not json\"}}}",
	                   &id, err, sizeof err),
	             -EINVAL);
	cr_assert_eq(
	    parse("{\"metadata\":5,\"state\":{\"id\":\"a\",\"pid\":3}}", &id, err, sizeof err),
	    -EINVAL);
}

Test(na_container_identity, overlong_fields)
{
	na_container_identity id;
	char err[256] = "";
	size_t n = CF_IDENTITY_MAX_FIELD + 10;
	char *name = malloc(n + 1);
	memset(name, 'n', n);
	name[n] = '\0';
	char *j = malloc(n + 256);
	snprintf(j, n + 256,
	         "{\"state\":{\"id\":\"a\",\"pid\":3,\"annotations\":{"
	         "\"io.kubernetes.cri.sandbox-namespace\":\"%s\"}}}",
	         name);
	cr_assert_eq(parse(j, &id, err, sizeof err), -E2BIG);
	cr_assert_not_null(strstr(err, "sandbox-namespace"), "%s", err);
	snprintf(j, n + 256, "{\"state\":{\"id\":\"%s\",\"pid\":3}}", name);
	cr_assert_eq(parse(j, &id, err, sizeof err), -E2BIG);
	free(j);
	free(name);
}

Test(na_container_identity, oversized_handoff)
{
	na_container_identity id;
	char err[256] = "";
	size_t n = CF_HANDOFF_MAX_BYTES + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	cr_assert_eq(na_identity_parse(big, n, &id, err, sizeof err), -E2BIG);
	free(big);
}
