#!/usr/bin/env python3
"""Checks of the deployment files, run by scripts/check-deploy (which installs what this
needs: PyYAML, helm-python-sdk — Helm's own Go SDK, for lint and render — and
kubernetes-validate, the Kubernetes API schemas, offline).

    check_deploy.py chart        helm lint + render of helm/switchboard with every
                                 ci/*-values.yaml, schema validation, structural checks,
                                 and values that must be refused
    check_deploy.py files        docker-compose.yml, .env.example, Dockerfile and
                                 .dockerignore against each other and the source

Exits non-zero with one line per problem.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "switchboard"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a recent one.
KUBE_VERSIONS = ["1.25.0", "1.33.0"]

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


def check(cond: bool, msg: str) -> bool:
    if not cond:
        problem(msg)
    return cond


# --- the chart ---------------------------------------------------------------------------


def render(values: dict, name: str = "support") -> list[dict]:
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=name, namespace="support", is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__template"] = path
                docs.append(doc)
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict], kind: str, suffix: str, where: str) -> dict:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(suffix)]
    if not check(len(found) == 1, f"{where}: expected one {kind} named …{suffix}, found {len(found)}"):
        return {}
    return found[0]


def container(deploy: dict) -> dict:
    return deploy.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0]


def env_names(c: dict) -> set[str]:
    return {e["name"] for e in c.get("env", [])}


def check_pod(pod_owner: dict, where: str, args: list[str]) -> None:
    spec = pod_owner["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(c.get("args") == args, f"{where}: args {c.get('args')} instead of {args}")
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: pod securityContext.runAsNonRoot is not true")
    check(psc.get("runAsUser", 0) != 0, f"{where}: pod runs as uid 0")
    csc = c.get("securityContext", {})
    check(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation is not false")
    check(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true")
    check("ALL" in csc.get("capabilities", {}).get("drop", []), f"{where}: capabilities are not dropped")
    check(bool(c.get("resources")), f"{where}: no resources")
    check("DATABASE_URL" in env_names(c), f"{where}: no DATABASE_URL")
    check(any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])), f"{where}: no writable /tmp (the root filesystem is read-only)")


def check_chart_structure(docs: list[dict], values: dict, where: str) -> None:
    web = one(docs, "Deployment", "-web", where)
    worker = one(docs, "Deployment", "-worker", where)
    job = one(docs, "Job", "-migrate", where)
    service = one(docs, "Service", "-web", where)
    one(docs, "ConfigMap", "", where)
    existing = values.get("secrets", {}).get("existingSecret")
    metrics = values.get("metrics", {})
    metrics_secret = bool(metrics.get("enabled") and metrics.get("token"))
    secrets = [s for s in by_kind(docs, "Secret") if not s["metadata"]["name"].endswith("-metrics")]
    check(len(by_kind(docs, "Secret")) - len(secrets) == (1 if metrics_secret else 0), f"{where}: the metrics token's Secret is rendered {len(by_kind(docs, 'Secret')) - len(secrets)} times")
    if existing:
        check(not secrets, f"{where}: a Secret is rendered although secrets.existingSecret is set")
    else:
        check(len(secrets) == 2, f"{where}: expected the Secret and the migration's hook Secret, found {len(secrets)}")
    if web:
        check_pod(web, f"{where} web", ["serve", "--no-jobs"])
        c = container(web)
        check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{where}: web readiness probe is not GET /readyz")
        check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{where}: web liveness probe is not GET /healthz")
        check(any(p.get("containerPort") == 8080 for p in c.get("ports", [])), f"{where}: web does not expose 8080")
        names = env_names(c)
        for var in ["SWITCHBOARD_PUBLIC_URL", "SWITCHBOARD_BIND", "SWITCHBOARD_MASTER_KEY_FILE"]:
            check(var in names, f"{where}: web has no {var}")
        check("SWITCHBOARD_MASTER_KEY" not in names, f"{where}: web sets both the master key and its file")
        autoscaled = values.get("web", {}).get("autoscaling", {}).get("enabled")
        check(("replicas" in web["spec"]) != bool(autoscaled), f"{where}: web replicas must be set exactly when the HPA is off")
        check(len(by_kind(docs, "HorizontalPodAutoscaler")) == (1 if autoscaled else 0), f"{where}: HPA rendered {len(by_kind(docs, 'HorizontalPodAutoscaler'))} times")
        if service:
            sel = service["spec"]["selector"]
            labels = web["spec"]["template"]["metadata"]["labels"]
            check(all(labels.get(k) == v for k, v in sel.items()), f"{where}: the Service does not select the web pods")
            wsel = worker["spec"]["template"]["metadata"]["labels"] if worker else {}
            check(not all(wsel.get(k) == v for k, v in sel.items()), f"{where}: the Service also selects the worker pods")
    if worker:
        check_pod(worker, f"{where} worker", ["worker"])
    if job:
        check_pod(job, f"{where} migration Job", ["migrate"])
        ann = job["metadata"].get("annotations", {})
        check(set(ann.get("helm.sh/hook", "").split(",")) == {"pre-install", "pre-upgrade"}, f"{where}: the migration Job is not a pre-install,pre-upgrade hook")
        spec = job["spec"]["template"]["spec"]
        check(spec.get("restartPolicy") == "Never", f"{where}: the migration Job restarts its pod")
        check("serviceAccountName" not in spec, f"{where}: the migration hook uses the chart's ServiceAccount (not there yet at pre-install)")
        ref = [e for e in container(job).get("env", []) if e["name"] == "DATABASE_URL"][0]["valueFrom"]["secretKeyRef"]["name"]
        hooked = {s["metadata"]["name"] for s in secrets if "helm.sh/hook" in s["metadata"].get("annotations", {})}
        check(ref == existing or ref in hooked, f"{where}: the migration Job reads DATABASE_URL from {ref}, which is neither the existing Secret nor a hook")
        check("envFrom" not in container(job), f"{where}: the migration Job uses the ConfigMap (not there yet at pre-install)")
    check_metrics(docs, values, where, web, worker, service)
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        check("maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"], f"{where}: PDB {pdb['metadata']['name']} has no budget")
    ingresses = by_kind(docs, "Ingress")
    if values.get("ingress", {}).get("enabled"):
        paths = {}
        for ing in ingresses:
            for rule in ing["spec"]["rules"]:
                for p in rule["http"]["paths"]:
                    paths[p["path"]] = ing
                    check(p["backend"]["service"]["name"].endswith("-web"), f"{where}: Ingress path {p['path']} does not go to the web Service")
        check("/telegram/" in paths, f"{where}: no Ingress path /telegram/")
        events = paths.get("/desk/events")
        if check(events is not None, f"{where}: no Ingress path /desk/events"):
            ann = events["metadata"].get("annotations", {})
            check(ann.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off", f"{where}: /desk/events is buffered")
            check(int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")) >= 600, f"{where}: /desk/events has a short read timeout")
        main = paths.get("/")
        if check(main is not None, f"{where}: no Ingress path /"):
            check(main["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/proxy-body-size") == "25m", f"{where}: uploads are not allowed 25m")
    else:
        check(not ingresses, f"{where}: an Ingress is rendered although ingress.enabled is false")


def env_of(c: dict, name: str) -> dict | None:
    return next((e for e in c.get("env", []) if e["name"] == name), None)


def check_metrics(docs: list[dict], values: dict, where: str, web: dict, worker: dict, service: dict) -> None:
    """metrics.*: the listener on every web and worker pod, its token, its discovery."""
    metrics = values.get("metrics", {})
    enabled = bool(metrics.get("enabled"))
    port = int(metrics.get("port", 9100))
    monitors = by_kind(docs, "PodMonitor")
    token_ref = None
    if metrics.get("existingSecret"):
        token_ref = {"name": metrics["existingSecret"], "key": metrics.get("existingSecretKey", "metrics-token")}
    elif metrics.get("token"):
        token_ref = {"name": f"{service['metadata']['name'].removesuffix('-web')}-metrics", "key": "token"} if service else None
    for deploy, name in [(web, "web"), (worker, "worker")]:
        if not deploy:
            continue
        c = container(deploy)
        bind = env_of(c, "SWITCHBOARD_METRICS_BIND")
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        annotations = deploy["spec"]["template"]["metadata"].get("annotations", {})
        # Always bound: then the main port (the Ingress's) never serves /metrics.
        check(bind is not None and bind.get("value") == f"0.0.0.0:{port}", f"{where}: {name}: SWITCHBOARD_METRICS_BIND is {bind} instead of 0.0.0.0:{port}")
        if not enabled:
            check("metrics" not in ports and not monitors and env_of(c, "SWITCHBOARD_METRICS_TOKEN") is None, f"{where}: {name} has metrics although metrics.enabled is false")
            continue
        check(ports.get("metrics") == port, f"{where}: {name} has no container port 'metrics' = {port}")
        token = env_of(c, "SWITCHBOARD_METRICS_TOKEN")
        if token_ref:
            ref = (token or {}).get("valueFrom", {}).get("secretKeyRef", {})
            check({"name": ref.get("name"), "key": ref.get("key")} == token_ref, f"{where}: {name}: SWITCHBOARD_METRICS_TOKEN comes from {ref} instead of {token_ref}")
        else:
            check(token is None, f"{where}: {name} sets SWITCHBOARD_METRICS_TOKEN without a token configured")
        if metrics.get("podAnnotations"):
            check(annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") == str(port), f"{where}: {name}: no prometheus.io annotations for port {port}")
    if enabled and service:
        check(all(p.get("targetPort") != "metrics" and p.get("port") != port for p in service["spec"]["ports"]), f"{where}: the web Service exposes the metrics port")
    if enabled and metrics.get("token"):
        secret = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"].endswith("-metrics")]
        check(bool(secret) and "token" in secret[0].get("data", {}), f"{where}: the metrics token's Secret has no key 'token'")
    want_monitor = enabled and metrics.get("podMonitor", {}).get("enabled")
    if not check(len(monitors) == (1 if want_monitor else 0), f"{where}: {len(monitors)} PodMonitors rendered") or not want_monitor:
        return
    pm = monitors[0]
    check(pm.get("apiVersion") == "monitoring.coreos.com/v1", f"{where}: PodMonitor apiVersion {pm.get('apiVersion')}")
    for key, value in metrics.get("podMonitor", {}).get("labels", {}).items():
        check(pm["metadata"].get("labels", {}).get(key) == value, f"{where}: PodMonitor lacks the label {key}: {value}")
    selector = pm["spec"].get("selector", {})

    def selects(deploy: dict) -> bool:
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
            return False
        for e in selector.get("matchExpressions", []):
            if e["operator"] != "In" or labels.get(e["key"]) not in e["values"]:
                return False
        return True

    for deploy, name in [(web, "web"), (worker, "worker")]:
        if deploy:
            check(selects(deploy), f"{where}: the PodMonitor does not select the {name} pods")
    job = one(docs, "Job", "-migrate", where)
    if job:
        check(not selects(job), f"{where}: the PodMonitor selects the migration Job")
    endpoints = pm["spec"].get("podMetricsEndpoints", [])
    if check(len(endpoints) == 1, f"{where}: PodMonitor has {len(endpoints)} endpoints"):
        ep = endpoints[0]
        check(ep.get("port") == "metrics" and ep.get("path") == "/metrics", f"{where}: PodMonitor scrapes {ep.get('port')} {ep.get('path')}")
        creds = ep.get("authorization", {}).get("credentials")
        if token_ref:
            check(ep.get("authorization", {}).get("type") == "Bearer" and creds == token_ref, f"{where}: PodMonitor authorization {ep.get('authorization')} instead of Bearer {token_ref}")
        else:
            check("authorization" not in ep, f"{where}: PodMonitor sends a token none is configured for")


# Custom resources Kubernetes' own schemas do not describe: checked by structure only.
CUSTOM_API_GROUPS = ("monitoring.coreos.com/",)


def kube_validate(docs: list[dict], where: str) -> None:
    import kubernetes_validate

    for doc in docs:
        if str(doc.get("apiVersion", "")).startswith(CUSTOM_API_GROUPS):
            continue
        resource = {k: v for k, v in doc.items() if k != "__template"}
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')} ({doc['__template']})"
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problem(f"{where}: {name} is not a valid Kubernetes {version} object: {e.message} at {'/'.join(map(str, e.path))}")
            except Exception as e:  # a schema that is missing is a problem of the check
                problem(f"{where}: {name}: cannot validate against Kubernetes {version}: {e}")


def check_chart() -> None:
    import helm_python as helm

    print(f"  Helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__})")
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for field in ["apiVersion", "name", "version", "appVersion"]:
        check(field in meta, f"Chart.yaml: no {field}")
    check(meta.get("apiVersion") == "v2", "Chart.yaml: apiVersion is not v2")
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    check(isinstance(defaults, dict), "values.yaml is not a mapping")

    value_files = sorted((CHART / "ci").glob("*-values.yaml"))
    check(len(value_files) >= 2, "helm/switchboard/ci/ needs *-values.yaml files to test with")
    for vf in value_files:
        where = f"chart with ci/{vf.name}"
        values = yaml.safe_load(vf.read_text()) or {}
        report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
        for err in report.get("errors", []):
            problem(f"{where}: helm lint: {err}")
        for m in report.get("messages", []):
            if m.get("severity", 0) >= 2:
                problem(f"{where}: helm lint: {m.get('path')}: {m.get('error')}")
        try:
            docs = render(values)
        except Exception as e:
            problem(f"{where}: helm template failed: {e}")
            continue
        kinds = sorted({d["kind"] for d in docs})
        print(f"  {where}: {len(docs)} objects ({', '.join(kinds)})")
        for d in docs:
            for field in ["apiVersion", "kind", "metadata"]:
                check(field in d, f"{where}: {d['__template']}: an object without {field}")
            check(bool(d.get("metadata", {}).get("name")), f"{where}: {d['__template']}: an object without a name")
        names = [(d["kind"], d["metadata"]["name"]) for d in docs]
        check(len(names) == len(set(names)), f"{where}: two objects with the same kind and name")
        kube_validate(docs, where)
        check_chart_structure(docs, values, where)

    # Values that must be refused, with a message naming what to do.
    base = yaml.safe_load((CHART / "ci" / "minimal-values.yaml").read_text())
    refused = {
        "no publicUrl": ({**base, "publicUrl": ""}, "publicUrl is required"),
        "no master key": ({**base, "secrets": {**base["secrets"], "masterKey": ""}}, "secrets.masterKey is required"),
        "a short master key": ({**base, "secrets": {**base["secrets"], "masterKey": "c2hvcnQ="}}, "32 random bytes"),
        "no database URL": ({**base, "secrets": {**base["secrets"], "databaseUrl": ""}}, "secrets.databaseUrl is required"),
        "a number in config": ({**base, "config": {"SWITCHBOARD_DB_POOL_SIZE": 5}}, "must be a string"),
        "two metrics tokens": ({**base, "metrics": {"enabled": True, "token": "x", "existingSecret": "y"}}, "not both"),
    }
    for what, (values, expected) in refused.items():
        try:
            render(values)
            problem(f"chart: {what} is accepted")
        except Exception as e:
            check(expected in str(e), f"chart: {what} is refused, but not with '{expected}': {e}")


# --- compose, .env.example, Dockerfile, .dockerignore -------------------------------------


def config_variables() -> set[str]:
    """The variables the program reads (literal names in src/config.rs)."""
    text = (ROOT / "src" / "config.rs").read_text()
    names = set(re.findall(r'"((?:SWITCHBOARD_[A-Z0-9_]+)|DATABASE_URL)"', text))
    # SWITCHBOARD_OAUTH_{id}_CLIENT_ID/SECRET and SWITCHBOARD_OAUTH_SSO_{k} are built with format!.
    for provider in re.findall(r'pair\("([A-Z]+)"\)', text):
        names |= {f"SWITCHBOARD_OAUTH_{provider}_CLIENT_ID", f"SWITCHBOARD_OAUTH_{provider}_CLIENT_SECRET"}
    for k in re.findall(r'need\("([A-Z_]+)"\)', text):
        names.add(f"SWITCHBOARD_OAUTH_SSO_{k}")
    return names


def env_example() -> dict[str, str]:
    values = {}
    for n, line in enumerate((ROOT / ".env.example").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if check(m is not None, f".env.example:{n}: not NAME=value: {line}"):
            values[m.group(1)] = m.group(2)
    return values


def check_compose() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose.get("services", {})
    check(set(services) == {"db", "migrate", "web", "worker", "nginx"}, f"docker-compose.yml: services are {sorted(services)}")
    expect_command = {"migrate": ["migrate"], "web": ["serve", "--no-jobs"], "worker": ["worker"]}
    for name, command in expect_command.items():
        s = services.get(name, {})
        check(s.get("command") == command, f"docker-compose.yml: {name} runs {s.get('command')} instead of {command}")
        check("DATABASE_URL" in s.get("environment", {}), f"docker-compose.yml: {name} has no DATABASE_URL")
    for name in ["web", "worker"]:
        dep = services.get(name, {}).get("depends_on", {}).get("migrate", {})
        check(dep.get("condition") == "service_completed_successfully", f"docker-compose.yml: {name} does not wait for migrate to complete")
    for name in ["migrate", "worker"]:
        check(services.get(name, {}).get("healthcheck", {}).get("disable") is True, f"docker-compose.yml: {name} keeps the image's HTTP health check")
    check(services.get("migrate", {}).get("restart") == "no", "docker-compose.yml: migrate is restarted")
    db = services.get("db", {})
    check(str(db.get("image", "")).startswith("postgres:16"), "docker-compose.yml: db is not postgres:16")
    check("healthcheck" in db, "docker-compose.yml: db has no health check")
    check(any(str(v).endswith(":/var/lib/postgresql/data") for v in db.get("volumes", [])) and "pgdata" in (compose.get("volumes") or {}), "docker-compose.yml: the database is not on a named volume")
    nginx = services.get("nginx", {})
    check(str(nginx.get("image", "")).startswith("nginx"), "docker-compose.yml: nginx is not the official image")
    for volume in nginx.get("volumes", []):
        source = str(volume).split(":")[0]
        if source.startswith("./deploy/nginx/"):
            for site in ["switchboard.conf", "switchboard-http.conf"] if "${NGINX_SITE" in source else [source[len("./deploy/nginx/"):]]:
                check((ROOT / "deploy" / "nginx" / site).exists(), f"docker-compose.yml: nginx mounts deploy/nginx/{site}, which does not exist")

    # Every variable compose reads is documented in .env.example, and every variable the
    # program reads can be set through .env.
    example = env_example()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    for var in sorted(used - set(example)):
        problem(f"docker-compose.yml reads ${{{var}}}, which .env.example does not document")
    app_env = services.get("web", {}).get("environment", {})
    fixed = {"SWITCHBOARD_BIND", "SWITCHBOARD_TRUST_PROXY", "DATABASE_URL", "SWITCHBOARD_DATA_DIR", "SWITCHBOARD_MASTER_KEY_FILE"}
    for var in sorted(config_variables() - fixed):
        check(var in app_env, f"{var} (src/config.rs) is not passed by docker-compose.yml")
        check(var in example, f"{var} (src/config.rs) is not in .env.example")
    for var in sorted(set(example) - used):
        problem(f".env.example documents {var}, which docker-compose.yml does not read")


def dockerignore_patterns() -> list[str]:
    pats = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(("!" if line.startswith("!") else "") + line.lstrip("!").strip("/"))
    return pats


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path (or a directory above it)
    decides; a `!pattern` takes the path back in."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        negated = raw.startswith("!")
        pat = raw[1:] if negated else raw
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pat) or (
                pat.startswith("**/") and fnmatch.fnmatchcase(prefix.split("/")[-1], pat[3:])
            ):
                result = not negated
                break
    return result


def build_inputs() -> set[str]:
    """Files and directories `cargo build --release --bin switchboard` reads."""
    inputs = {"Cargo.toml", "Cargo.lock", "src", "crates"}
    manifests = [ROOT / "Cargo.toml", *sorted(ROOT.glob("crates/*/Cargo.toml"))]
    defaults = {"bin": "src/bin/{}.rs", "bench": "benches/{}.rs", "test": "tests/{}.rs", "example": "examples/{}.rs"}
    for manifest in manifests:
        base = manifest.parent.relative_to(ROOT)
        data = tomllib.loads(manifest.read_text())
        for kind, default in defaults.items():
            for target in data.get(kind, []):
                path = target.get("path") or default.format(target["name"])
                inputs.add(str(base / path))
        if (manifest.parent / "build.rs").exists():
            inputs.add(str(base / "build.rs"))
    # What the code embeds: include_str!/include_bytes!/sqlx::migrate!/embed_templates!
    # paths, relative to the file that names them.
    embed = re.compile(r'(?:include_str|include_bytes|migrate|embed_templates)!\(\s*"([^"]+)"')
    for source in [*ROOT.glob("src/**/*.rs"), *ROOT.glob("crates/*/src/**/*.rs"), *ROOT.glob("crates/*/build.rs")]:
        if "/testkit/" in str(source):
            continue
        for rel in embed.findall(source.read_text()):
            # sqlx::migrate! and minijinja_embed paths are relative to the crate's manifest.
            crate_dir = next(p for p in source.parents if (p / "Cargo.toml").exists())
            for base in (source.parent, crate_dir):
                target = (base / rel).resolve()
                if target.exists():
                    inputs.add(str(target.relative_to(ROOT)))
                    break
    # build.rs of the web crate walks ../../static.
    inputs.add("static")
    # Scripts the Dockerfile runs (the model of the semantic stage).
    for script in re.findall(r"\b(scripts/[\w.-]+)", (ROOT / "Dockerfile").read_text()):
        inputs.add(script)
    return inputs


def check_docker() -> None:
    patterns = dockerignore_patterns()
    for path in sorted(build_inputs()):
        check(not ignored(path, patterns), f".dockerignore excludes {path}, which the build needs")
    for path in ["target", ".git", ".data", "target/release/switchboard"]:
        check(ignored(path, patterns), f".dockerignore does not exclude {path}")

    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        raw = raw.rstrip()
        if raw.lstrip().startswith("#"):
            continue  # comments, also inside a continued instruction
        if raw.endswith("\\"):
            current += raw[:-1].strip() + " "
            continue
        current += raw.strip()
        if current:
            lines.append(current)
        current = ""
    instr = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]
    froms = [arg for op, arg in instr if op == "FROM"]
    check(len(froms) == 2, f"Dockerfile: {len(froms)} stages instead of 2")
    if len(froms) == 2:
        check(froms[0].startswith("rust:") and " AS build" in froms[0], f"Dockerfile: the build stage is {froms[0]}")
        check(froms[1].startswith("debian:") and "-slim" in froms[1], f"Dockerfile: the runtime stage is {froms[1]}")
    runs = " ".join(arg for op, arg in instr if op == "RUN")
    check("cargo build --release --bin switchboard --locked" in runs, "Dockerfile: no `cargo build --release --bin switchboard --locked`")
    check("ca-certificates" in runs, "Dockerfile: no ca-certificates")
    users = [arg for op, arg in instr if op == "USER"]
    check(bool(users) and users[-1].split(":")[0] not in ("0", "root"), "Dockerfile: the image runs as root")
    check(("EXPOSE", "8080") in instr, "Dockerfile: no EXPOSE 8080")
    health = [arg for op, arg in instr if op == "HEALTHCHECK"]
    check(bool(health) and "/healthz" in health[0], "Dockerfile: no HEALTHCHECK on /healthz")
    if health and "curl" in health[0]:
        check(re.search(r"apt-get install[^&]*\bcurl\b", runs) is not None, "Dockerfile: the HEALTHCHECK uses curl, which is not installed")
    for op, expected in [("ENTRYPOINT", ["switchboard"]), ("CMD", ["serve", "--no-jobs"])]:
        found = [arg for o, arg in instr if o == op]
        try:
            ok = bool(found) and json.loads(found[-1]) == expected
        except json.JSONDecodeError:
            ok = False
        check(ok, f"Dockerfile: {op} is not {json.dumps(expected)}")
    env = " ".join(arg for op, arg in instr if op == "ENV")
    check("SWITCHBOARD_BIND=0.0.0.0:8080" in env, "Dockerfile: SWITCHBOARD_BIND is not 0.0.0.0:8080 (the app would listen on the container's loopback)")


def check_cli() -> None:
    """The subcommands the deployment files run exist."""
    main = (ROOT / "src" / "main.rs").read_text()
    for variant in ["Serve", "Worker", "Migrate", "Superuser"]:
        check(re.search(rf"^\s*{variant}\b", main, re.M) is not None, f"src/main.rs has no `{variant.lower()}` subcommand, which the deployment files use")
    check("no_jobs" in main, "src/main.rs: `serve` has no --no-jobs")


def main() -> int:
    what = sys.argv[1:] or ["files", "chart"]
    for w in what:
        if w == "chart":
            check_chart()
        elif w == "files":
            check_compose()
            check_docker()
            check_cli()
        else:
            print(f"unknown check {w!r}", file=sys.stderr)
            return 2
    for p in problems:
        print(f"  PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
