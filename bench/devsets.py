"""What the development-set scripts share: a file from a Debian package, and the hash that holds out half.

Used by bench/manpages_devset.py, bench/debianfaq_devset.py and bench/edu_devset.py (run as
scripts from the repository, so this module sits beside them). Needs apt-get and dpkg-deb.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path


def debian_file(work: Path, package: str, path: str) -> Path:
    """`path` inside the Debian package `package`, which is downloaded into `work` and unpacked into
    `work/package` the first time (several packages may share that folder)."""
    target = work / "package" / path
    if target.exists():
        return target
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", package], cwd=work, check=True, capture_output=True)
    deb = max(work.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "package")], check=True)
    if not target.exists():
        sys.exit(f"{deb.name} holds no {path}: the package changed; update the script")
    return target


def held_out(collection: str, key: str) -> bool:
    """Whether `key` (a section) of `collection` goes to the held-out half: a fixed hash, not a choice."""
    return hashlib.sha256(f"{collection} {key}".encode()).digest()[0] % 2 == 1
