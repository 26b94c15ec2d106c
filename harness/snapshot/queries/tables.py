"""Families of objects that live on a relation: the relations themselves, their columns,
constraints, indexes, triggers, rules, policies and extended statistics, and sequences.

Each branch yields ``(key, table, attributes, roles)``: ``table`` (``schema.name``, unquoted) is
the relation itself or the one the object is defined on (a sequence is a relation of its own,
whatever column owns it).
Definitions come from PostgreSQL's own deparsers (``pg_get_*def``, ``pg_get_expr``), which print
the same text for the same object whatever statements built it.
"""

from __future__ import annotations

from . import scope
from .common import comment, qualified, role, sorted_array

RELATIONS = f"""
SELECT r.key, r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'owner', pg_get_userbyid(c.relowner),
    'comment', {comment('pg_class', 'c.oid')},
    'row level security', CASE WHEN c.relkind IN ('r', 'p') THEN c.relrowsecurity END,
    'force row level security', CASE WHEN c.relkind IN ('r', 'p') THEN c.relforcerowsecurity END,
    'options', {sorted_array('c.reloptions')},
    'toast options', (SELECT {sorted_array('tc.reloptions')} FROM pg_class tc WHERE tc.oid = c.reltoastrelid),
    'unlogged', CASE WHEN c.relpersistence = 'u' THEN true END,
    'replica identity', CASE WHEN c.relkind IN ('r', 'p') THEN
        CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing'
                            WHEN 'f' THEN 'full' WHEN 'i' THEN 'index' END END,
    'partition key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
    'partition bound', pg_get_expr(c.relpartbound, c.oid),
    'inherits', (SELECT jsonb_agg({qualified('pn.nspname', 'pc.relname')} ORDER BY i.inhseqno)
                 FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                 JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid),
    'of type', CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END,
    'access method', (SELECT amname FROM pg_am WHERE oid = c.relam),
    'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace),
    'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
    'populated', CASE WHEN c.relkind = 'm' THEN c.relispopulated END,
    'server', (SELECT s.srvname FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
               WHERE ft.ftrelid = c.oid),
    'foreign options', (SELECT {sorted_array('ft.ftoptions')} FROM pg_foreign_table ft WHERE ft.ftrelid = c.oid)
)), ARRAY[pg_get_userbyid(c.relowner)::text]
FROM rel r JOIN pg_class c ON c.oid = r.oid
WHERE r.relkind <> 'S'
"""

# "position" is the ordinal among live columns, not attnum: attnum keeps the holes of dropped
# columns, so two tables with the same columns in the same order could differ in it.
COLUMNS = f"""
SELECT format('column %s.%I', r.qname, a.attname), r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'position', row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
    'type', format_type(a.atttypid, a.atttypmod),
    'not null', a.attnotnull,
    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
    'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid)
                      || CASE a.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END END,
    'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END,
    'collation', (SELECT {qualified('cn.nspname', 'co.collname')} FROM pg_collation co
                  JOIN pg_namespace cn ON cn.oid = co.collnamespace
                  WHERE co.oid = a.attcollation AND a.attcollation <> t.typcollation),
    'storage', CASE WHEN a.attstorage <> t.typstorage THEN
        CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                          WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END,
    'compression', CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END,
    'statistics', NULLIF(a.attstattarget, -1),
    'options', {sorted_array('a.attoptions')},
    'foreign options', {sorted_array('a.attfdwoptions')},
    'comment', {comment('pg_class', 'a.attrelid', 'a.attnum')}
)), ARRAY[]::text[]
FROM rel r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE r.relkind <> 'S'
"""

_CONSTRAINT_ATTRIBUTES = f"""jsonb_strip_nulls(jsonb_build_object(
    'type', CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' WHEN 'f' THEN 'FOREIGN KEY'
                           WHEN 'c' THEN 'CHECK' WHEN 'x' THEN 'EXCLUDE' WHEN 't' THEN 'TRIGGER'
                           WHEN 'n' THEN 'NOT NULL' END,
    'definition', pg_get_constraintdef(c.oid),
    'deferrable', c.condeferrable,
    'initially deferred', c.condeferred,
    'validated', c.convalidated,
    'comment', {comment('pg_constraint', 'c.oid')}
)), ARRAY[]::text[]"""

# A foreign key that references a partitioned table gets one hidden copy per referenced
# partition, on the same referencing table with generated names: implied by the parent
# constraint, so left out. Constraints a partition inherits sit on the partition itself and stay.
CONSTRAINTS = f"""
SELECT format('constraint %I on %s', c.conname, r.qname), r.tbl, {_CONSTRAINT_ATTRIBUTES}
FROM rel r
-- Looked up per relation (OFFSET 0 keeps it so): a generic plan joined the scope's few
-- relations with every constraint of the database, read whole three times.
CROSS JOIN LATERAL (SELECT * FROM pg_constraint c WHERE c.conrelid = r.oid OFFSET 0) c
WHERE c.conparentid = 0
   OR c.conrelid <> (SELECT p.conrelid FROM pg_constraint p WHERE p.oid = c.conparentid)
UNION ALL
SELECT format('constraint %I on domain %s', c.conname, t.qname), NULL, {_CONSTRAINT_ATTRIBUTES}
FROM typ t JOIN pg_constraint c ON c.contypid = t.oid
"""

