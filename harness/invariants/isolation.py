"""Tenant isolation: acting as the application's role, one tenant never reaches another's rows.

Reading the catalog cannot prove isolation: whether a policy binds depends on ENABLE and
FORCE, on who owns the table, on whether a view runs with its owner's rights, on the kind of
relation (row-level security never applies to materialized views). So the check acts: it
switches to each application role (``SET ROLE``, never a password), sets the tenant setting
and reads and writes every relation the role was granted, inside one transaction that is
always rolled back, each attempt in its own savepoint.

For each role and each relation that carries the tenant column:

* select: with the setting at tenant A, every visible row belongs to A;
* select_unset: with the setting empty, no row is visible (an error counts as no row);
* insert: a copy of another tenant's row, with fresh defaults, is rejected;
* update_tenant: moving A's rows to another tenant is rejected;
* update, delete: without a WHERE they touch no more rows than A has.

And for each ``SECURITY DEFINER`` function the role may execute, what it returns when called
as A (:mod:`harness.invariants.functions`): no rows of another tenant, nothing row-level
security would hide from the role itself.

Writes count as let through when they succeed, and, on tables, when they fail on a constraint:
PostgreSQL checks a policy's WITH CHECK before NOT NULL, CHECK and unique constraints and
before foreign keys, so such a failure means row-level security had already accepted the row.

Nothing needs configuring: :func:`detect` reads the tenant setting and column from the
policies and the application roles from the grants; the settings override each of them.
Policies and grants come and go along a history, so callers should detect once at a state
that has them (the head) and check every state with that setup.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Any, Iterable

import psycopg
from psycopg import sql

from ..errors import HarnessError
from ..prepared import fetch_prepared
from ..settings import Settings
from . import functions
from .acting import Attempt, AttemptOutcome, attempt, attempt_all, cast as _cast, leak
from ..violations import Violation

EXAMPLES = 3
"""Leaked rows kept as evidence: enough to recognise them."""

_USER_SCHEMAS = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"

_POLICIES = f"""
SELECT n.nspname, c.relname,
       concat_ws(' ', pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)),
       ARRAY(SELECT a.attname
               FROM pg_depend d
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                AND d.refobjid = p.polrelid AND d.refobjsubid > 0
              ORDER BY a.attnum)
  FROM pg_policy p
  JOIN pg_class c ON c.oid = p.polrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_USER_SCHEMAS}
 ORDER BY n.nspname, c.relname, p.polname
"""
_PREPARED_POLICIES = ("harness_policies", _POLICIES)
"""Prepared once per connection: a sweep reads the policies at every state it reaches, and
planning the read cost far more than running it (0.5 ms against 0.01 at a state without any)."""

_DEPARSED = "SELECT set_config('search_path', 'pg_catalog', true)"
"""The settings the policies are read under: expressions deparsed alike in every session."""

# Single-column foreign keys: the referencing column's name, the referenced table and column,
# and whether the referenced table has a column of the referencing column's name too.
_REFERENCES = """
SELECT sa.attname, tn.nspname, t.relname, ta.attname,
       EXISTS (SELECT FROM pg_attribute x
                WHERE x.attrelid = k.confrelid AND x.attname = sa.attname AND NOT x.attisdropped)
  FROM pg_constraint k
  JOIN pg_attribute sa ON sa.attrelid = k.conrelid AND sa.attnum = k.conkey[1]
  JOIN pg_class t ON t.oid = k.confrelid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_attribute ta ON ta.attrelid = k.confrelid AND ta.attnum = k.confkey[1]
 WHERE k.contype = 'f' AND cardinality(k.conkey) = 1
 ORDER BY 1, 2, 3
"""

_RELATIONS = f"""
WITH tenants (nsp, rel, col) AS (
    SELECT * FROM unnest(%(nsp)s::text[], %(rel)s::text[], %(col)s::text[])
)
SELECT c.oid, n.nspname, c.relname, c.relkind, a.attname
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN tenants t ON t.nsp = n.nspname AND t.rel = c.relname
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     AND a.attname = coalesce(t.col, %(column)s)
 WHERE c.relkind IN ('r', 'p', 'v', 'm') AND {_USER_SCHEMAS}
 ORDER BY n.nspname, c.relname
