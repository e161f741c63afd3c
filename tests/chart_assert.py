#!/usr/bin/env python3
"""Assertions on the rendered codeframe-guard chart (run by tests/test_chart.sh).

Usage: chart_assert.py HELM CHART_DIR CONFIG_SCHEMA OUT_DIR

Renders the chart with every values file in CHART_DIR/ci/ (release "cg-test"
in namespace "cg-system"), writes each rendering to OUT_DIR/<name>.yaml for
the shell test's dogfooding step, and checks it against the values it was
rendered from. Prints one "PASS: name" / "FAIL: name" line per check group.
Exit status 1 when any check failed.
"""
import base64
import copy
import glob
import os
import subprocess
import sys

import yaml

RELEASE, NAMESPACE = "cg-test", "cg-system"
FAILED = 0

NAMESPACED = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "DaemonSet",
              "PodDisruptionBudget", "Role", "RoleBinding", "NetworkPolicy",
              "ResourceQuota", "Issuer", "Certificate", "Secret"}
RECOMMENDED = ["app.kubernetes.io/name", "app.kubernetes.io/instance",
               "app.kubernetes.io/version", "app.kubernetes.io/part-of",
               "app.kubernetes.io/managed-by", "helm.sh/chart"]


class Check(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Check(msg)


def run_check(name, fn, *args):
    global FAILED
    try:
        fn(*args)
        print(f"PASS: {name}")
    except Check as e:
        FAILED += 1
        print(f"FAIL: {name}: {e}")
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:
        FAILED += 1
        print(f"FAIL: {name}: unexpected shape: {type(e).__name__}: {e}")


def merge(base, over):
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and v:
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def find(docs, kind, name=None, namespace=None):
    return [d for d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)]


def one(docs, kind, **kw):
    found = find(docs, kind, **kw)
    need(len(found) == 1, f"want exactly one {kind} {kw or ''}, found {len(found)}")
    return found[0]


def by_component(docs, kind, component):
    found = [d for d in docs if d["kind"] == kind and
             d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]
    need(len(found) == 1, f"want one {kind} of component {component}, found {len(found)}")
    return found[0]


# --- check groups -------------------------------------------------------------

def check_metadata(docs, v):
    for d in docs:
        md = d["metadata"]
        labels = md.get("labels") or {}
        for key in RECOMMENDED:
            need(key in labels, f"{d['kind']}/{md['name']} lacks label {key}")
        need(labels["app.kubernetes.io/instance"] == RELEASE, f"{d['kind']}/{md['name']}: instance label")
        if d["kind"] in NAMESPACED:
            need(md.get("namespace"), f"{d['kind']}/{md['name']} has no metadata.namespace")
    text = yaml.safe_dump_all(docs)
    need("PRIVATE KEY" not in text, "a private key is rendered")


