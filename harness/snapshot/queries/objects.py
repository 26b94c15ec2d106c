"""Families of objects that stand on their own: schemas, extensions, types, functions and
procedures, event triggers, collations, foreign-data wrappers and servers.

Each branch yields ``(key, table, attributes, roles)`` like the table families; none of these
objects is defined on a table, so ``table`` is always NULL.
"""

from __future__ import annotations

from .common import NOT_VERSION_SCHEMA, comment, not_part_of_another, qualified, sorted_array
from .scope import TRACKING_SCHEMA


def routine(regproc: str) -> str:
    """A function reference as its qualified signature; NULL for the 0 meaning "none"."""
    return f"CASE WHEN {regproc}::oid <> 0 THEN {regproc}::oid::regprocedure::text END"


SCHEMAS = f"""
SELECT format('schema %I', n.nspname), NULL, jsonb_strip_nulls(jsonb_build_object(
    'owner', pg_get_userbyid(n.nspowner),
    'comment', {comment('pg_namespace', 'n.oid')}
)), ARRAY[pg_get_userbyid(n.nspowner)::text]
FROM ns n
WHERE {NOT_VERSION_SCHEMA}
"""

EXTENSIONS = f"""
SELECT format('extension %I', e.extname), NULL, jsonb_strip_nulls(jsonb_build_object(
    'version', e.extversion,
    'schema', n.nspname,
    'owner', pg_get_userbyid(e.extowner),
    'comment', {comment('pg_extension', 'e.oid')}
)), ARRAY[pg_get_userbyid(e.extowner)::text]
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""

# One query for every kind of type; attributes that do not apply to a kind are NULL and dropped.
TYPES = f"""
SELECT t.key, NULL, jsonb_strip_nulls(jsonb_build_object(
    'kind', CASE pt.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite'
                            WHEN 'r' THEN 'range' WHEN 'p' THEN 'shell' ELSE 'base' END,
    'owner', pg_get_userbyid(pt.typowner),
    'comment', {comment('pg_type', 'pt.oid')},
    'labels', CASE WHEN pt.typtype = 'e' THEN
        (SELECT jsonb_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = pt.oid) END,
    'base type', CASE WHEN pt.typtype = 'd' THEN format_type(pt.typbasetype, pt.typtypmod) END,
    'not null', CASE WHEN pt.typtype = 'd' THEN pt.typnotnull END,
    'default', coalesce(pg_get_expr(pt.typdefaultbin, 0), pt.typdefault),
    'collation', (SELECT {qualified('cn.nspname', 'co.collname')} FROM pg_collation co
                  JOIN pg_namespace cn ON cn.oid = co.collnamespace
                  WHERE co.oid = coalesce(rg.rngcollation, pt.typcollation)
                    AND (rg.rngcollation IS NOT NULL OR pt.typcollation <> bt.typcollation)),
    'attributes', CASE WHEN pt.typtype = 'c' THEN
        (SELECT jsonb_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
                          || CASE WHEN a.attcollation <> at.typcollation
                                  THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
                          ORDER BY a.attnum)
         FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
         WHERE a.attrelid = pt.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
    'subtype', format_type(rg.rngsubtype, NULL),
    'subtype operator class', (SELECT {qualified('on_.nspname', 'oc.opcname')} FROM pg_opclass oc
                               JOIN pg_namespace on_ ON on_.oid = oc.opcnamespace WHERE oc.oid = rg.rngsubopc),
    'canonical', {routine('rg.rngcanonical')},
    'subtype diff', {routine('rg.rngsubdiff')},
    'multirange', format_type(rg.rngmultitypid, NULL),
    'input', CASE WHEN pt.typtype = 'b' THEN {routine('pt.typinput')} END,
    'output', CASE WHEN pt.typtype = 'b' THEN {routine('pt.typoutput')} END,
    'receive', CASE WHEN pt.typtype = 'b' THEN {routine('pt.typreceive')} END,
    'send', CASE WHEN pt.typtype = 'b' THEN {routine('pt.typsend')} END,
    'length', CASE WHEN pt.typtype = 'b' THEN pt.typlen END,
    'by value', CASE WHEN pt.typtype = 'b' THEN pt.typbyval END,
    'alignment', CASE WHEN pt.typtype = 'b' THEN pt.typalign END,
    'storage', CASE WHEN pt.typtype = 'b' THEN pt.typstorage END,
    'category', CASE WHEN pt.typtype = 'b' THEN pt.typcategory END
)), ARRAY[pg_get_userbyid(pt.typowner)::text]
FROM typ t JOIN pg_type pt ON pt.oid = t.oid
LEFT JOIN pg_type bt ON bt.oid = pt.typbasetype
LEFT JOIN pg_range rg ON rg.rngtypid = pt.oid
"""

# SQL-standard bodies (BEGIN ATOMIC, RETURN) live in prosqlbody, with an empty prosrc.
FUNCTIONS = f"""
SELECT f.key, NULL, jsonb_strip_nulls(jsonb_build_object(
    'arguments', pg_get_function_arguments(p.oid),
    'result', pg_get_function_result(p.oid),
    'language', l.lanname,
    'volatility', CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
    'strict', p.proisstrict,
    'security definer', p.prosecdef,
    'leakproof', p.proleakproof,
    'parallel', CASE p.proparallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END,
    'cost', p.procost,
    'rows', NULLIF(p.prorows, 0),
    'window', CASE WHEN p.prokind = 'w' THEN true END,
    'configuration', {sorted_array('p.proconfig')},
    'body', CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid)
                 WHEN p.prokind <> 'a' THEN p.prosrc END,
    'library', p.probin,
    'support', {routine('p.prosupport')},
    'transition', {routine('ag.aggtransfn')},
    'state type', format_type(ag.aggtranstype, NULL),
    'final', {routine('ag.aggfinalfn')},
    'combine', {routine('ag.aggcombinefn')},
    'initial state', ag.agginitval,
    'aggregate kind', CASE ag.aggkind WHEN 'o' THEN 'ordered-set' WHEN 'h' THEN 'hypothetical' END,
    'owner', pg_get_userbyid(p.proowner),
    'comment', {comment('pg_proc', 'p.oid')}
)), ARRAY[pg_get_userbyid(p.proowner)::text]
FROM fn f JOIN pg_proc p ON p.oid = f.oid JOIN pg_language l ON l.oid = p.prolang
LEFT JOIN pg_aggregate ag ON ag.aggfnoid = p.oid
"""

EVENT_TRIGGERS = f"""
SELECT format('event trigger %I', e.evtname), NULL, jsonb_strip_nulls(jsonb_build_object(
    'event', e.evtevent,
    'tags', {sorted_array('e.evttags')},
    'function', {routine('e.evtfoid')},
    'enabled', CASE e.evtenabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled'
                                 WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END,
    'owner', pg_get_userbyid(e.evtowner),
    'comment', {comment('pg_event_trigger', 'e.oid')}
)), ARRAY[pg_get_userbyid(e.evtowner)::text]
FROM pg_event_trigger e
WHERE {not_part_of_another('pg_event_trigger', 'e.oid')}
  AND NOT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace
                  WHERE p.oid = e.evtfoid AND pn.nspname = '{TRACKING_SCHEMA}')