"""

# Grants held as owner are left out: the role that owns the tables is usually the one that
# migrates them. Superusers and BYPASSRLS roles are exempt from row-level security by design.
_GRANTEES = """
SELECT DISTINCT r.rolname
  FROM pg_class c
 CROSS JOIN LATERAL (SELECT (aclexplode(c.relacl)).grantee
                     UNION
                     SELECT (aclexplode(a.attacl)).grantee
                       FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL) g
  JOIN pg_roles r ON r.oid = g.grantee
 WHERE c.oid = ANY(%s::oid[]) AND g.grantee <> c.relowner AND NOT r.rolsuper AND NOT r.rolbypassrls
 ORDER BY 1
"""

_COLUMN_GRANTS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull AND NOT a.atthasdef AND a.attidentity = '',
       a.atthasdef OR a.attidentity <> '',
       a.attgenerated = '' AND a.attidentity <> 'a',
       has_column_privilege(%(role)s, a.attrelid, a.attnum, 'SELECT'),
       has_column_privilege(%(role)s, a.attrelid, a.attnum, 'INSERT'),
       has_column_privilege(%(role)s, a.attrelid, a.attnum, 'UPDATE')
  FROM pg_attribute a
 WHERE a.attrelid = ANY(%(oids)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

_RELATION_GRANTS = """
SELECT c.oid, has_table_privilege(%(role)s, c.oid, 'DELETE'), pg_relation_is_updatable(c.oid, false)
  FROM pg_class c WHERE c.oid = ANY(%(oids)s::oid[])
"""

# pg_relation_is_updatable's bits: 1 << CMD_UPDATE, 1 << CMD_INSERT, 1 << CMD_DELETE.
_UPDATABLE, _INSERTABLE, _DELETABLE = 4, 8, 16

_SETTING_CALL = re.compile(r"current_setting\('((?:[^']|'')+)'")


@dataclasses.dataclass(frozen=True)
class IsolationSetup:
    """What tenant isolation is made of in one database: setting, column, roles."""

    tenant_setting: str
    """The setting the application sets per transaction, e.g. ``app.current_tenant``."""
    tenant_column: str
    """The column that holds a row's tenant, e.g. ``tenant_id``."""
    app_roles: tuple[str, ...]
    """The roles the application acts as."""
    tenants_tables: tuple[tuple[str, str, str], ...] = ()
    """(schema, table, column) of tables whose rows are the tenants, keyed by that column."""


def detect(conn: psycopg.Connection, overrides: Settings | None = None) -> IsolationSetup | None:
    """The isolation setup the policies and grants describe, or None when there is none.

    The setting is the one policies read with ``current_setting``. The tenant column is the
    column most often referencing, by foreign key, a column such a policy compares
    (``events.tenant_id`` references ``tenants.id``), for that holds even when most policies
    are missing; without such keys, the column those policies depend on most. A table whose
    policy depends on another single column, or that the tenant column references, is a
    tenants table. The
    application roles are the roles, other than superusers, BYPASSRLS roles and owners, granted
    anything on a relation carrying the tenant column. ``tenant_setting``, ``tenant_column``
    and ``app_roles`` in ``overrides`` replace what would be detected.
    """
    overrides = overrides or Settings()
    policies = [
        (schema, table, {n.replace("''", "'") for n in _SETTING_CALL.findall(expression)}, columns)
        for schema, table, expression, columns in fetch_prepared(conn, [_PREPARED_POLICIES], _DEPARSED)[0]
    ]
    setting = overrides.tenant_setting or _most_common(
        name for _, _, names, _ in policies for name in names
    )
    if setting is None:
        return None
    compared: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for schema, table, names, columns in policies:
        if setting in names:
            compared[schema, table].update(columns)
    references = conn.execute(_REFERENCES).fetchall()
    column = (
        overrides.tenant_column
        or _most_common(source for source, schema, table, target, _ in references
                        if target in compared.get((schema, table), ()))
        or _most_common(name for columns in compared.values() for name in columns)
    )
    if column is None:
        return None
    tenants = {table: next(iter(columns)) for table, columns in compared.items()
               if column not in columns and len(columns) == 1}
    for source, schema, table, target, has_source in references:
        if source == column and not has_source:
            tenants.setdefault((schema, table), target)
    tenants_tables = tuple((s, t, k) for (s, t), k in sorted(tenants.items()))
    roles = overrides.app_roles or tuple(
        name for (name,) in conn.execute(
            _GRANTEES, ([r.oid for r in _relations(conn, column, tenants_tables)],))
    )
    return IsolationSetup(setting, column, roles, tenants_tables) if roles else None


