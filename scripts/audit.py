"""Dependency audit: fail on a known vulnerability in an installed dependency.

Runs pip-audit over the project's virtual environment. pip-audit needs a
vulnerability service (PyPI's JSON API or OSV); where neither is reachable, every
package comes back "could not be audited" and this script says so loudly, without
failing the build on missing data. A package with a known vulnerability always fails.

Run: .venv/bin/python scripts/audit.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    audit = ROOT / ".venv" / "bin" / "pip-audit"
    try:
        done = subprocess.run([str(audit), "-f", "json", "--progress-spinner", "off"], capture_output=True,
                              text=True, timeout=600, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"audit: pip-audit could not run ({exc}); install the test extra: scripts/setup.sh test")
        return 1
    try:
        report = json.loads(done.stdout)
    except ValueError:
        print("audit: pip-audit gave no report:\n" + done.stderr[-2000:])
        return 1
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = [d for d in dependencies if "skip_reason" not in d]
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"audit: {dependency['name']} {dependency['version']} has known vulnerabilities: {ids}")
    if vulnerable:
        return 1
    if not audited:
        print(f"audit: WARNING no vulnerability service was reachable; {len(dependencies)} packages "
              "could not be audited (nothing known to be vulnerable, nothing proven safe).")
        return 0
    print(f"audit: {len(audited)} packages audited, no known vulnerability "
          f"({len(dependencies) - len(audited)} could not be audited).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