# The owning constraint is a primary key, unique or exclusion constraint of the same table: a
# foreign key's conindid names the index it references, possibly on the same table.
INDEXES = f"""
SELECT format('index %I.%I', r.nspname, ic.relname), r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'definition', pg_get_indexdef(i.indexrelid),
    'constraint', (SELECT con.conname FROM pg_constraint con
                   WHERE con.conrelid = i.indrelid AND con.conindid = i.indexrelid
                     AND con.contype IN ('p', 'u', 'x')),
    'valid', i.indisvalid,
    'clustered', CASE WHEN i.indisclustered THEN true END,
    'replica identity', CASE WHEN i.indisreplident THEN true END,
    'partition of', (SELECT {qualified('pn.nspname', 'pc.relname')} FROM pg_inherits inh
                     JOIN pg_class pc ON pc.oid = inh.inhparent
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE inh.inhrelid = i.indexrelid),
    'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace),
    'comment', {comment('pg_class', 'i.indexrelid')}
)), ARRAY[]::text[]
FROM rel r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid
"""

# Current values are data, not schema: only the sequence's definition is read.
SEQUENCES = f"""
SELECT r.key, r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'type', format_type(s.seqtypid, NULL),
    'start', s.seqstart, 'increment', s.seqincrement,
    'minimum', s.seqmin, 'maximum', s.seqmax, 'cache', s.seqcache, 'cycle', s.seqcycle,
    'owned by', o.owned_by,
    'identity', o.identity,
    'unlogged', CASE WHEN c.relpersistence = 'u' THEN true END,
    'owner', pg_get_userbyid(c.relowner),
    'comment', {comment('pg_class', 'c.oid')}
)), ARRAY[pg_get_userbyid(c.relowner)::text]
FROM rel r JOIN pg_class c ON c.oid = r.oid JOIN pg_sequence s ON s.seqrelid = r.oid
LEFT JOIN LATERAL (
    SELECT format('%I.%I.%I', tn.nspname, tc.relname, a.attname) AS owned_by,
           CASE WHEN d.deptype = 'i' THEN true END AS identity
    FROM pg_depend d
    JOIN pg_class tc ON tc.oid = d.refobjid
    JOIN pg_namespace tn ON tn.oid = tc.relnamespace
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
) o ON true
"""

# Internal triggers (foreign keys' RI triggers) carry oids in their names and come with their
# constraint; user triggers cloned onto partitions are listed on each partition. The harness's own
# (logging the statements that write rows, see ..tracking) are not the schema's.
TRIGGERS = f"""
SELECT format('trigger %I on %s', t.tgname, r.qname), r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'definition', pg_get_triggerdef(t.oid),
    'enabled', CASE t.tgenabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled'
                                WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END,
    'comment', {comment('pg_trigger', 't.oid')}
)), ARRAY[]::text[]
FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid
WHERE NOT t.tgisinternal
  AND NOT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace
                  WHERE p.oid = t.tgfoid AND pn.nspname = '{scope.TRACKING_SCHEMA}')
"""

# A view's own query is its '_RETURN' rule, already in the view's definition.
RULES = f"""
SELECT format('rule %I on %s', w.rulename, r.qname), r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'definition', pg_get_ruledef(w.oid),
    'enabled', CASE w.ev_enabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled'
                                 WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END,
    'comment', {comment('pg_rewrite', 'w.oid')}
)), ARRAY[]::text[]
FROM rel r JOIN pg_rewrite w ON w.ev_class = r.oid
WHERE w.rulename <> '_RETURN'
"""

POLICIES = f"""
SELECT format('policy %I on %s', p.polname, r.qname), r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
    'permissive', p.polpermissive,
    'roles', (SELECT jsonb_agg(n ORDER BY n COLLATE "C")
              FROM (SELECT {role('u')} AS n FROM unnest(p.polroles) u) s),
    'USING', pg_get_expr(p.polqual, p.polrelid),
    'WITH CHECK', pg_get_expr(p.polwithcheck, p.polrelid),
    'comment', {comment('pg_policy', 'p.oid')}
)), ARRAY(SELECT pg_get_userbyid(u)::text FROM unnest(p.polroles) u WHERE u <> 0)
FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
"""

STATISTICS = f"""
SELECT format('statistics %I.%I', n.nspname, s.stxname), r.tbl, jsonb_strip_nulls(jsonb_build_object(
    'definition', pg_get_statisticsobjdef(s.oid),
    'owner', pg_get_userbyid(s.stxowner),
    'comment', {comment('pg_statistic_ext', 's.oid')}
)), ARRAY[pg_get_userbyid(s.stxowner)::text]
FROM rel r JOIN pg_statistic_ext s ON s.stxrelid = r.oid JOIN pg_namespace n ON n.oid = s.stxnamespace
"""

FAMILIES = {
    "relations": RELATIONS,
    "columns": COLUMNS,
    "constraints": CONSTRAINTS,
    "indexes": INDEXES,
    "sequences": SEQUENCES,
    "triggers": TRIGGERS,
    "rules": RULES,
    "policies": POLICIES,
    "statistics": STATISTICS,
}