def _most_common(names: Iterable[str]) -> str | None:
    ranked = collections.Counter(names).most_common(1)
    return ranked[0][0] if ranked else None


@dataclasses.dataclass(frozen=True)
class _Relation:
    oid: int
    schema: str
    name: str
    kind: str
    """``relkind``: r table, p partitioned table, v view, m materialized view."""
    key: str
    """The column holding the tenant: the tenant column, or the tenants table's key."""

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def is_table(self) -> bool:
        return self.kind in ("r", "p")


@dataclasses.dataclass(frozen=True)
class _Column:
    name: str
    type: str
    required: bool
    """NOT NULL without a default: an INSERT must give it."""
    defaulted: bool
    """A default, identity or generated column: an INSERT leaves it to the database."""
    writable: bool
    select: bool
    insert: bool
    update: bool


@dataclasses.dataclass(frozen=True)
class _Grants:
    """What one role may do with one relation."""

    columns: tuple[_Column, ...]
    delete: bool
    updatable: int
    """``pg_relation_is_updatable``'s bits: what the relation itself accepts."""

    def column(self, name: str) -> _Column | None:
        return next((c for c in self.columns if c.name == name), None)


def tenant_reach(conn: psycopg.Connection, setup: IsolationSetup) -> tuple[dict[str, tuple[str, ...]], int]:
    """Per application role, the relations carrying the tenant column (and the tenants
    tables) it may read or write, even one column of; and how many tenants hold rows."""
    relations = _relations(conn, setup.tenant_column, setup.tenants_tables)
    reachable = {role: tuple(str(r) for r in relations if _granted(conn, role, r.oid))
                 for role in setup.app_roles}
    carrying = [r.ident for r in relations if r.is_table and r.key == setup.tenant_column]
    if not carrying:
        return reachable, 0
    union = sql.SQL(" UNION ").join(
        sql.SQL("SELECT {}::text FROM {}").format(sql.Identifier(setup.tenant_column), ident)
        for ident in carrying
    )
    query = sql.SQL("SELECT count(*) FROM ({}) AS tenants(id)").format(union)
    return reachable, conn.execute(query).fetchone()[0]


def _granted(conn: psycopg.Connection, role: str, oid: int) -> bool:
    """Whether ``role`` (existing or not yet) may read or write the relation, even one column."""
    return conn.execute(
        "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = %(role)s) AND"
        " (has_table_privilege(%(role)s, %(oid)s::oid, 'SELECT, INSERT, UPDATE, DELETE')"
        "  OR has_any_column_privilege(%(role)s, %(oid)s::oid, 'SELECT, INSERT, UPDATE'))",
        {"role": role, "oid": oid},
    ).fetchone()[0]


def _relations(
    conn: psycopg.Connection, column: str, tenants_tables: tuple[tuple[str, str, str], ...]
) -> list[_Relation]:
    """Every table, view and materialized view with the tenant column, and the tenants tables."""
    nsp, rel, col = ([t[i] for t in tenants_tables] for i in range(3))
    params = {"nsp": nsp, "rel": rel, "col": col, "column": column}
    return [_Relation(*row) for row in conn.execute(_RELATIONS, params)]


