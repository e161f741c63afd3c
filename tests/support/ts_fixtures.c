/* ts_fixtures.c - see ts_fixtures.h. */
#include "ts_fixtures.h"

const char ts_worker_spec[] =
    "{\"automountServiceAccountToken\":false,"
    "\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":10001,"
    "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
    "\"containers\":[{\"name\":\"runner\",\"image\":\"ghcr.io/x/worker:1\","
    "\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}},"
    "\"securityContext\":{\"allowPrivilegeEscalation\":false,"
    "\"readOnlyRootFilesystem\":true,\"capabilities\":{\"drop\":[\"ALL\"]}}}]}";

const char ts_violating_spec[] = "{\"containers\":[{\"name\":\"runner\",\"image\":\"busybox\"}]}";

const char ts_worker_labels[] = "{\"codeframe.io/role\":\"worker\"}";
