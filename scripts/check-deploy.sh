#!/usr/bin/env bash
# Checks the deployment artefacts offline (no cluster, no Docker engine needed):
#   - deploy/k8s/base and every deploy/k8s/overlays/*: rendered (kubectl/kustomize when
#     installed, and always by scripts/check_deploy.py, which must agree), validated against
#     the Kubernetes schemas (kubernetes-validate, strict) and the RabbitmqCluster schema in
#     deploy/k8s/schemas/, and cross-checked (probes, ports, Services, PDBs, HPAs, Secrets);
#   - deploy/compose.yaml: parsed and checked for structure;
#   - every APP_* setting either one gives a container: a setting that container's binary reads
#     (from its Settings struct in Rust, checked against its config/base.toml).
#   - Dockerfile: multi-stage, builds and copies all five binaries, runs as non-root.
# Installs kubernetes-validate and PyYAML with pip if they are missing. Exits non-zero on any
# finding. Arguments go to scripts/check_deploy.py (--k8s DIR, --compose FILE).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || { echo "check-deploy: $PYTHON not found" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "check-deploy: needs Python 3.11 or later (tomllib)" >&2; exit 1; }

if ! "$PYTHON" -c 'import yaml, kubernetes_validate, jsonschema' >/dev/null 2>&1; then
    echo "check-deploy: pip install --quiet kubernetes-validate pyyaml" >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check kubernetes-validate pyyaml >&2 ||
        { echo "check-deploy: pip install failed" >&2; exit 1; }
fi

# The bus users of the Kubernetes definitions have exactly the rights scripts/lib.sh gives them
# in `make run` and `make test` (rmq_bus_user_rules, on the exchange `kitchen`).
# shellcheck source=scripts/lib.sh
rules=$(. "$SCRIPT_DIR/lib.sh" && rmq_bus_user_rules kitchen)
RULES=$rules "$PYTHON" - "$SCRIPT_DIR/../deploy/k8s/base/secrets.yaml" <<'PY' || exit 1
import json, os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
secret = next(d for d in docs if d["metadata"]["name"] == "kitchen-rabbitmq-definitions")
defs = json.loads(secret["stringData"]["definitions.json"])
have = {}
for u in defs["users"]:
    have.setdefault(u["name"], {})["tags"] = "-" if not u["tags"] else ",".join(u["tags"])
for p in defs["permissions"]:
    have[p["user"]].update(c=p["configure"], w=p["write"], r=p["read"])
for t in defs["topic_permissions"]:
    have[t["user"]].update(tw=t["write"], tr=t["read"], x=t["exchange"])
want = {}
for line in os.environ["RULES"].splitlines():
    u, tags, c, w, r, tw, tr = line.split(" ")
    want[u] = dict(tags=tags, c=c, w=w, r=r, tw=tw, tr=tr, x="kitchen")
if have != want:
    print("  FINDING: deploy/k8s/base/secrets.yaml: kitchen-rabbitmq-definitions differ from scripts/lib.sh rmq_bus_user_rules")
    sys.exit(1)
print("  ok: the RabbitMQ users of deploy/k8s match scripts/lib.sh")
PY

exec "$PYTHON" "$SCRIPT_DIR/check_deploy.py" "$@"
