"""Checks charts/distributedkube with the real Helm library (helm-python-sdk)
and Kubernetes' own schemas (kubernetes-validate), as `helm lint`, `helm
template` and a manifest validator would:

- lint is clean (strict: warnings count);
- it renders with the defaults and with every optional part switched on,
  and every manifest validates against the oldest and the newest Kubernetes
  schemas the validator knows;
- values.schema.json refuses bad values, naming the value.

Run with the helm venv's Python (scripts/install-test-deps.sh makes it):
    python scripts/chart-check.py [CHART_DIR]
Prints one line per check and exits non-zero on the first failure.
"""
import os
import sys

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import yaml

chart_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "charts", "distributedkube")
chart = helm.Chart.load(chart_dir)


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


report = helm.lint(chart_dir, strict=True)
problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
if problems:
    fail(f"helm lint: {problems}")
notes = "; ".join(m.get("error", "") for m in report.get("messages", []))
print(f"ok: helm lint --strict, no warnings ({notes or 'no messages'})")

everything = {
    "executor": "kubernetes",
    "apiTokens": "abc write\n# a comment\nviewer read",
    "build_secret": {
        "push": {"registry": "registry.example.com:5000", "namespace": "team", "username": "u", "password": "p"},
        "pull": {"registry": "docker.io", "username": "pu", "password": "pp"},
    },
    "persistence": {"enabled": False},
    "ingress": {"enabled": True, "className": "nginx", "host": "dk.example.com", "tls": True},
    "nodeSelector": {"pool": "cpu"},
    "database": {"url": "postgres://dk:pw@db:5432/dk"},
    "storage": {"s3": {"url": "s3://dk-data/jobs", "endpoint": "http://s3:9000", "accessKeyId": "k",
                       "secretAccessKey": "s", "allowHttp": True}},
}
# A cluster without a pod network, kube-proxy or DNS (the local test cluster).
no_pod_network = {
    "executor": "kubernetes",
    "hostNetwork": True,
    "port": 3917,
    "kubernetes": {"apiServer": "127.0.0.1:16443"},
    "persistence": {"enabled": False},
}
# The validator's schemas start at 1.25; the local cluster (1.20) is the
# install test's to check.
known = kubernetes_validate.utils.all_versions()
versions = [known[0], known[-1]]
for label, values in [("defaults", None), ("every option", everything), ("no pod network", no_pod_network)]:
    manifests = chart.render(values, name="dk", namespace="pipelines", is_install=True)
    kinds = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            kinds.append(doc["kind"])
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    fail(f"{label}: {path} ({doc['kind']}) is not valid Kubernetes {version}: {e.message} at {list(e.path)}")
    print(f"ok: renders with {label}: {', '.join(kinds)}; valid for Kubernetes {', '.join(versions)}")
    if label == "every option":
        needed = {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                  "ClusterRoleBinding", "Secret", "Ingress"}
        if not needed <= set(kinds):
            fail(f"every option: missing {needed - set(kinds)}")
        deployment = yaml.safe_load(manifests["distributedkube/templates/deployment.yaml"])
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        for expected in ["--registry=registry.example.com:5000", "--registry-namespace=team", "--registry-user=u",
                         "--executor=kubernetes", "--kubernetes-server-url=ws://dk-distributedkube.pipelines.svc:3000",
                         "--kubernetes-image-pull-secret=dk-distributedkube-push"]:
            if expected not in args:
                fail(f"the server is not given {expected}: {args}")
        print("ok: the registry and executor settings reach the server's flags")
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        state = [doc for doc in yaml.safe_load_all(manifests["distributedkube/templates/secrets.yaml"])
                 if doc and doc["metadata"]["name"] == "dk-distributedkube-state"]
        if not state or state[0]["stringData"] != {"database-url": "postgres://dk:pw@db:5432/dk",
                                                   "s3-access-key-id": "k", "s3-secret-access-key": "s"}:
            fail(f"the database URL and S3 keys are not in the state Secret: {state}")
        from_secret = {n for n, e in env.items() if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]}
        if not {"DISTRIBUTEDKUBE_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= from_secret:
            fail(f"the database URL and S3 keys do not come from the Secret: {sorted(from_secret)}")
        plain = {n: e.get("value") for n, e in env.items()}
        if (plain.get("DISTRIBUTEDKUBE_STORAGE"), plain.get("AWS_ENDPOINT"), plain.get("AWS_ALLOW_HTTP")) != (
                "s3://dk-data/jobs", "http://s3:9000", "true"):
            fail(f"the S3 settings do not reach the server: {plain}")
        print("ok: database.url and storage.s3 reach the server, their secrets through the state Secret")
    if label == "no pod network":
        pod = yaml.safe_load(manifests["distributedkube/templates/deployment.yaml"])["spec"]["template"]["spec"]
        server = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in server["env"]}
        checks = {
            "hostNetwork": pod.get("hostNetwork") is True,
            "--kubernetes-host-network": "--kubernetes-host-network" in server["args"],
            "--listen=0.0.0.0:3917": "--listen=0.0.0.0:3917" in server["args"],
            "--kubernetes-server-url=ws://127.0.0.1:3917": "--kubernetes-server-url=ws://127.0.0.1:3917" in server["args"],
            "containerPort 3917": server["ports"][0]["containerPort"] == 3917,
            "KUBERNETES_SERVICE_HOST/PORT": (env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT"))
            == ("127.0.0.1", "16443"),
            "an emptyDir for data": any(v["name"] == "data" and "emptyDir" in v for v in pod["volumes"]),
        }
        missing = [what for what, ok in checks.items() if not ok]
        if missing:
            fail(f"no pod network: the server's pod lacks {missing}: {pod}")
        print("ok: hostNetwork puts the server and its workers on the node, the API server at kubernetes.apiServer")

for bad, named in [
    ({"executor": "magic"}, "executor"),
    ({"apiTokens": "token admin"}, "apiTokens"),
    ({"service": {"port": 70000}}, "port"),
    ({"build_secret": {"push": {"registy": "typo"}}}, "registy"),
    ({"kubernetes": {"apiServer": "https://127.0.0.1:16443"}}, "apiServer"),
    ({"hostNetwork": "yes"}, "hostNetwork"),
    ({"database": {"url": "mysql://db/dk"}}, "url"),
    ({"storage": {"s3": {"url": "/var/data"}}}, "url"),
]:
    try:
        chart.validate_schema(chart.merge_values(bad))
    except helm.HelmError as e:
        if named not in str(e):
            fail(f"{bad} was refused without naming {named}: {e}")
        print(f"ok: refuses {bad}: {' '.join(str(e).split())[:160]}")
    else:
        fail(f"{bad} was accepted")
print("chart checks passed")