"""

# pg_collation gains columns between major versions (ICU locale, rules); reading the row as JSON
# keeps every one without naming them. The collation's version follows the C library or ICU the
# server was built with, not the schema, so it is left out with the identity columns.
COLLATIONS = f"""
SELECT format('collation %I.%I', n.nspname, co.collname), NULL,
       jsonb_strip_nulls(to_jsonb(co) - 'oid' - 'collname' - 'collnamespace' - 'collowner' - 'collversion')
       || jsonb_strip_nulls(jsonb_build_object('owner', pg_get_userbyid(co.collowner),
                                               'comment', {comment('pg_collation', 'co.oid')})),
       ARRAY[pg_get_userbyid(co.collowner)::text]
FROM pg_collation co JOIN ns n ON n.oid = co.collnamespace
WHERE {not_part_of_another('pg_collation', 'co.oid')}
"""

FOREIGN_DATA_WRAPPERS = f"""
SELECT f.key, NULL, jsonb_strip_nulls(jsonb_build_object(
    'handler', {routine('w.fdwhandler')},
    'validator', {routine('w.fdwvalidator')},
    'options', {sorted_array('w.fdwoptions')},
    'owner', pg_get_userbyid(w.fdwowner),
    'comment', {comment('pg_foreign_data_wrapper', 'w.oid')}
)), ARRAY[pg_get_userbyid(w.fdwowner)::text]
FROM fdw f JOIN pg_foreign_data_wrapper w ON w.oid = f.oid
"""

SERVERS = f"""
SELECT s.key, NULL, jsonb_strip_nulls(jsonb_build_object(
    'wrapper', w.fdwname,
    'type', fs.srvtype,
    'version', fs.srvversion,
    'options', {sorted_array('fs.srvoptions')},
    'owner', pg_get_userbyid(fs.srvowner),
    'comment', {comment('pg_foreign_server', 'fs.oid')}
)), ARRAY[pg_get_userbyid(fs.srvowner)::text]
FROM srv s JOIN pg_foreign_server fs ON fs.oid = s.oid
JOIN pg_foreign_data_wrapper w ON w.oid = fs.srvfdw
"""

FAMILIES = {
    "schemas": SCHEMAS,
    "extensions": EXTENSIONS,
    "types": TYPES,
    "functions": FUNCTIONS,
    "event triggers": EVENT_TRIGGERS,
    "collations": COLLATIONS,
    "foreign-data wrappers": FOREIGN_DATA_WRAPPERS,
    "servers": SERVERS,
}
