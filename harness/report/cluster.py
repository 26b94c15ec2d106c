"""Check: every cluster-wide change a migration makes, named per revision.

Roles, role memberships and per-role settings, databases, tablespaces and ``ALTER SYSTEM`` live
in the cluster, not in the migrated database: on the user's server each such change reaches
every database, and dropping the migrated database does not undo it. So the document names
them, per revision and direction, from what the migrations did rather than from their text
(a ``DO`` block that creates a role only when missing, SQL built at run time).

A cluster is shared state: a role that exists already makes a second ``CREATE ROLE`` fail or an
``IF NOT EXISTS`` do nothing, so the only run that shows what each revision changes is the first
one. The history is therefore applied on a cluster of its own, started for this check: every
revision upgraded once in order from base, then downgraded once in reverse, the cluster's
catalogs read after each step. The check informs: it is verified when every step ran, violated
when one failed (nothing is known past it), not applicable when no cluster could be started.
"""

from __future__ import annotations

import psycopg

from ..errors import HarnessError
from ..graph import Step
from ..server import open_server, roles
from ..settings import Settings
from .context import Context
from .model import NOT_APPLICABLE, VERIFIED, VIOLATED, Section

_QUERIES = {
    "role": roles.ROLE_OPTIONS,
    "membership": "SELECT m.rolname || ' in ' || r.rolname, '' FROM pg_auth_members a"
                  " JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member",
    "role setting": "SELECT coalesce(r.rolname, 'every role') || coalesce(' in ' || d.datname, ''),"
                    " array_to_string(s.setconfig, ', ') FROM pg_db_role_setting s"
                    " LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase"
                    " WHERE s.setrole <> 0",
    "database": "SELECT datname, '' FROM pg_database WHERE datname !~ '^harness_'",
    "tablespace": "SELECT spcname, '' FROM pg_tablespace",
    "ALTER SYSTEM": "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'",
}


def check(ctx: Context) -> Section:
    try:
        changes, unfinished = observe(ctx)
    except HarnessError as exc:
        return Section("cluster_changes", "Cluster-wide changes", NOT_APPLICABLE,
                       f"no cluster of its own could be started to observe them: {exc}")
    found = {key: lines for key, lines in changes.items() if lines}
    if found:
        summary = "; ".join(f"{key}: {', '.join(lines)}" for key, lines in found.items())
    else:
        summary = "no migration creates, alters or drops roles, databases, tablespaces or server settings"
    status = VERIFIED
    if unfinished:
        status = VIOLATED
        summary = f"no evidence past the step that failed: {unfinished}" + (
            f"; before it: {summary}" if found else "")
    evidence = {"changes": found, "unfinished": unfinished}
    return Section("cluster_changes", "Cluster-wide changes", status, summary, _body(evidence), evidence,
                   (ctx.harness("report"),))


def _body(evidence: dict) -> str:
    """The table, from the evidence alone: the Markdown says what the JSON says."""
    if not evidence["changes"]:
        return ""
    return "\n".join(["| revision | step | cluster-wide changes |", "|---|---|---|"] + [
        f"| {key.split(' ')[1]} | {key.split(' ')[0]} | {'; '.join(lines)} |"
        for key, lines in evidence["changes"].items()
    ])


def observe(ctx: Context) -> tuple[dict[str, list[str]], str | None]:
    """``{"upgrade REV": [change, ...], "downgrade REV": [...]}`` in the order the steps ran,
    and the step that failed (None when every step ran)."""
    graph = ctx.graph
    steps = [Step("upgrade", rev) for rev in graph.revisions]
    steps += [Step("downgrade", rev) for rev in reversed(graph.revisions)]
    own = Settings(pg_version=ctx.server.version, pg_bin_dir=ctx.settings.pg_bin_dir)
    changes: dict[str, list[str]] = {}
    with open_server(own) as server, server.scratch() as database:
        runner = ctx.project.runner(database)
        try:
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                before = _cluster(conn)
                for step in steps:
                    outcome = runner.run([step])
                    after = _cluster(conn)
                    changes[f"{step.op} {step.revision}"] = _diff(before, after)
                    before = after
                    if not outcome.ok:
                        return changes, f"`{step.as_command()}`: {outcome.error}"
        finally:
            runner.close()
    return changes, None


def _cluster(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    return {kind: {name: value or "" for name, value in conn.execute(query)}
            for kind, query in _QUERIES.items()}


def _diff(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    lines = []
    for kind in _QUERIES:
        old, new = before[kind], after[kind]
        for name in sorted(new.keys() - old.keys()):
            lines.append(f"{kind} {name} created" + (f" ({new[name]})" if new[name] else ""))
        for name in sorted(old.keys() - new.keys()):
            lines.append(f"{kind} {name} dropped")
        for name in sorted(k for k in old.keys() & new.keys() if old[k] != new[k]):
            lines.append(f"{kind} {name} altered ({old[name] or 'none'} -> {new[name] or 'none'})")
    return lines
