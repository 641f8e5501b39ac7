#!/usr/bin/env bash
# Static and dependency security checks, run by `make test` (and so by CI):
#
# 1. bandit over the service's packages, configured in pyproject.toml. Each accepted
#    finding carries a `# nosec BXXX # reason` comment on its line.
# 2. pip-audit over every locked package (all dependency groups), read from uv.lock.
#    It queries PyPI's vulnerability API for each package, so it needs the network
#    and fails when PyPI cannot be reached. Packages for which PyPI returns "not
#    found" are named in a warning as not audited, and the check still passes.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
UV=.tools/bin/uv
REQUIREMENTS=var/requirements-audit.txt
REPORT=var/pip-audit.json

echo "bandit: scanning api geo matching models push store bench"
# bandit warns about a nosec on a multi-line statement whose other lines it does not flag.
# Those warnings are dropped. The findings and the exit status are kept.
"$BIN/bandit" -c pyproject.toml -r api geo matching models push store bench -q 2>&1 \
    | { grep -v "but no failed test on file" || true; }

mkdir -p var
"$UV" export --frozen --no-hashes --no-emit-project --all-groups --quiet -o "$REQUIREMENTS"
echo "pip-audit: $(grep -c '==' "$REQUIREMENTS") requirement lines exported from uv.lock"
# Exits non-zero on a known vulnerability and on a failed request (network down).
"$BIN/pip-audit" -r "$REQUIREMENTS" --no-deps --disable-pip --progress-spinner off \
    -f json -o "$REPORT"
"$BIN/python" scripts/pip_audit_summary.py "$REPORT"
