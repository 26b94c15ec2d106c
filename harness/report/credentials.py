"""Check: no credentials hard-coded in the migrations, env.py or alembic.ini.

Three shapes, looked for line by line in every revision file, env.py and alembic.ini:

* a password in SQL: ``CREATE ROLE app LOGIN PASSWORD 'hunter2'``;
* a URL carrying a password: ``postgresql://app:hunter2@db/prod``;
* a literal assigned to a secret's name: ``DB_PASSWORD = "hunter2"``, ``api_key: 'x'``,
  ``password = hunter2`` in the ini file.

Values that are not secrets are skipped: templates filled in later (``{password}``,
``%(pw)s``, ``${PW}``, ``<password>``), masked ones (``***``), environment lookups (not a
literal, so never matched) and Alembic's own ini template ``driver://user:pass@localhost``.
Matches are shown masked: the report must not spread what it found.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable

from .context import Context
from .model import VERIFIED, VIOLATED, Section

_SQL_PASSWORD = re.compile(r"\bPASSWORD\s+E?'((?:[^']|'')*)'", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.\-]*://([^\s:/@'\"]+):([^\s@'\"/]+)@", re.IGNORECASE)
_SECRET_NAME = r"[\w.\-]*(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key)[\w.\-]*"
_PY_ASSIGNMENT = re.compile(
    rf"""["']?\b({_SECRET_NAME})["']?\s*[:=]\s*[rRbBuU]?(["'])([^"']+)\2""", re.IGNORECASE
)
_INI_ASSIGNMENT = re.compile(rf"^\s*[#;]?\s*({_SECRET_NAME})\s*[=:]\s*(\S.*?)\s*$", re.IGNORECASE)
_TEMPLATE = re.compile(r"[{}<>]|%\(|\$|^\*+$|^x+$|^\s*$", re.IGNORECASE)
_GENERIC_LOGINS = {("user", "pass"), ("user", "password"), ("username", "password")}


@dataclasses.dataclass(frozen=True)
class ExposedSecret:
    path: str
    line: int
    kind: str
    excerpt: str
    """The line, the secret replaced by ``***``."""


def check(ctx: Context) -> Section:
    files = [Path(ctx.settings.alembic_ini), Path(ctx.graph.script.env_py_location)]
    files += [Path(ctx.graph.revision(r).path) for r in ctx.graph.revisions]
    findings = [f for path in files for f in scan(path, shown=ctx.shown(path))]
    scanned = [ctx.shown(p) for p in files]
    evidence = {"files": scanned, "findings": [dataclasses.asdict(f) for f in findings]}
    if findings:
        where = sorted({f"{f.path}:{f.line}" for f in findings})
        status, summary = VIOLATED, (
            f"{len(findings)} hard-coded credential(s): {', '.join(where)}; read them from the "
            "environment or create roles NOLOGIN and grant them to login roles made outside "
            "the migrations"
        )
    else:
        status = VERIFIED
        summary = (f"no password in SQL, URL with credentials or literal secret in "
                   f"{len(files)} files (alembic.ini, env.py, {len(files) - 2} revisions)")
    locations = [ctx.shown(p) for p in files[:2]] + sorted(
        {ctx.shown(Path(p).parent) for p in files[2:]})
    command = 'grep -rnEi "password|://[^:/@ ]+:[^@ ]+@|secret|token|api_?key" ' + " ".join(locations)
    return Section("credentials", "Hard-coded credentials", status, summary, _body(evidence), evidence,
                   (command,))


def _body(evidence: dict) -> str:
    """The secrets found, or the files scanned, from the evidence alone."""
    if not evidence["findings"]:
        return "Files scanned: " + ", ".join(f"`{p}`" for p in evidence["files"])
    return "\n".join(["| where | what | line (secret masked) |", "|---|---|---|", *(
        f"| `{f['path']}:{f['line']}` | {f['kind']} | `{f['excerpt']}` |" for f in evidence["findings"])])


def scan(path: Path, *, shown: str) -> list[ExposedSecret]:
    """Every credential-looking literal in one file."""
    ini = path.suffix == ".ini"
    text = path.read_text(encoding="utf-8", errors="replace")
    return [
        ExposedSecret(shown, number, kind, line.strip().replace(secret, "***"))
        for number, line in enumerate(text.splitlines(), start=1)
        for kind, secret in _secrets(line, ini=ini)
    ]


def _secrets(line: str, *, ini: bool) -> Iterable[tuple[str, str]]:
    for match in _SQL_PASSWORD.finditer(line):
        if not _TEMPLATE.search(match.group(1)):
            yield "password in SQL", match.group(1)
    for match in _URL.finditer(line):
        user, password = match.group(1), match.group(2)
        if not _TEMPLATE.search(password) and (user.lower(), password.lower()) not in _GENERIC_LOGINS:
            yield "URL with credentials", password
    assignment = _INI_ASSIGNMENT.match(line) if ini else None
    if assignment and not _TEMPLATE.search(assignment.group(2)):
        yield f"secret in {assignment.group(1)}", assignment.group(2)
    for match in () if ini else _PY_ASSIGNMENT.finditer(line):
        if not _TEMPLATE.search(match.group(3)):
            yield f"secret in {match.group(1)}", match.group(3)
