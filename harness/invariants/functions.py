"""Tenant isolation through functions: what a ``SECURITY DEFINER`` function hands the app role.

A function declared ``SECURITY DEFINER`` runs with its owner's rights: when the owner owns the
tables (or is a superuser), row-level security does not filter what it reads, whatever the
caller's tenant setting. ``EXECUTE`` is granted to ``PUBLIC`` by default, so every such function
is a way in unless revoked. Reading its body cannot tell whether it filters by the tenant, so the
check calls each one the application role may execute, as that role with one tenant set, with
simple deterministic arguments (another tenant's key for an argument of the tenant column's
type), and reports a leak when what it returns

* holds rows whose tenant column names another tenant, or
* differs from what the same call returns when the function runs with the caller's rights
  (``SECURITY INVOKER``, switched inside a savepoint that is rolled back), where row-level
  security applies: the function hands out what the policies hide. Only when two calls as
  definer agree, so a volatile result (``now()``, a sequence) is never taken for a leak.

Functions returning nothing to read (``void``, triggers), variadic ones, and ones returning an
undeclared ``record`` are not called.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol

import psycopg
from psycopg import sql

from ..violations import Violation
from .acting import attempt, cast, leak


class TenantSetup(Protocol):
    """What the check needs of :class:`.isolation.IsolationSetup`, named here so that the
    module it serves need not be imported."""

    @property
    def tenant_setting(self) -> str: ...

    @property
    def tenant_column(self) -> str: ...

EXAMPLES = 3

_FUNCTIONS = """
SELECT p.oid::regprocedure::text, n.nspname, p.proname,
       ARRAY(SELECT format_type(a.t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)
              ORDER BY a.i),
       ARRAY(SELECT ty.typcategory::text FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)
               JOIN pg_type ty ON ty.oid = a.t ORDER BY a.i),
       ARRAY(SELECT (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.t
                      ORDER BY e.enumsortorder LIMIT 1)
               FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i) ORDER BY a.i)
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.prosecdef AND p.prokind = 'f' AND p.provariadic = 0
   AND p.prorettype NOT IN ('void'::regtype, 'trigger'::regtype, 'event_trigger'::regtype)
   AND NOT (p.prorettype = 'record'::regtype AND p.proallargtypes IS NULL)
   AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY 1
"""

_TENANT_TYPE = """
SELECT format_type(a.atttypid, NULL)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
 ORDER BY c.oid LIMIT 1
"""

# A plain value of each type category (pg_type.typcategory) that every type of it accepts.
_VALUES = {"N": "1", "S": "a", "B": "true", "D": "2000-01-01 00:00:00", "T": "1 day",
           "A": "{}", "I": "127.0.0.1", "V": "1"}


@dataclasses.dataclass(frozen=True)
class _Function:
    signature: str
    schema: str
    name: str
    types: tuple[str, ...]
    categories: tuple[str, ...]
    first_labels: tuple[str | None, ...]

    def call(self) -> sql.Composed:
        arguments = sql.SQL(", ").join(cast(t) for t in self.types)
        return sql.SQL("SELECT to_jsonb(r)::text FROM {function}({arguments}) AS r").format(
            function=sql.Identifier(self.schema, self.name), arguments=arguments)

    def arguments(self, tenant_type: str | None, other: str) -> list[str | None]:
        return [
            other if t == tenant_type else label if c == "E" else _VALUES.get(c)
            for t, c, label in zip(self.types, self.categories, self.first_labels)
        ]


def check_functions(
    conn: psycopg.Connection, setup: TenantSetup, role: str, tenant: str, other: str,
    *, revision: str | None,
) -> list[Violation]:
    """Leaks through each ``SECURITY DEFINER`` function ``role`` may execute, acting as ``tenant``.

    ``other`` is the tenant whose key goes into arguments of the tenant column's type. Runs in
    savepoints that are rolled back: a function that writes leaves nothing behind.
    """
    functions = [_Function(sig, schema, name, tuple(types), tuple(categories), tuple(labels))
                 for sig, schema, name, types, categories, labels
                 in conn.execute(_FUNCTIONS, {"role": role})]
    if not functions:
        return []
    found = conn.execute(_TENANT_TYPE, (setup.tenant_column,)).fetchone()
    tenant_type = found[0] if found else None
    violations = []
    for function in functions:
        violation = _probe(conn, setup, role, tenant, function,
                           function.arguments(tenant_type, other), revision)
        if violation is not None:
            violations.append(violation)
    return violations


def _probe(conn: psycopg.Connection, setup: TenantSetup, role: str, tenant: str,
           function: _Function, arguments: list[str | None],
           revision: str | None) -> Violation | None:
    def call(prepare: sql.Composable | None = None) -> list[str] | None:
        outcome = attempt(conn, function.call(), arguments, role=role, prepare=prepare,
                          setting=(setup.tenant_setting, tenant))
        return None if outcome.error else sorted(row[0] for row in outcome.rows)

    as_definer = call()
    if not as_definer:
        return None
    evidence: dict[str, Any] = {"function": function.signature, "arguments": arguments,
                                "rows": as_definer[:EXAMPLES]}
    leaked = _other_tenants(as_definer, setup.tenant_column, tenant)
    if leaked:
        return leak(setup.tenant_setting, role, tenant, function.signature, "execute",
                    f"gets rows of {_whose(leaked)} from {function.signature} (SECURITY DEFINER)",
                    revision, tenants=leaked, **evidence)
    if call() != as_definer:
        return None
    as_invoker = call(sql.SQL("ALTER FUNCTION {} SECURITY INVOKER").format(
        sql.SQL(function.signature)))
    if as_invoker is None or as_invoker == as_definer:
        return None
    return leak(setup.tenant_setting, role, tenant, function.signature, "execute",
                f"gets from {function.signature} (SECURITY DEFINER) what row-level security "
                f"hides from it: {_shown(as_definer)}, with its own rights {_shown(as_invoker)}",
                revision, as_invoker=as_invoker[:EXAMPLES], **evidence)


def _other_tenants(rows: list[str], column: str, tenant: str) -> list[str]:
    """Tenants other than ``tenant`` named by the tenant column of the records returned."""
    tenants = set()
    for text in rows:
        value = json.loads(text)
        if isinstance(value, dict) and value.get(column) is not None:
            tenants.add(str(value[column]))
    return sorted(tenants - {tenant})


def _whose(tenants: list[str]) -> str:
    return f"tenant {tenants[0]}" if len(tenants) == 1 else f"{len(tenants)} other tenants"


def _shown(rows: list[str]) -> str:
    return rows[0] if len(rows) == 1 else f"{len(rows)} rows"
