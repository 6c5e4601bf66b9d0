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

exec "$PYTHON" "$SCRIPT_DIR/check_deploy.py" "$@"
