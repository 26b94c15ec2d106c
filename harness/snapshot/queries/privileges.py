"""Privileges: every ACL in scope, exploded into one object per grant, in one query.

A NULL ACL means "the default for this kind of object and owner" and an explicit one that equals
the default means the same, so each ACL is compared with ``acldefault(kind, owner)`` and only what
deviates is recorded: a grant beyond the default (``grant SELECT on table public.t to app``), or a
default privilege taken away (``revoke EXECUTE on function public.f() from PUBLIC``). ``GRANT x``
followed by ``REVOKE x`` therefore leaves no trace, and an owner's implicit privileges do not
repeat on every object. A grant made by someone other than the owner says so (``granted by``).

Default privileges (``ALTER DEFAULT PRIVILEGES``) follow the same rule; their baseline is the
built-in default for a role's global entry and nothing for a per-schema entry, which can only add.
"""

from __future__ import annotations

from .common import NOT_VERSION_SCHEMA

# Every ACL-bearing object: the key prefix (for default privileges), the noun the statement
# names, a column for column grants, the ACL, its owner, acldefault's kind (NULL: no baseline),
# and the relation for grants on a relation or column.
ACL_OBJECTS = f"""
, acl_object AS (
    SELECT '' AS prefix, r.key AS target, NULL AS col, r.relacl AS acl, r.relowner AS owner,
           (CASE r.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char" AS kind,
           r.tbl
    FROM acl_rel r
  UNION ALL
    SELECT '', r.key, quote_ident(a.attname), a.attacl, r.relowner, 'c', r.tbl
    FROM acl_rel r CROSS JOIN LATERAL (
        -- Looked up per relation (OFFSET 0 keeps the subquery from being flattened): as a join,
        -- the few granted columns were found by reading pg_attribute's whole index.
        SELECT a.attname, a.attacl FROM pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL OFFSET 0
    ) a
  UNION ALL
    SELECT '', format('schema %I', n.nspname), NULL, n.nspacl, n.nspowner, 'n', NULL FROM ns n
    WHERE {NOT_VERSION_SCHEMA}
  UNION ALL
    SELECT '', t.key, NULL, t.typacl, t.typowner, 'T', NULL FROM typ t
  UNION ALL
    SELECT '', f.key, NULL, f.proacl, f.proowner, 'f', NULL FROM fn f
  UNION ALL
    SELECT '', w.key, NULL, w.fdwacl, w.fdwowner, 'F', NULL FROM fdw w
  UNION ALL
    SELECT '', s.key, NULL, s.srvacl, s.srvowner, 'S', NULL FROM srv s
  UNION ALL
    SELECT format('default privileges for role %I', pg_get_userbyid(d.defaclrole))
           || CASE WHEN n.oid IS NULL THEN '' ELSE format(' in schema %I', n.nspname) END || ': ',
           CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                                WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' WHEN 'L' THEN 'large objects' END,
           NULL, d.defaclacl, d.defaclrole,
           CASE WHEN d.defaclnamespace = 0 THEN
               (CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END)::"char" END,
           NULL
    FROM pg_default_acl d LEFT JOIN ns n ON n.oid = d.defaclnamespace
    WHERE d.defaclnamespace = 0 OR n.oid IS NOT NULL
)
"""

# acldefault is strict: with no kind (a per-schema default privilege) the baseline is NULL, which
# aclexplode, also strict, reads as no privileges at all.
_BASELINE = "acldefault(o.kind, o.owner)"

PRIVILEGES = f"""
SELECT o.prefix || CASE WHEN x.grantable IS NOT NULL
        THEN format('grant %s%s on %s to %s', x.privilege, '(' || o.col || ')', o.target, x.grantee)
             || CASE WHEN x.grantor <> o.owner
                     THEN format(' granted by %I', pg_get_userbyid(x.grantor)) ELSE '' END
        ELSE format('revoke %s%s on %s from %s', x.privilege, '(' || o.col || ')', o.target, x.grantee) END,
    o.tbl,
    CASE WHEN x.grantable IS NOT NULL THEN jsonb_build_object('grantable', x.grantable)
         ELSE jsonb_build_object() END,
    ARRAY(SELECT pg_get_userbyid(u)::text FROM unnest(ARRAY[x.grantee_oid, x.grantor]) u WHERE u <> 0)
FROM acl_object o CROSS JOIN LATERAL (
    SELECT coalesce(e.grantor, b.grantor) AS grantor,
           coalesce(e.grantee, b.grantee) AS grantee_oid,
           CASE WHEN coalesce(e.grantee, b.grantee) = 0 THEN 'PUBLIC'
                ELSE quote_ident(pg_get_userbyid(coalesce(e.grantee, b.grantee))) END AS grantee,
           coalesce(e.privilege_type, b.privilege_type) AS privilege,
           e.is_grantable AS grantable
    FROM aclexplode(coalesce(o.acl, {_BASELINE})) e
    FULL JOIN aclexplode({_BASELINE}) b
      ON e.grantor = b.grantor AND e.grantee = b.grantee AND e.privilege_type = b.privilege_type
    WHERE e.is_grantable IS DISTINCT FROM b.is_grantable
) x
"""

FAMILIES = {"privileges": PRIVILEGES}