def check_isolation(
    conn: psycopg.Connection, setup: IsolationSetup, *, revision: str | None
) -> list[Violation]:
    """Every way an application role reaches another tenant's rows, one violation each.

    Tenant A is the tenant with the most rows; another tenant is the one with the most rows
    in the relation at hand. Relations without rows, and roles that do not exist at this
    revision, are skipped. Needs a superuser connection: as anyone else every attempt would
    fail to switch roles and pass for a rejection. The transaction is rolled back, so the
    rows are left as they were; only sequences an INSERT drew from stay advanced, as
    ``nextval`` is never rolled back.
    """
    with conn.transaction(force_rollback=True):
        superuser, existing = conn.execute(
            "SELECT rolsuper, ARRAY(SELECT rolname FROM pg_roles WHERE rolname = ANY(%s::text[]))"
            "  FROM pg_roles WHERE rolname = current_user", (list(setup.app_roles),)).fetchone()
        if not superuser:
            raise HarnessError("checking tenant isolation needs a superuser connection",
                               hint="the harness acts as each application role with SET ROLE")
        roles = [r for r in setup.app_roles if r in existing]
        relations = _relations(conn, setup.tenant_column, setup.tenants_tables)
        if not relations or not roles:
            return []
        rows, ranked = _rows_by_relation(conn, setup, relations)
        if not ranked:
            return []
        tenant = ranked[0]
        violations = []
        for role in roles:
            grants = _grants(conn, role, relations)
            probes = [_Probe(conn, setup, role, relation, grants[relation.oid], revision)
                      for relation in relations if rows[relation]]
            # The role's reads go first and together: what they see does not depend on the
            # writes after them, which are all undone. Each write goes alone.
            reads = {(probe, t): read for probe in probes for t in (tenant, "")
                     if (read := probe.reading(t)) is not None}
            seen = dict(zip(reads, attempt_all(conn, list(reads.values()))))
            for probe in probes:
                counts = rows[probe.relation]
                other = _other_tenant(counts, tenant, ranked)
                violations += probe.select(tenant, seen.get((probe, tenant)))
                violations += probe.select("", seen.get((probe, "")))
                if other is not None:
                    violations += probe.insert(tenant, other)
                    violations += probe.update_tenant(tenant, other, counts.get(tenant, 0))
                violations += probe.update_all(tenant, counts.get(tenant, 0))
                violations += probe.delete_all(tenant, counts.get(tenant, 0))
            if len(ranked) > 1:
                violations += functions.check_functions(conn, setup, role, tenant, ranked[1],
                                                        revision=revision)
        return violations


def _rows_by_relation(
    conn: psycopg.Connection, setup: IsolationSetup, relations: list[_Relation]
) -> tuple[dict[_Relation, dict[str | None, int] | None], list[str]]:
    """Rows per tenant in each relation, and the tenants by how many rows they have in all.

    Views are counted last, as the tenant with the most rows: a view may filter by the
    setting itself, so even the superuser sees in it only the rows of the tenant it is set to.
    """
    tables = [r for r in relations if r.kind != "v"]
    rows = dict(zip(tables, _rows_by_tenant(conn, setup, tables, None)))
    totals: collections.Counter[str] = collections.Counter()
    for counts in rows.values():
        totals.update({t: n for t, n in (counts or {}).items() if t is not None})
    ranked = sorted(totals, key=lambda t: (-totals[t], t))
    if ranked:
        views = [r for r in relations if r.kind == "v"]
        rows.update(zip(views, _rows_by_tenant(conn, setup, views, ranked[0])))
    return rows, ranked


def _other_tenant(counts: dict[str | None, int], tenant: str, ranked: list[str]) -> str | None:
    """The tenant with the most rows in the relation besides ``tenant``, else the next overall."""
    present = sorted((t for t in counts if t is not None and t != tenant),
                     key=lambda t: (-counts[t], t))
    return next(iter(present), next((t for t in ranked if t != tenant), None))


def _rows_by_tenant(
    conn: psycopg.Connection, setup: IsolationSetup, relations: list[_Relation], tenant: str | None
) -> list[dict[str | None, int] | None]:
    """The superuser's count of rows per tenant in each relation, in one round trip where all
    can be read; None for a relation that cannot be."""
    setting = (setup.tenant_setting, tenant) if tenant else None
    outcomes = attempt_all(conn, [Attempt(_count_by_tenant(r), setting=setting) for r in relations])
    return [None if outcome.error else dict(outcome.rows) for outcome in outcomes]


def _count_by_tenant(relation: _Relation) -> sql.Composed:
    return sql.SQL("SELECT {key}::text, count(*) FROM {rel} GROUP BY 1").format(
        key=sql.Identifier(relation.key), rel=relation.ident)


def _grants(conn: psycopg.Connection, role: str, relations: list[_Relation]) -> dict[int, _Grants]:
    params = {"role": role, "oids": [r.oid for r in relations]}
    columns: dict[int, list[_Column]] = collections.defaultdict(list)
    for oid, *column in conn.execute(_COLUMN_GRANTS, params):
        columns[oid].append(_Column(*column))
    return {
        oid: _Grants(tuple(columns[oid]), delete, updatable)
        for oid, delete, updatable in conn.execute(_RELATION_GRANTS, params)
    }


