"""Summarise a pip-audit JSON report: vulnerable and unaudited packages.

Exit 1 when a package has a known vulnerability. Packages that the vulnerability
service did not know are counted and named in a warning, so a partial or empty
audit is visible in the CI log.

NOTE: on the development machines of 2026-12-05, PyPI's per-version JSON API
(``/pypi/<name>/<version>/json``, which pip-audit 2.10.1 queries) returned 404 for
every locked version, so no package was audited. A failed request, as when the
network is down, still makes pip-audit itself exit non-zero.
"""

import json
import sys
from pathlib import Path


def main(report_path: str) -> int:
    """Print the summary of the report at ``report_path``; return the exit status."""
    dependencies = json.loads(Path(report_path).read_text(encoding="utf-8"))["dependencies"]
    skipped = [item for item in dependencies if "skip_reason" in item]
    audited = [item for item in dependencies if "skip_reason" not in item]
    vulnerable = [item for item in audited if item.get("vulns")]

    for item in vulnerable:
        ids = ", ".join(vuln["id"] for vuln in item["vulns"])
        print(f"pip-audit: {item['name']} {item['version']} is vulnerable: {ids}")
    if skipped:
        names = ", ".join(item["name"] for item in skipped)
        print(f"pip-audit: WARNING: {len(skipped)} of {len(dependencies)} packages were not")
        print(f"  audited, because the vulnerability service did not know them: {names}")
    print(
        f"pip-audit: {len(audited)} packages audited, {len(vulnerable)} vulnerable,"
        f" {len(skipped)} not audited"
    )
    if not audited:
        print("pip-audit: WARNING: no package could be audited")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