def check_vwc(docs, v):
    vwc = one(docs, "ValidatingWebhookConfiguration")
    hooks = vwc["webhooks"]
    need(len(hooks) == 1, f"want 1 webhook, got {len(hooks)}")
    h = hooks[0]
    need(h["sideEffects"] == "None", "sideEffects")
    need(h["admissionReviewVersions"] == ["v1"], "admissionReviewVersions")
    need(h["failurePolicy"] == v["webhook"]["failurePolicy"], "failurePolicy")
    need(h["timeoutSeconds"] == v["webhook"]["timeoutSeconds"], "timeoutSeconds")
    cc = h["clientConfig"]
    mode = v["tls"]["mode"]
    if mode in ("self-managed", "cert-manager"):
        need("caBundle" not in cc, f"caBundle key templated in {mode} mode")
    else:
        pem = base64.b64decode(cc["caBundle"]).decode()
        need(pem == v["tls"]["caBundle"], "caBundle is not the base64 of tls.caBundle")
    ann = vwc["metadata"].get("annotations") or {}
    if mode == "cert-manager":
        cert = one(docs, "Certificate", name=ann.get("cert-manager.io/inject-ca-from", "/").split("/")[1])
        need(ann["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{cert['metadata']['name']}",
             "inject-ca-from does not name the serving Certificate")
    else:
        need("cert-manager.io/inject-ca-from" not in ann, "inject-ca-from outside cert-manager mode")
    if v["webhook"]["url"]:
        need(cc == {"url": v["webhook"]["url"]} or set(cc) <= {"url", "caBundle"}, "url clientConfig")
        need("service" not in cc, "service and url both set")
    else:
        svc = one(docs, "Service")
        need(cc["service"] == {"namespace": NAMESPACE, "name": svc["metadata"]["name"],
                               "path": "/validate", "port": 443}, f"service clientConfig {cc}")
        need(any(p["port"] == 443 and p["targetPort"] == "https" for p in svc["spec"]["ports"]),
             "Service has no 443 -> https port")
    exprs = h["namespaceSelector"]["matchExpressions"]
    need("matchLabels" not in h["namespaceSelector"], "unexpected matchLabels")
    need(len(exprs) == 2, f"want 2 namespaceSelector expressions, got {exprs}")
    need(exprs[0] == {"key": v["workers"]["namespaceLabel"], "operator": "In", "values": ["true"]},
         f"label expression {exprs[0]}")
    need(exprs[1]["key"] == "kubernetes.io/metadata.name" and exprs[1]["operator"] == "NotIn",
         "name expression")
    want = {"kube-system", "kube-node-lease", NAMESPACE}
    if v["agent"]["enabled"]:
        want.add(v["agent"]["namespace"])
    need(set(exprs[1]["values"]) == want and len(exprs[1]["values"]) == len(want),
         f"excluded namespaces {exprs[1]['values']}, want {sorted(want)}")
    got = set()
    for r in h["rules"]:
        need(sorted(r["operations"]) == ["CREATE", "UPDATE"], f"operations {r['operations']}")
        need(r["apiVersions"] == ["v1"] and r.get("scope") == "Namespaced", "rule version/scope")
        for g in r["apiGroups"]:
            for res in r["resources"]:
                got.add((g, res))
    want_rules = {("", "pods"), ("", "pods/ephemeralcontainers"), ("", "pods/resize"),
                  ("", "replicationcontrollers"), ("", "podtemplates"),
                  ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
                  ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs")}
    need(got == want_rules, f"rules differ: missing {want_rules - got}, extra {got - want_rules}")


def check_pdb(docs, v):
    pdbs = find(docs, "PodDisruptionBudget")
    dep = by_component(docs, "Deployment", "webhook")
    need(dep["spec"]["replicas"] == v["webhook"]["replicas"], "replicas")
    if v["webhook"]["replicas"] > 1:
        need(len(pdbs) == 1, "no PodDisruptionBudget with replicas > 1")
        pdb = pdbs[0]
        need(pdb["spec"]["minAvailable"] == 1, "minAvailable")
        sel = pdb["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        need(all(labels.get(k) == val for k, val in sel.items()), "PDB selector does not match the pods")
    else:
        need(not pdbs, "PodDisruptionBudget with a single replica blocks every drain")


def check_webhook_pod(docs, v):
    dep = by_component(docs, "Deployment", "webhook")
    spec = dep["spec"]["template"]["spec"]
    sel = dep["spec"]["selector"]["matchLabels"]
    need(all(dep["spec"]["template"]["metadata"]["labels"].get(k) == x for k, x in sel.items()),
         "selector does not match the template")
    need(spec["priorityClassName"] == v["priorityClassName"], "priorityClassName")
    need(spec["automountServiceAccountToken"] is True, "webhook pod needs its API token")
    sa = one(docs, "ServiceAccount", name=spec["serviceAccountName"], namespace=NAMESPACE)
    need(sa.get("automountServiceAccountToken") is False, "ServiceAccount should not automount")
    psc = spec["securityContext"]
    need(psc["runAsNonRoot"] is True and isinstance(psc["runAsUser"], int) and psc["runAsUser"] > 0,
         "pod runAsNonRoot / numeric runAsUser")
    need(psc["seccompProfile"] == {"type": "RuntimeDefault"}, "pod seccomp")
    tsc = spec["topologySpreadConstraints"]
    need(any(t["topologyKey"] == "kubernetes.io/hostname" for t in tsc), "no spread across nodes")
    (c,) = spec["containers"]
    sc = c["securityContext"]
    need(sc["readOnlyRootFilesystem"] is True, "readOnlyRootFilesystem")
    need(sc["allowPrivilegeEscalation"] is False, "allowPrivilegeEscalation")
    need(sc["capabilities"] == {"drop": ["ALL"]}, f"capabilities {sc['capabilities']}")
    need(sc["runAsNonRoot"] is True and sc["runAsUser"] == v["webhook"]["runAsUser"], "container user")
    need(c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"], "limits")
    need(c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], "requests")
    need(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe")
    need(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    need(ports == {"https": 8443, "probes": 8080}, f"ports {ports}")
    need(c["args"] == ["serve", "--config", "/etc/codeframe-guard/config.yaml"], f"args {c['args']}")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    need("/etc/codeframe-guard/config.yaml" in mounts, "config not mounted at /etc/codeframe-guard/config.yaml")
    vols = {x["name"]: x for x in spec["volumes"]}
    if v["tls"]["mode"] == "self-managed":
        need("tls" not in vols, "a TLS volume in self-managed mode")
    else:
        secret = v["tls"]["secretName"] or f"{RELEASE}-codeframe-guard-tls"
        need(vols["tls"]["secret"]["secretName"] == secret, "TLS secret volume")
        need(mounts["/etc/codeframe-guard/tls"]["readOnly"] is True, "TLS mount")


def check_webhook_rbac(docs, v):
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            for r in d["rules"]:
                for field in ("verbs", "resources", "apiGroups"):
                    need("*" not in r.get(field, []), f"wildcard {field} in {d['kind']}/{d['metadata']['name']}")
    dep = by_component(docs, "Deployment", "webhook")
    sa = dep["spec"]["template"]["spec"]["serviceAccountName"]
    cr = by_component(docs, "ClusterRole", "webhook")
    vwc = one(docs, "ValidatingWebhookConfiguration")
    crb = by_component(docs, "ClusterRoleBinding", "webhook")
    need(crb["roleRef"]["name"] == cr["metadata"]["name"], "ClusterRoleBinding roleRef")
    need(crb["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}], "CRB subjects")
    rules = cr["rules"]
    need(rules[0] == {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                      "verbs": ["list", "watch"]}, f"networkpolicies rule {rules[0]}")
    roles = find(docs, "Role")
    if v["tls"]["mode"] == "self-managed":
        need(len(rules) == 2, f"want 2 ClusterRole rules, got {len(rules)}")
        need(rules[1] == {"apiGroups": ["admissionregistration.k8s.io"],
                          "resources": ["validatingwebhookconfigurations"],
                          "resourceNames": [vwc["metadata"]["name"]], "verbs": ["get", "patch"]},
             f"webhook configuration rule {rules[1]}")
        (role,) = roles
        need(role["metadata"]["namespace"] == NAMESPACE, "Role namespace")
        secret = v["tls"]["secretName"] or f"{RELEASE}-codeframe-guard-tls"
        need(role["rules"] == [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get", "update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}], f"Role rules {role['rules']}")
        rb = one(docs, "RoleBinding")
        need(rb["roleRef"]["name"] == role["metadata"]["name"] and rb["subjects"][0]["name"] == sa, "RoleBinding")
        cfg = yaml.safe_load(one(docs, "ConfigMap", name=f"{RELEASE}-codeframe-guard-config")["data"]["config.yaml"])
        need(cfg["server"]["tlsSecret"] == f"{NAMESPACE}/{secret}", "config tlsSecret")
        need(cfg["server"]["webhookConfiguration"] == vwc["metadata"]["name"], "config webhookConfiguration")
    else:
        need(len(rules) == 1, "webhook configuration access outside self-managed mode")
        need(not roles, "Secret access outside self-managed mode")


def keys_within(cfg, schema, path=""):
    need(isinstance(cfg, dict), f"{path or 'config'} is not a mapping")
    for k, val in cfg.items():
        need(k in schema, f"config key {path}{k} is not in docs/config-schema.yaml")
        if isinstance(schema[k], dict) and schema[k] and isinstance(val, dict) and k not in ("max", "selector"):
            keys_within(val, schema[k], f"{path}{k}.")


def check_config(docs, v, schema):
    cm = one(docs, "ConfigMap", name=f"{RELEASE}-codeframe-guard-config")
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    keys_within(cfg, schema)
    need(set(cfg) == set(schema), f"top-level keys differ from the schema: {set(schema) ^ set(cfg)}")
    need(cfg["profile"] == "worker" and cfg["mode"] == v["webhook"]["mode"], "profile/mode")
    want_local = v["agent"]["enabled"] or v["webhook"]["policy"]["checks"]["seccompLocalhost"]
    need(cfg["checks"]["seccompLocalhost"] is want_local, "checks.seccompLocalhost vs agent.enabled")
    need(cfg["seccompLocalhostProfile"] == "codeframe/worker.json", "seccompLocalhostProfile")
    need(cfg["server"]["listen"] == "0.0.0.0:8443" and cfg["server"]["probeListen"] == "0.0.0.0:8080", "ports")
    need(cfg["workers"]["selector"] == v["workers"]["podSelector"], "workers.selector")
    if v["tls"]["mode"] == "self-managed":
        need(cfg["server"]["tlsCert"] == "" and cfg["server"]["tlsSecret"], "self-managed TLS config")
    else:
        need(cfg["server"]["tlsCert"] == "/etc/codeframe-guard/tls/tls.crt"
             and cfg["server"]["tlsKey"] == "/etc/codeframe-guard/tls/tls.key"
             and cfg["server"]["tlsSecret"] == "", "file TLS config")


def check_certmanager(docs, v):
    kinds = [d for d in docs if d["apiVersion"] == "cert-manager.io/v1"]
    if v["tls"]["mode"] != "cert-manager":
        need(not kinds, "cert-manager objects outside cert-manager mode")
        return
    issuers = {d["metadata"]["name"]: d for d in find(docs, "Issuer")}
    certs = {d["metadata"]["name"]: d for d in find(docs, "Certificate")}
    need(len(issuers) == 2 and len(certs) == 2, "want 2 Issuers and 2 Certificates")
    selfsigned = [n for n, d in issuers.items() if "selfSigned" in d["spec"]]
    ca_issuer = [n for n, d in issuers.items() if "ca" in d["spec"]]
    need(len(selfsigned) == 1 and len(ca_issuer) == 1, "one self-signed and one CA Issuer")
    ca_cert = [d for d in certs.values() if d["spec"].get("isCA")]
    leaf = [d for d in certs.values() if not d["spec"].get("isCA")]
    need(len(ca_cert) == 1 and len(leaf) == 1, "one CA and one leaf Certificate")
    need(ca_cert[0]["spec"]["issuerRef"]["name"] == selfsigned[0], "CA Certificate not from the self-signed Issuer")
    need(issuers[ca_issuer[0]]["spec"]["ca"]["secretName"] == ca_cert[0]["spec"]["secretName"],
         "CA Issuer does not use the CA Certificate's Secret")
    need(leaf[0]["spec"]["issuerRef"]["name"] == ca_issuer[0], "leaf not from the CA Issuer")
    svc = one(docs, "Service")["metadata"]["name"]
    need(f"{svc}.{NAMESPACE}.svc" in leaf[0]["spec"]["dnsNames"], "leaf lacks <svc>.<ns>.svc")
    dep = by_component(docs, "Deployment", "webhook")
    vols = {x["name"]: x for x in dep["spec"]["template"]["spec"]["volumes"]}
    need(vols["tls"]["secret"]["secretName"] == leaf[0]["spec"]["secretName"], "webhook mounts another Secret")


def check_agent(docs, v, kube_minor):
    a = v["agent"]
    ds_list = find(docs, "DaemonSet")
    if not a["enabled"]:
        need(not ds_list and not find(docs, "Namespace", name=a["namespace"]), "agent objects while disabled")
        return
    ns = one(docs, "Namespace", name=a["namespace"])
    need(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged", "agent namespace PSA label")
    (ds,) = ds_list
    need(ds["metadata"]["namespace"] == a["namespace"], "DaemonSet namespace")
    spec = ds["spec"]["template"]["spec"]
    need(spec["hostPID"] is True, "hostPID")
    need(spec["priorityClassName"] == "system-node-critical", "priorityClassName")
    need(not spec.get("hostNetwork") and not spec.get("hostIPC"), "hostNetwork/hostIPC")
    ru = ds["spec"]["updateStrategy"]
    need(ru["type"] == "RollingUpdate" and ru["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0},
         f"updateStrategy {ru}")
    need(spec.get("tolerations"), "no tolerations")
    (c,) = spec["containers"]
    sc = c["securityContext"]
    need(sc["capabilities"]["add"] == ["SYS_PTRACE"], f"capabilities add {sc['capabilities'].get('add')}")
    need(sc["capabilities"]["drop"] == ["ALL"], "capabilities drop")
    need(sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False, "privileged / escalation")
    need(sc["readOnlyRootFilesystem"] is True, "readOnlyRootFilesystem")
    aa = a["appArmorProfile"]
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    if kube_minor >= 30:
        want = {"type": aa["type"]}
        if aa["type"] == "Localhost":
            want["localhostProfile"] = aa["localhostProfile"]
        need(sc.get("appArmorProfile") == want, f"appArmorProfile {sc.get('appArmorProfile')}")
        need(not any(k.startswith("container.apparmor") for k in ann), "AppArmor annotation on >= 1.30")
    else:
        need("appArmorProfile" not in sc, "appArmorProfile field before 1.30")
        need(ann.get("container.apparmor.security.beta.kubernetes.io/agent"), "AppArmor annotation before 1.30")
    for ic in spec.get("initContainers", []):
        isc = ic["securityContext"]
        need(isc["capabilities"] == {"drop": ["ALL"]}, "init container capabilities")
        need(isc["readOnlyRootFilesystem"] is True and isc["privileged"] is False, "init container hardening")
    run_cmds = [x.get("args", []) for x in spec.get("initContainers", []) + [c]]
    need(any(cmd and cmd[0] == "install-profile" for cmd in run_cmds), "nobody runs install-profile")
    need(c["args"][0] == "run", "main container does not run `run`")
    env = {e["name"]: e for e in c["env"]}
    need(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", "NODE_NAME")
    need(env.get("POD_UID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.uid",
         "POD_UID (the upgrade handoff's retired marker)")
    seccomp_dir = a["kubeletDir"].rstrip("/") + "/seccomp"
    host = {x["hostPath"]["path"] for x in spec["volumes"] if "hostPath" in x}
    need(host == {seccomp_dir, "/run/codeframe-guard"}, f"hostPath volumes {host}")
    need(any(m["mountPath"] == "/run/codeframe-guard" for m in c["volumeMounts"]), "run dir mount")
    policy = one(docs, "ConfigMap", name=f"{RELEASE}-codeframe-guard-agent-policy")
    need(yaml.safe_load(policy["data"]["policy.yml"]) == a["policy"], "policy.yml differs from agent.policy")
    cfgmap = one(docs, "ConfigMap", name=f"{RELEASE}-codeframe-guard-agent-config")
    agent_cfg = yaml.safe_load(cfgmap["data"]["agent.yaml"])
    need(agent_cfg["policies"] == ["/etc/codeframe-guard/policy.yml"], "agent policies")
    need(agent_cfg["profileDir"] == seccomp_dir, "agent profileDir")
    need(set(agent_cfg) == {"socket", "stateDir", "policies", "metricsListen", "logLevel", "profileDir",
                            "approvalGroup", "approvalTimeoutSeconds", "nodeName"}, "agent config keys")
    cfg_mount = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/codeframe-guard"]
    need(len(cfg_mount) == 1, "config dir mount")
    srcs = [s["configMap"]["name"] for x in spec["volumes"] if x["name"] == cfg_mount[0]["name"]
            for s in x["projected"]["sources"]]
    need(policy["metadata"]["name"] in srcs and cfgmap["metadata"]["name"] in srcs, "policy not mounted")
    cr = by_component(docs, "ClusterRole", "agent")
    need(cr["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}],
         f"agent rules {cr['rules']}")
    sa = one(docs, "ServiceAccount", name=spec["serviceAccountName"], namespace=a["namespace"])
    need(sa["automountServiceAccountToken"] is False, "agent ServiceAccount automount")


def check_quota(docs, v):
    quotas = find(docs, "ResourceQuota")
    if not v["resourceQuota"]["enabled"]:
        need(not quotas, "ResourceQuota while disabled")
        return
    by_ns = {q["metadata"]["namespace"]: q for q in quotas}
    want = {NAMESPACE: v["priorityClassName"]}
    if v["agent"]["enabled"]:
        want[v["agent"]["namespace"]] = v["agent"]["priorityClassName"]
    need(set(by_ns) == set(want), f"quota namespaces {sorted(by_ns)}")
    for ns, pc in want.items():
        exprs = by_ns[ns]["spec"]["scopeSelector"]["matchExpressions"]
        need(exprs == [{"scopeName": "PriorityClass", "operator": "In", "values": [pc]}], f"quota scope in {ns}")


def check_example_worker(docs, v):
    w = v["exampleWorker"]
    if not w["enabled"]:
        need(not find(docs, "NetworkPolicy") and not find(docs, "Namespace", name=w["namespace"]),
             "example worker objects while disabled")
        return
    ns = one(docs, "Namespace", name=w["namespace"])
    need(ns["metadata"]["labels"].get(v["workers"]["namespaceLabel"]) == "true", "worker namespace label")
    dep = by_component(docs, "Deployment", "example-worker")
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    need(spec["automountServiceAccountToken"] is False, "worker automounts a token")
    nps = find(docs, "NetworkPolicy", namespace=w["namespace"])
    deny = [n for n in nps if n["spec"]["podSelector"] == {}]
    need(len(deny) == 1 and sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
         and not deny[0]["spec"].get("ingress") and not deny[0]["spec"].get("egress"), "default deny")
    egress = [n for n in nps if n is not deny[0]]
    need(len(egress) == 1, "want one egress policy")
    e = egress[0]["spec"]
    need(all(labels.get(k) == x for k, x in e["podSelector"]["matchLabels"].items()), "egress policy misses the worker")
    need(e["policyTypes"] == ["Egress"] and "ingress" not in e, "egress policy types")
    ports = sorted((p["protocol"], p["port"]) for r in e["egress"] for p in r["ports"])
    need(ports == [("TCP", 53), ("TCP", 8080), ("UDP", 53)], f"egress ports {ports}")
    for r in e["egress"]:
        need(r.get("to") and all(t.get("podSelector", {}).get("matchLabels") for t in r["to"]),
             "egress rule without a peer pod selector")
    sp = spec["securityContext"]["seccompProfile"]
    if v["agent"]["enabled"]:
        need(sp == {"type": "Localhost", "localhostProfile": "codeframe/worker.json"}, f"seccomp {sp}")
        need(spec["nodeSelector"] == {"codeframe.io/agent-ready": "true"}, "agent-ready nodeSelector")
    else:
        need(sp == {"type": "RuntimeDefault"} and "nodeSelector" not in spec, "worker without agent")


def check_chart_yaml(chart_dir):
    meta = yaml.safe_load(open(os.path.join(chart_dir, "Chart.yaml")))
    need(meta["apiVersion"] == "v2", "Chart apiVersion")
    need(meta["kubeVersion"] == ">= 1.28.0-0", f"kubeVersion {meta['kubeVersion']}")
    need(meta["name"] == "codeframe-guard", "chart name")


def check_schema_strict(chart_dir):
    import json
    schema = json.load(open(os.path.join(chart_dir, "values.schema.json")))
    count = 0

    def walk(node, path):
        nonlocal count
        if isinstance(node, dict):
            if "properties" in node:
                count += 1
                need(node.get("additionalProperties") is False, f"{path or '/'} admits unknown keys")
            for k, val in node.items():
                # Conditionals constrain an object defined elsewhere.
                if k not in ("if", "then", "else"):
                    walk(val, f"{path}/{k}")
        elif isinstance(node, list):
            for n, val in enumerate(node):
                walk(val, f"{path}[{n}]")
    walk(schema, "")
    need(count >= 20, f"only {count} objects with properties in the schema")
    wh = schema["properties"]["webhook"]["properties"]
    need(wh["timeoutSeconds"].get("minimum") == 1 and wh["timeoutSeconds"].get("maximum") == 30,
         "timeoutSeconds bounds")
    need(wh["replicas"].get("minimum") == 1, "replicas minimum")


def main():
    helm, chart_dir, schema_path, out_dir = sys.argv[1:5]
    defaults = yaml.safe_load(open(os.path.join(chart_dir, "values.yaml")))
    schema = yaml.safe_load(open(schema_path))
    run_check("chart: Chart.yaml apiVersion v2, kubeVersion >= 1.28.0-0", check_chart_yaml, chart_dir)
    run_check("chart: values.schema.json is strict (additionalProperties false, bounds)",
              check_schema_strict, chart_dir)
    files = sorted(glob.glob(os.path.join(chart_dir, "ci", "*.yaml")))
    if not files:
        print("FAIL: chart: no values files in ci/")
        return 1
    for f in files:
        name = os.path.basename(f)[: -len(".yaml")]
        values = merge(defaults, yaml.safe_load(open(f)))
        for kube in ("1.30.0", "1.29.0"):
            tag = f"{name}@{kube}"
            proc = subprocess.run([helm, "template", RELEASE, chart_dir, "--namespace", NAMESPACE,
                                   "--kube-version", kube, "--api-versions", "cert-manager.io/v1",
                                   "-f", f], capture_output=True, text=True)
            if proc.returncode != 0:
                global FAILED
                FAILED += 1
                print(f"FAIL: template[{tag}]: {proc.stderr.strip()}")
                continue
            print(f"PASS: template[{tag}]")
            docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
            if kube == "1.30.0":
                with open(os.path.join(out_dir, name + ".yaml"), "w") as out:
                    out.write(proc.stdout)
            minor = int(kube.split(".")[1])
            run_check(f"metadata[{tag}]: recommended labels, namespaces, no private key", check_metadata, docs, values)
            run_check(f"vwc[{tag}]: selector, rules, caBundle, clientConfig", check_vwc, docs, values)
            run_check(f"pdb[{tag}]: only when replicas > 1", check_pdb, docs, values)
            run_check(f"webhook-pod[{tag}]: hardened, probes, limits", check_webhook_pod, docs, values)
            run_check(f"webhook-rbac[{tag}]: scoped rules", check_webhook_rbac, docs, values)
            run_check(f"config[{tag}]: schema keys, seccompLocalhost, TLS", check_config, docs, values, schema)
            run_check(f"cert-manager[{tag}]: issuer chain", check_certmanager, docs, values)
            run_check(f"agent[{tag}]: SYS_PTRACE only, hostPID, volumes, rollout", check_agent, docs, values, minor)
            run_check(f"quota[{tag}]: PriorityClass scopes", check_quota, docs, values)
            run_check(f"example-worker[{tag}]: namespace, policies, profile", check_example_worker, docs, values)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