class _Probe:
    """The attempts of one role on one relation, each returning the violations it proves."""

    def __init__(self, conn: psycopg.Connection, setup: IsolationSetup, role: str,
                 relation: _Relation, grants: _Grants, revision: str | None) -> None:
        self.conn, self.setup, self.role = conn, setup, role
        self.relation, self.grants, self.revision = relation, grants, revision

    def reading(self, tenant: str) -> Attempt | None:
        """The attempt :meth:`select` judges; None when the role may not read the tenant column."""
        key = self.grants.column(self.relation.key)
        if key is None or not key.select:
            return None
        return Attempt(_count_by_tenant(self.relation), setting=(self.setup.tenant_setting, tenant),
                       role=self.role)

    def select(self, tenant: str, outcome: AttemptOutcome | None) -> list[Violation]:
        """With the setting at ``tenant`` (empty: unset), rows of any other tenant are a leak.
        ``outcome`` is that of :meth:`reading`, made with the role's other reads; None when
        there was none to make."""
        if outcome is None:
            return []
        leaked = {t: n for t, n in outcome.rows if t != tenant}
        if not leaked:
            return []
        readable = sql.SQL(", ").join(
            sql.Identifier(c.name) for c in self.grants.columns if c.select)
        examples = self._as_role(sql.SQL(
            "SELECT to_jsonb(x) FROM (SELECT {columns} FROM {rel}) x"
            " WHERE x.{key}::text IS DISTINCT FROM %s LIMIT {limit}"
        ).format(columns=readable, rel=self.relation.ident, key=sql.Identifier(self.relation.key),
                 limit=sql.Literal(EXAMPLES)), tenant, [tenant])
        total = sum(leaked.values())
        whose = (f"tenant {_shown(next(iter(leaked)))}" if len(leaked) == 1
                 else f"{len(leaked)} {'other ' if tenant else ''}tenants")
        return [self._violation(
            "select" if tenant else "select_unset", tenant,
            f"reads {_rows(total)} of {whose} from {self.relation}",
            rows_by_tenant={_shown(t): n for t, n in leaked.items()},
            rows=[row for (row,) in examples.rows],
        )]

    def insert(self, tenant: str, other: str) -> list[Violation]:
        """Inserting a copy of ``other``'s row, with fresh defaults, must be rejected."""
        columns = self._insert_columns()
        if not columns or not self.grants.updatable & _INSERTABLE:
            return []
        values = self._row_of(other, columns)
        if values is None:
            return []
        outcome = self._as_role(sql.SQL("INSERT INTO {rel} ({columns}) VALUES ({values})").format(
            rel=self.relation.ident,
            columns=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            values=sql.SQL(", ").join(_cast(c.type) for c in columns),
        ), tenant, values)
        how = self._let_through(outcome)
        if how is None:
            return []
        return [self._violation(
            "insert", tenant, f"inserts a row of tenant {other} into {self.relation}{how}",
            row={c.name: v for c, v in zip(columns, values)}, other_tenant=other,
        )]

    def update_tenant(self, tenant: str, other: str, own_rows: int) -> list[Violation]:
        """Moving ``tenant``'s rows to ``other`` must be rejected."""
        key = self.grants.column(self.relation.key)
        if not own_rows or key is None or not (key.update and key.writable) \
                or not self.grants.updatable & _UPDATABLE:
            return []
        outcome = self._as_role(sql.SQL("UPDATE {rel} SET {key} = {value}").format(
            rel=self.relation.ident, key=sql.Identifier(key.name), value=_cast(key.type),
        ), tenant, [other])
        how = self._let_through(outcome)
        if how is None or (outcome.error is None and not outcome.rowcount):
            return []
        return [self._violation(
            "update_tenant", tenant,
            f"moves its {_rows(own_rows)} of {self.relation} to tenant {other}{how}",
            other_tenant=other, touched=outcome.rowcount,
        )]

    def update_all(self, tenant: str, own_rows: int) -> list[Violation]:
        """An UPDATE without WHERE touches no more rows than ``tenant`` has.

        It sets the tenant column to ``tenant`` when the role may, so that a policy letting
        the role rewrite other tenants' rows into its own is caught too; otherwise a column it
        may update to itself, or, when it may not read one (UPDATE privileges survive a
        ``REVOKE SELECT``), to the value it has in one of ``tenant``'s rows.
        """
        updatable = [c for c in self.grants.columns if c.update and c.writable]
        if not updatable or not self.grants.updatable & _UPDATABLE:
            return []
        column = next((c for c in updatable if c.name == self.relation.key),
                      next((c for c in updatable if c.select), updatable[0]))
        value, params = _cast(column.type), [tenant]
        if column.name != self.relation.key and column.select:
            value, params = sql.Identifier(column.name), None
        elif column.name != self.relation.key:
            params = self._row_of(tenant, [column])
            if params is None:
                return []
        query = sql.SQL("UPDATE {rel} SET {column} = {value}").format(
            rel=self.relation.ident, column=sql.Identifier(column.name), value=value)
        return self._count_touched("update", query, tenant, own_rows, params)

    def delete_all(self, tenant: str, own_rows: int) -> list[Violation]:
        """A DELETE without WHERE removes no more rows than ``tenant`` has."""
        if not self.grants.delete or not self.grants.updatable & _DELETABLE:
            return []
        query = sql.SQL("DELETE FROM {rel}").format(rel=self.relation.ident)
        return self._count_touched("delete", query, tenant, own_rows, None)

    def _count_touched(self, operation: str, query: sql.Composed, tenant: str, own_rows: int,
                       params: Any) -> list[Violation]:
        # Foreign-key triggers would abort a statement that also touched referenced rows and
        # hide how many it touched; on views, which may rely on rules, they stay on.
        outcome = self._as_role(query, tenant, params, replica=self.relation.is_table)
        if outcome.error is not None or outcome.rowcount <= own_rows:
            return []
        return [self._violation(
            operation, tenant,
            f"{operation}s {_rows(outcome.rowcount)} of {self.relation}; "
            f"tenant {tenant} has {own_rows}",
            touched=outcome.rowcount, tenant_rows=own_rows,
        )]

    def _insert_columns(self) -> list[_Column]:
        """The columns an INSERT of a copied row gives: the tenant's and those without default."""
        key = self.grants.column(self.relation.key)
        if key is None or not (key.insert and key.writable):
            return []
        columns = [key]
        for column in self.grants.columns:
            if column is key or column.defaulted:
                continue
            if column.insert and column.writable:
                columns.append(column)
            elif column.required:
                return []
        return columns

    def _row_of(self, tenant: str, columns: list[_Column]) -> list[str | None] | None:
        """The text of ``columns`` in one of ``tenant``'s rows, read by the superuser as them."""
        outcome = attempt(self.conn, sql.SQL(
            "SELECT ARRAY[{values}]::text[] FROM {rel} WHERE {key}::text = %s LIMIT 1"
        ).format(values=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name))
                                          for c in columns),
                 rel=self.relation.ident, key=sql.Identifier(self.relation.key)),
            [tenant], setting=(self.setup.tenant_setting, tenant))
        return outcome.rows[0][0] if outcome.rows else None

    def _let_through(self, outcome: AttemptOutcome) -> str | None:
        """None when a write was stopped; else how it got through, as a clause for the message.

        Only on tables is a constraint failure proof: a view's CHECK OPTION is checked after
        the constraints, so on a view it might have rejected the row had they not.
        """
        if outcome.error is None:
            return ""
        if self.relation.is_table and (outcome.error.sqlstate or "").startswith("23"):
            reason = outcome.error.diag.message_primary or outcome.error.sqlstate
            return f" (only a constraint stopped it: {reason})"
        return None

    def _as_role(self, query: sql.Composable, tenant: str, params: Any = None, *,
                 replica: bool = False) -> AttemptOutcome:
        return attempt(self.conn, query, params, setting=(self.setup.tenant_setting, tenant),
                        role=self.role, replica=replica)

    def _violation(self, operation: str, tenant: str, what: str, **evidence: Any) -> Violation:
        return leak(self.setup.tenant_setting, self.role, tenant, str(self.relation), operation,
                    what, self.revision, **evidence)


def _rows(count: int) -> str:
    return f"{count} row{'s' * (count != 1)}"


def _shown(tenant: str | None) -> str:
    return "NULL" if tenant is None else tenant
