#!/usr/bin/env python3
"""Checks the deployment artefacts offline; run it through scripts/check-deploy.sh.

1. Kubernetes: renders deploy/k8s/base and every overlay (with `kubectl kustomize` or
   `kustomize build` when installed, and always with the small renderer below, which must
   agree with them), validates every manifest against the Kubernetes JSON schemas of
   kubernetes-validate (strict: unknown fields are errors) and the RabbitmqCluster against
   deploy/k8s/schemas/, and checks the references between objects (probes, ports, Services,
   PDBs, HPAs, ConfigMaps, Secrets).
2. deploy/compose.yaml: parsed with PyYAML and checked for structure (dependencies, one-shot
   migrations, health checks on /health/ready).
3. Settings: every APP_* variable a manifest or the compose file gives a container must be a
   setting the binary that container runs reads. The settings each binary reads are derived
   from the Rust source: its `Settings` struct in <service>/src/config.rs and the structs it
   names in crates/*/src, with serde's rules (Option and #[serde(default)] fields need no
   default); each service's config/base.toml must then consist of exactly such keys.
4. Dockerfile: multi-stage, builds and copies all five binaries, ends as a non-root user.

Every problem is printed as a FINDING and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSIONS = ["1.29.0", "1.33.0"]  # the oldest and a current release we mean to support

# binary -> crate folder with src/config.rs and config/base.toml
SERVICES = {
    "tracker": "tracker",
    "sync-worker": "sync-worker",
    "auth": "auth",
    "devices": "devices",
    "web": "web",
}
# Where the structs a service's Settings names are defined.
SHARED_STRUCT_DIRS = ["crates/service-kit/src", "crates/access/src", "crates/bus/src"]
# Sub-commands that run a long-lived server (health checks, probes) and those that migrate.
SERVER_ROLES = {"tracker": "serve", "sync-worker": "run", "auth": "serve", "devices": "serve", "web": "serve"}
MIGRATE_ROLE = "migrate"
# Read by service_kit::config::load itself, not a setting.
SPECIAL_ENV = {"APP_CONFIG_FILE"}

findings: list[str] = []


def finding(msg: str) -> None:
    findings.append(msg)
    print(f"  FINDING: {msg}")


def ok(msg: str, since: int | None = None) -> None:
    """Reports a finished check: `ok` if it found nothing since finding number `since`."""
    if since is not None and len(findings) > since:
        print(f"  done, with {len(findings) - since} finding(s): {msg}")
    else:
        print(f"  ok: {msg}")


# --------------------------------------------------------------------------- settings model ---


class Unsupported(Exception):
    """The Rust or kustomize source uses something this checker does not model."""


INT_TYPES = {"u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize"}
# Types a setting reads from one string. TrustedProxies (service_kit::client) parses a
# comma-separated list of addresses and CIDR blocks, which is what an environment variable gives.
STRING_TYPES = {"String", "SecretString", "TrustedProxies"}


def rust_structs(text: str, origin: str) -> dict[str, dict]:
    """`pub struct Name { pub field: Type, ... }` with derive(Deserialize), outside test modules."""
    text = text.split("#[cfg(test)]", 1)[0]
    structs = {}
    for m in re.finditer(r"((?:#\[[^\]]*\]\s*|///[^\n]*\n\s*)*)pub struct (\w+)\s*\{(.*?)\n\}", text, re.S):
        attrs, name, body = m.group(1), m.group(2), m.group(3)
        if "Deserialize" not in attrs:
            continue
        struct_default = bool(re.search(r"#\[serde\([^\]]*\bdefault\b", attrs))
        # A struct the model cannot read is refused only if a Settings struct uses it (see
        # model_of): the shared crates also hold request bodies and API filters.
        unsupported = next((f"{origin}: struct {name} uses #[serde({bad}...)]"
                            for bad in ("rename", "flatten", "alias", "deny_unknown_fields", "untagged", "tag =")
                            if re.search(r"#\[serde\([^\]]*\b" + bad, attrs)), None)
        if unsupported:
            structs[name] = {"fields": {}, "origin": origin, "unsupported": unsupported}
            continue
        fields = {}
        pending: list[str] = []
        for line in body.splitlines():
            s = line.strip()
            if not s or s.startswith("//"):
                continue
            if s.startswith("#["):
                pending.append(s)
                continue
            fm = re.match(r"pub (\w+)\s*:\s*(.+?),?$", s)
            if not fm:
                raise Unsupported(f"{origin}: cannot read the line {s!r} of struct {name}")
            serde = " ".join(a for a in pending if a.startswith("#[serde"))
            # Like a struct-level attribute above, a renamed or skipped field is refused only
            # if a Settings struct uses this struct (model_of): an API body such as
            # service-kit's Problem may rename what it likes.
            unsupported = next((f"{origin}: {name}.{fm.group(1)} uses #[serde({bad}...)]"
                                for bad in ("rename", "flatten", "alias", "skip")
                                if re.search(r"\b" + bad + r"\b", serde)), None)
            if unsupported:
                break
            fields[fm.group(1)] = {"type": fm.group(2).strip(), "default": struct_default or "default" in serde}
            pending = []
        if unsupported:
            structs[name] = {"fields": {}, "origin": origin, "unsupported": unsupported}
            continue
        structs[name] = {"fields": fields, "origin": origin}
    return structs


def shared_structs() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for d in SHARED_STRUCT_DIRS:
        for f in sorted((ROOT / d).rglob("*.rs")):
            for name, s in rust_structs(f.read_text(), str(f.relative_to(ROOT))).items():
                if name in found and found[name]["fields"] != s["fields"]:
                    raise Unsupported(f"struct {name} is defined differently in {found[name]['origin']} and {s['origin']}")
                found[name] = s
    return found


def classify(rust_type: str, structs: dict[str, dict], where: str) -> dict:
    t = rust_type.replace(" ", "")
    optional = False
    m = re.fullmatch(r"Option<(.+)>", t)
    if m:
        optional, t = True, m.group(1)
    m = re.fullmatch(r"Vec<(.+)>", t)
    if m:
        return {"kind": "list", "optional": optional}
    m = re.fullmatch(r"(?:std::collections::)?(?:BTreeMap|HashMap)<String,(.+)>", t)
    if m:
        return {"kind": "map", "optional": optional, "value": classify(m.group(1), structs, where)}
    last = t.split("::")[-1]
    if last in structs:
        return {"kind": "struct", "optional": optional, "fields": model_of(last, structs)}
    if last in STRING_TYPES:
        return {"kind": "string", "optional": optional}
    if last in INT_TYPES:
        return {"kind": "int", "optional": optional}
    if last == "bool":
        return {"kind": "bool", "optional": optional}
    if last in ("f32", "f64"):
        return {"kind": "float", "optional": optional}
    raise Unsupported(f"{where}: the type {rust_type} is not modelled")


def model_of(struct: str, structs: dict[str, dict]) -> dict[str, dict]:
    if "unsupported" in structs[struct]:
        raise Unsupported(structs[struct]["unsupported"])
    out = {}
    for field, info in structs[struct]["fields"].items():
        node = classify(info["type"], structs, f"{structs[struct]['origin']}: {struct}.{field}")
        node["has_serde_default"] = info["default"]
        out[field] = node
    return out


def settings_model(service: str, shared: dict[str, dict]) -> dict[str, dict]:
    path = ROOT / SERVICES[service] / "src/config.rs"
    own = rust_structs(path.read_text(), str(path.relative_to(ROOT)))
    if "Settings" not in own:
        raise Unsupported(f"{path}: no `pub struct Settings`")
    return model_of("Settings", {**shared, **own})


def check_base_toml(service: str, model: dict) -> None:
    """base.toml must consist of settings the struct reads, and give every required one."""
    path = ROOT / SERVICES[service] / "config/base.toml"
    base = tomllib.loads(path.read_text())
    rel = path.relative_to(ROOT)

    def walk(tree: dict, fields: dict, prefix: str) -> None:
        for key, value in tree.items():
            name = f"{prefix}{key}"
            if key not in fields:
                finding(f"{rel}: `{name}` is not a field of {service}'s Settings (a dead default?)")
                continue
            node = fields[key]
            if node["kind"] == "struct":
                if not isinstance(value, dict):
                    finding(f"{rel}: `{name}` should be a table")
                else:
                    walk(value, node["fields"], name + ".")
        for key, node in fields.items():
            if key not in tree and not node["optional"] and not node["has_serde_default"]:
                if node["kind"] == "struct" and all(n["optional"] or n["has_serde_default"] for n in node["fields"].values()):
                    continue
                finding(f"{rel}: the required setting `{prefix}{key}` has no default, so every deployment must set it")

    walk(base, model, "")


def env_key_path(name: str) -> list[str]:
    """What service_kit::config::load makes of an environment variable (config-rs 0.15:
    lowercased, prefix `app_`, `__` between levels)."""
    return name.lower()[len("app_"):].split("__")


def check_setting(binary: str, model: dict, name: str, value, where: str) -> None:
    if name in SPECIAL_ENV:
        return
    path = env_key_path(name)
    fields, node, walked = model, None, []
    for seg in path:
        if fields is None:
            finding(f"{where}: {name} -> `{'.'.join(path)}`: `{'.'.join(walked)}` has no sub-settings in {binary}")
            return
        if fields == "map":
            node, fields = map_value, None
            walked.append(seg)
            continue
        if seg not in fields:
            known = ", ".join(sorted(fields))
            finding(f"{where}: {name} -> `{'.'.join(path)}` is not a setting {binary} reads "
                    f"(`{'.'.join(walked) or 'top level'}` has: {known})")
            return
        node = fields[seg]
        walked.append(seg)
        if node["kind"] == "struct":
            fields = node["fields"]
        elif node["kind"] == "map":
            fields, map_value = "map", node["value"]
        else:
            fields = None
    if node is None or node["kind"] in ("struct", "map") and fields is not None:
        finding(f"{where}: {name} names the section `{'.'.join(path)}` of {binary}, not one setting")
        return
    if node["kind"] == "list":
        finding(f"{where}: {name}: `{'.'.join(path)}` is a list, which the environment cannot set "
                f"(no list separator is configured); use a file named by APP_CONFIG_FILE")
        return
    if value is None:  # from a Secret or an interpolated variable: the type is not checked
        return
    v = str(value)
    if node["kind"] == "int" and not re.fullmatch(r"-?[0-9]+", v):
        finding(f"{where}: {name}={v!r}: `{'.'.join(path)}` is an integer in {binary}")
    elif node["kind"] == "bool" and v.lower() not in ("true", "false"):
        finding(f"{where}: {name}={v!r}: `{'.'.join(path)}` is true or false in {binary}")


def effective(model: dict, env: dict, section: str, key: str, default_toml: dict):
    name = f"APP_{section.upper()}__{key.upper()}"
    if name in env:
        return env[name]
    return default_toml.get(section, {}).get(key)


# ------------------------------------------------------------------------------ kustomize ---

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "IngressClass"}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}


def pointer(path: str) -> list:
    if not path.startswith("/"):
        raise Unsupported(f"JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_json6902(doc: dict, ops: list, where: str) -> None:
    for op in ops:
        kind = op.get("op")
        parts = pointer(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if kind == "replace":
            if isinstance(parent, list):
                parent[int(last)] = op["value"]
            else:
                if last not in parent:
                    raise Unsupported(f"{where}: replace of missing {op['path']}")
                parent[last] = op["value"]
        elif kind == "add":
            if isinstance(parent, list):
                parent.append(op["value"]) if last == "-" else parent.insert(int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise Unsupported(f"{where}: JSON6902 op {kind!r}")


def pod_specs(doc: dict):
    spec = doc.get("spec") or {}
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield spec.get("template", {}).get("spec", {})
    elif doc.get("kind") == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif doc.get("kind") == "Pod":
        yield spec


def containers(doc: dict):
    for ps in pod_specs(doc):
        for c in ps.get("initContainers", []) or []:
            yield c
        for c in ps.get("containers", []) or []:
            yield c


def split_image(image: str):
    if "@" in image:
        return image.split("@", 1)[0], None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, None


def render_python(directory: Path) -> list[dict]:
    kfile = directory / "kustomization.yaml"
    k = yaml.safe_load(kfile.read_text())
    extra = set(k) - KUSTOMIZATION_FIELDS
    if extra:
        raise Unsupported(f"{kfile.relative_to(ROOT)}: {sorted(extra)} (the offline renderer implements "
                          f"{sorted(KUSTOMIZATION_FIELDS - {'apiVersion', 'kind'})})")
    docs: list[dict] = []
    for r in k.get("resources", []):
        p = (directory / r).resolve()
        if p.is_dir():
            docs += render_python(p)
        else:
            docs += [d for d in yaml.safe_load_all(p.read_text()) if d]
    for i, patch in enumerate(k.get("patches", []) or []):
        where = f"{kfile.relative_to(ROOT)} patches[{i}]"
        target = patch.get("target") or {}
        if set(target) - {"kind", "name"} or set(patch) - {"target", "patch", "path"}:
            raise Unsupported(f"{where}: only target kind/name and patch/path are implemented")
        ops = yaml.safe_load(patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text())
        if not isinstance(ops, list):
            raise Unsupported(f"{where}: only JSON6902 patches (a list of ops) are implemented")
        hits = [d for d in docs if d.get("kind") == target.get("kind", d.get("kind"))
                and d["metadata"]["name"] == target.get("name", d["metadata"]["name"])]
        if not hits:
            finding(f"{where}: the target {target} matches nothing")
        for d in hits:
            apply_json6902(d, ops, where)
    for img in k.get("images", []) or []:
        for d in docs:
            for c in containers(d):
                name, tag = split_image(c.get("image", ""))
                if name == img["name"]:
                    new = img.get("newName", name)
                    if "digest" in img:
                        c["image"] = f"{new}@{img['digest']}"
                    else:
                        t = img.get("newTag", tag)
                        c["image"] = f"{new}:{t}" if t else new
    if "namespace" in k:
        for d in docs:
            if d.get("kind") not in CLUSTER_SCOPED:
                d.setdefault("metadata", {})["namespace"] = k["namespace"]
    return docs


def render_tool(directory: Path):
    """(name of the tool, rendered docs), or None when no kustomize is installed."""
    if shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(directory)]
    elif shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(directory)]
    else:
        return None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        finding(f"{' '.join(cmd[:2])} {directory.relative_to(ROOT)} failed: {out.stderr.strip()}")
        return cmd[0], []
    return cmd[0], [d for d in yaml.safe_load_all(out.stdout) if d]


def key_of(d: dict):
    return (d.get("kind"), d.get("metadata", {}).get("namespace"), d.get("metadata", {}).get("name"))


# -------------------------------------------------------------------------- k8s checks ---


def validate_schemas(docs: list[dict], label: str) -> None:
    import jsonschema
    import kubernetes_validate

    start = len(findings)
    crd_schema = json.loads((ROOT / "deploy/k8s/schemas/rabbitmqcluster-rabbitmq-v1beta1.json").read_text())
    counts: dict[str, int] = {}
    for d in docs:
        what = f"{label}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if d.get("apiVersion") == "rabbitmq.com/v1beta1" and d.get("kind") == "RabbitmqCluster":
            errors = list(jsonschema.Draft7Validator(crd_schema).iter_errors(d))
            for e in errors:
                finding(f"{what} (schema written from the operator's API reference): "
                        f"{'/'.join(map(str, e.absolute_path))}: {e.message}")
            counts["RabbitmqCluster (own schema)"] = counts.get("RabbitmqCluster (own schema)", 0) + 1
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                finding(f"{what} against Kubernetes {version}: {'/'.join(map(str, e.path))}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                finding(f"{what}: no Kubernetes {version} schema for {d.get('apiVersion')} {d.get('kind')}")
        counts[d.get("kind")] = counts.get(d.get("kind"), 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    ok(f"{label}: {len(docs)} manifests validated (strict) against Kubernetes {' and '.join(K8S_VERSIONS)}: {summary}",
       start)


def binary_of(argv) -> tuple[str | None, str | None]:
    if isinstance(argv, str):
        argv = argv.split()
    if not argv:
        return None, None
    return os.path.basename(str(argv[0])), (str(argv[1]) if len(argv) > 1 else None)


def check_k8s(docs: list[dict], label: str, models: dict, bases: dict) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    cms, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
    deployments = by_kind.get("Deployment", {})
    checked_settings = 0
    start = len(findings)

    def data_keys(obj: dict) -> dict:
        return {**(obj.get("data") or {}), **(obj.get("stringData") or {})}

    for d in docs:
        for ps in pod_specs(d):
            if ps.get("enableServiceLinks", True) is not False:
                finding(f"{label}: {d['kind']}/{d['metadata']['name']}: set enableServiceLinks: false "
                        f"(a Service named `app` would inject APP_* variables)")
        for c in containers(d):
            where = f"{label}: {d['kind']}/{d['metadata']['name']} container {c['name']}"
            binary, role = binary_of(c.get("command") or c.get("args"))
            # envFrom first: a variable in env wins over one of the same name from envFrom.
            env: dict[str, object] = {}
            for ef in c.get("envFrom", []) or []:
                prefix = ef.get("prefix", "")
                if "configMapRef" in ef:
                    name = ef["configMapRef"]["name"]
                    if name not in cms:
                        finding(f"{where}: envFrom names the missing ConfigMap {name}")
                    for k, v in data_keys(cms.get(name, {})).items():
                        env[prefix + k] = v
                if "secretRef" in ef:
                    name = ef["secretRef"]["name"]
                    if name not in secrets:
                        finding(f"{where}: envFrom names the missing Secret {name}")
                    for k in data_keys(secrets.get(name, {})):
                        env[prefix + k] = None
            for e in c.get("env", []) or []:
                vf = e.get("valueFrom")
                if vf and "secretKeyRef" in vf:
                    ref = vf["secretKeyRef"]
                    if ref["name"] not in secrets:
                        finding(f"{where}: {e['name']} names the missing Secret {ref['name']}")
                    elif ref["key"] not in data_keys(secrets[ref["name"]]):
                        finding(f"{where}: {e['name']} names the missing key {ref['key']} of Secret {ref['name']}")
                    env[e["name"]] = None
                elif vf and "configMapKeyRef" in vf:
                    ref = vf["configMapKeyRef"]
                    env[e["name"]] = data_keys(cms.get(ref["name"], {})).get(ref["key"])
                    if ref["name"] not in cms or env[e["name"]] is None:
                        finding(f"{where}: {e['name']} names the missing {ref['name']}/{ref['key']}")
                else:
                    env[e["name"]] = e.get("value", "")
            app_vars = [n for n in env if n.upper().startswith("APP_")]
            if binary not in SERVICES:
                if app_vars:
                    finding(f"{where}: sets {app_vars} but runs {binary!r}, which is not a kitchen service")
                if "kitchen" in c.get("image", "") and binary is None:
                    finding(f"{where}: no command: the image's default is `tracker --help`")
                continue
            for n in app_vars:
                check_setting(binary, models[binary], n, env[n], where)
                checked_settings += 1
            if role == SERVER_ROLES[binary]:
                host = effective(models[binary], env, "application", "host", bases[binary])
                port = str(effective(models[binary], env, "application", "port", bases[binary]))
                if host not in ("0.0.0.0", "::"):
                    finding(f"{where}: listens on {host} (APP_APPLICATION__HOST), unreachable from outside the pod")
                ports = {str(p.get("name")): str(p["containerPort"]) for p in c.get("ports", []) or []}
                if port not in ports.values():
                    finding(f"{where}: listens on {port} but declares container ports {sorted(ports.values())}")
                for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
                    hg = (c.get(probe) or {}).get("httpGet")
                    if not hg or hg.get("path") != path:
                        finding(f"{where}: {probe} must GET {path}")
                    elif str(ports.get(str(hg.get("port")), hg.get("port"))) != port:
                        finding(f"{where}: {probe} goes to port {hg.get('port')}, the service listens on {port}")
                res = c.get("resources") or {}
                if not (res.get("requests") or {}).get("cpu") or not (res.get("requests") or {}).get("memory"):
                    finding(f"{where}: no CPU and memory requests")
    ok(f"{label}: {checked_settings} APP_* settings of kitchen containers resolved and checked", start)
    start = len(findings)

    def pods_matching(selector: dict) -> list[str]:
        out = []
        for name, dep in deployments.items():
            labels = dep["spec"]["template"]["metadata"].get("labels", {})
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                out.append(name)
        return out

    for name, svc in by_kind.get("Service", {}).items():
        hits = pods_matching(svc["spec"].get("selector", {}))
        if not hits:
            finding(f"{label}: Service/{name} selects no Deployment's pods")
        for dep in hits:
            cports = {p.get("name"): p["containerPort"] for c in containers(deployments[dep]) for p in c.get("ports", []) or []}
            for p in svc["spec"]["ports"]:
                t = p.get("targetPort", p["port"])
                if t not in cports and t not in cports.values():
                    finding(f"{label}: Service/{name} targets port {t}, which Deployment/{dep} does not declare")
    for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        sel = pdb["spec"]["selector"]["matchLabels"]
        if name in ("kitchen-rabbitmq",):  # the operator's pods, not ours
            continue
        hits = pods_matching(sel)
        if not hits:
            finding(f"{label}: PodDisruptionBudget/{name} selects no Deployment's pods")
        for dep in hits:
            hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(dep)
            floor = hpa["spec"].get("minReplicas", 1) if hpa else deployments[dep]["spec"].get("replicas", 1)
            if pdb["spec"].get("minAvailable", 0) >= floor:
                finding(f"{label}: PodDisruptionBudget/{name} needs {pdb['spec']['minAvailable']} of at least "
                        f"{floor} pods of {dep}: a node drain could never evict one")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        dep = deployments.get(ref["name"]) if ref["kind"] == "Deployment" else None
        if dep is None:
            finding(f"{label}: HorizontalPodAutoscaler/{name} scales the missing {ref['kind']}/{ref['name']}")
            continue
        if "replicas" in dep["spec"]:
            finding(f"{label}: Deployment/{ref['name']} sets replicas although HorizontalPodAutoscaler/{name} "
                    f"owns it (every apply would reset the scale)")
        if hpa["spec"]["minReplicas"] < 2:
            finding(f"{label}: HorizontalPodAutoscaler/{name} allows a single replica")
    if "RabbitmqCluster" in by_kind:
        for name, rc in by_kind["RabbitmqCluster"].items():
            if rc["spec"].get("replicas", 1) < 3:
                finding(f"{label}: RabbitmqCluster/{name} has fewer than 3 nodes: quorum queues would not survive a node")
    jobs = [d for d in by_kind.get("Job", {}).values()
            if any(binary_of(c.get("command"))[1] == MIGRATE_ROLE for c in containers(d))]
    migrated = {binary_of(c.get("command"))[0] for j in jobs for c in containers(j)}
    for binary in SERVICES:
        if binary != "web" and binary not in migrated:
            finding(f"{label}: no Job runs `{binary} migrate`")
    ok(f"{label}: Services, PDBs, HPAs, the RabbitmqCluster and the migration Job cross-checked", start)


# ----------------------------------------------------------------------- compose checks ---

CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def check_compose(path: Path, models: dict, bases: dict) -> None:
    label = str(path.relative_to(ROOT))
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        finding(f"{label}: no services")
        return
    for key in doc:
        if key not in ("name", "services", "volumes", "networks", "configs", "secrets") and not key.startswith("x-"):
            finding(f"{label}: unknown top-level key {key!r}")
    start = len(findings)
    volumes = set((doc.get("volumes") or {}).keys())
    for text in re.findall(r"\$\{[^}]*\}?", path.read_text()):
        if not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+])[^}]*)?\}", text):
            finding(f"{label}: malformed interpolation {text!r}")
    settings = 0
    for name, svc in services.items():
        where = f"{label}: {name}"
        if not isinstance(svc, dict) or not ("image" in svc or "build" in svc):
            finding(f"{where}: neither image nor build")
            continue
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            cond = (spec or {}).get("condition", "service_started")
            if dep not in services:
                finding(f"{where}: depends on the unknown service {dep}")
            elif cond not in CONDITIONS:
                finding(f"{where}: unknown depends_on condition {cond}")
            elif cond == "service_healthy" and "healthcheck" not in services[dep]:
                finding(f"{where}: waits for {dep} to be healthy, which has no healthcheck")
            elif cond == "service_completed_successfully" and services[dep].get("restart", "no") not in ("no", "on-failure"):
                finding(f"{where}: waits for {dep} to complete, but {dep} restarts {services[dep].get('restart')}")
        for v in svc.get("volumes", []) or []:
            src = v.split(":", 1)[0] if isinstance(v, str) else v.get("source")
            if src and not src.startswith((".", "/", "~", "$")) and src not in volumes:
                finding(f"{where}: the volume {src} is not declared under volumes:")
            if src and src.startswith(".") and not (path.parent / src).exists():
                finding(f"{where}: the bind-mounted {src} does not exist")
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict((e.split("=", 1) + [None])[:2] for e in env)
        binary, role = binary_of(svc.get("entrypoint") or svc.get("command"))
        app_vars = [n for n in env if n.upper().startswith("APP_")]
        if binary not in SERVICES:
            if app_vars:
                finding(f"{where}: sets {app_vars} but runs {binary!r}, which is not a kitchen service")
            if "kitchen" in str(svc.get("image", "")) and binary is None:
                finding(f"{where}: no command: the image's default is `tracker --help`")
            continue
        for n in app_vars:
            v = env[n]
            check_setting(binary, models[binary], n, None if v is None or "${" in str(v) else v, where)
            settings += 1
        if role == MIGRATE_ROLE:
            if svc.get("restart", "no") != "no":
                finding(f"{where}: a one-shot migration must not restart (restart: {svc.get('restart')})")
        elif role == SERVER_ROLES[binary]:
            host = effective(models[binary], env, "application", "host", bases[binary])
            port = str(effective(models[binary], env, "application", "port", bases[binary]))
            if host not in ("0.0.0.0", "::"):
                finding(f"{where}: listens on {host}, unreachable from other containers")
            test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test", [])))
            if f":{port}/health/ready" not in test:
                finding(f"{where}: the healthcheck must GET /health/ready on port {port} (it runs {test!r})")
            if binary != "web":
                gates = [d for d, s in deps.items() if d in services
                         and (s or {}).get("condition") == "service_completed_successfully"
                         and binary_of(services[d].get("command")) == (binary, MIGRATE_ROLE)]
                if not gates:
                    finding(f"{where}: does not wait (service_completed_successfully) for a `{binary} migrate` service")
        else:
            finding(f"{where}: runs `{binary} {role}`, neither the server role nor migrate")
    ok(f"{label}: {len(services)} services; dependencies, one-shot migrations, health checks and "
       f"{settings} APP_* settings checked", start)


# --------------------------------------------------------------------------- Dockerfile ---


def check_dockerfile(path: Path) -> None:
    """The image the manifests name: every binary built and copied, a non-root user."""
    start = len(findings)
    label = str(path.relative_to(ROOT))
    text = re.sub(r"\\\n", " ", path.read_text())
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    if len(stages) < 2:
        finding(f"{label}: not a multi-stage build ({len(stages)} FROM)")
    builds = " ".join(re.findall(r"cargo build[^\n]*", text))
    for binary in SERVICES:
        if not re.search(r"-p\s+" + re.escape(binary) + r"\b", builds):
            finding(f"{label}: `cargo build` does not build -p {binary}")
        if not re.search(r"target/release/" + re.escape(binary) + r"\b", text):
            finding(f"{label}: target/release/{binary} is not copied out of the build stage")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("0", "root"):
        finding(f"{label}: the runtime image must end with a non-root USER (has {users or 'none'})")
    ignore = (path.parent / ".dockerignore")
    if not ignore.exists() or not re.search(r"^/?target/?$", ignore.read_text(), re.M):
        finding(f"{label}: .dockerignore must keep target/ out of the build context")
    ok(f"{label}: {len(stages)} stages, builds and copies {', '.join(SERVICES)}, runs as USER {users[-1] if users else '?'}",
       start)


# ------------------------------------------------------------------------------- main ---


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k8s", default="deploy/k8s", help="folder with base/ and overlays/*/")
    parser.add_argument("--compose", default="deploy/compose.yaml")
    args = parser.parse_args()
    k8s_dir, compose = ROOT / args.k8s, ROOT / args.compose

    print("settings each binary reads (from the Rust Settings structs, checked against config/base.toml):")
    shared = shared_structs()
    models, bases = {}, {}
    for binary, crate in SERVICES.items():
        models[binary] = settings_model(binary, shared)
        bases[binary] = tomllib.loads((ROOT / crate / "config/base.toml").read_text())
        start = len(findings)
        check_base_toml(binary, models[binary])

        def leaves(fields: dict, prefix: str):
            for k, n in fields.items():
                if n["kind"] == "struct":
                    yield from leaves(n["fields"], prefix + k + ".")
                else:
                    yield prefix + k + ("{.*}" if n["kind"] == "map" else "")
        names = list(leaves(models[binary], ""))
        maps = [n for n in names if n.endswith("{.*}")]
        ok(f"{binary}: {len(names)} settings, config/base.toml consistent with them"
           + (f" ({', '.join(maps)}: a map, any key is read)" if maps else ""), start)

    print("kubernetes manifests:")
    dirs = [k8s_dir / "base"] + sorted(p for p in (k8s_dir / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    for d in dirs:
        label = str(d.relative_to(ROOT))
        docs = render_python(d)
        tool = render_tool(d)
        if tool is None:
            print(f"  note: no kubectl or kustomize installed; {label} rendered by check_deploy.py alone "
                  f"(resources, namespace, images, JSON6902 patches)")
        else:
            name, tool_docs = tool
            mine = sorted((json.dumps(x, sort_keys=True) for x in docs))
            theirs = sorted((json.dumps(x, sort_keys=True) for x in tool_docs))
            if mine != theirs:
                only = {key_of(json.loads(x)) for x in set(mine) ^ set(theirs)}
                finding(f"{label}: {name} kustomize and check_deploy.py render differently: {sorted(map(str, only))}")
            else:
                ok(f"{label}: rendered by {name} kustomize and by check_deploy.py, identically ({len(docs)} objects)")
            docs = tool_docs or docs
        names = [key_of(x) for x in docs]
        for dup in {n for n in names if names.count(n) > 1}:
            finding(f"{label}: {dup} is defined twice")
        validate_schemas(docs, label)
        check_k8s(docs, label, models, bases)

    print("Dockerfile:")
    check_dockerfile(ROOT / "Dockerfile")

    print("compose:")
    check_compose(compose, models, bases)

    print()
    if findings:
        print(f"check-deploy: {len(findings)} finding(s)")
        return 1
    print("check-deploy: all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Unsupported as e:
        print(f"  FINDING: check_deploy.py cannot model this: {e}")
        sys.exit(1)
