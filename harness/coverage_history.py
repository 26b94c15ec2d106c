"""Coverage merged across runs: per edge, how often it ran, and how often with rows in place.

One walk says little about a history; a month of nights says which edges were never walked with
data. Each walk saves its own coverage as one value in the example database, under a key of its
own beside Hypothesis's examples, so wherever the failures go the coverage goes too: the local
directory, the Redis server shards share (every shard then reads the others' runs), or a
read-only GitHub artifact a pull request starts from. A value per run, never a counter updated
in place, so that concurrent runs (pytest-xdist workers, shards) never lose each other's counts.

Shards of one night also write their run's coverage in their JSON results; ``harness coverage
merge`` adds those up (:func:`merge` over :func:`from_run`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterable

from hypothesis.database import ExampleDatabase

KEY = b"harness-coverage"
FORMAT = "harness-coverage/1"
DIRECTIONS = ("upgrade", "downgrade")


def from_run(coverage: dict[str, Any]) -> dict[str, Any]:
    """One run's document, from a result's ``coverage`` (see :meth:`Coverage.to_json`)."""
    with_data = coverage.get("with_data", {})
    edges = {
        f"{op} {rev}": {"ran": counts.get(op, 0), "with_data": with_data.get(rev, {}).get(op, 0)}
        for rev, counts in coverage.get("revisions", {}).items() for op in DIRECTIONS
    }
    return {"format": FORMAT, "runs": 1, "examples": coverage.get("examples", 0),
            "steps": coverage.get("steps", 0), "edges": edges,
            "irreversible": sorted(coverage.get("irreversible", {})),
            "from_empty": sorted(coverage.get("from_empty", ()))}


def merge(documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of coverage documents (and of results' coverage, read as documents)."""
    merged: dict[str, Any] = {"format": FORMAT, "runs": 0, "examples": 0, "steps": 0, "edges": {}}
    irreversible: set[str] = set()
    from_empty: set[str] = set()
    for document in documents:
        if "coverage" in document:  # a result written by --json
            document = from_run(document["coverage"])
        if document.get("format") != FORMAT:
            continue
        for field in ("runs", "examples", "steps"):
            merged[field] += int(document.get(field, 0))
        for edge, counts in document.get("edges", {}).items():
            total = merged["edges"].setdefault(edge, {"ran": 0, "with_data": 0})
            for field in total:
                total[field] += int(counts.get(field, 0))
        irreversible.update(document.get("irreversible", ()))
        from_empty.update(document.get("from_empty", ()))
    merged["irreversible"], merged["from_empty"] = sorted(irreversible), sorted(from_empty)
    return merged


def record(database: ExampleDatabase, coverage: dict[str, Any]) -> None:
    """Save one run's coverage; a read-only database keeps nothing, silently."""
    document = {**from_run(coverage), "run": uuid.uuid4().hex}  # two identical runs count twice
    database.save(KEY, json.dumps(document, sort_keys=True).encode())


def read(database: ExampleDatabase) -> dict[str, Any]:
    """Every run's coverage saved in ``database``, merged; values that are not documents (a
    damaged file, another version's format) are left out."""
    documents = []
    for value in database.fetch(KEY):
        try:
            documents.append(json.loads(value))
        except ValueError:
            continue
    return merge(d for d in documents if isinstance(d, dict))


def summary(merged: dict[str, Any], revisions: list[str]) -> list[str]:
    """Edges of ``revisions`` ever run, and ever run with rows in place, over all runs; then the
    edges never run with rows, named. Downgrades of irreversible revisions are no edges; an
    upgrade that starts where no table exists yet never has rows to run on."""
    skipped = set(merged.get("irreversible", ()))
    edges = [f"{op} {rev}" for rev in revisions for op in DIRECTIONS
             if not (op == "downgrade" and rev in skipped)]
    empty = {f"upgrade {rev}" for rev in merged.get("from_empty", ())}
    ran = [edge for edge in edges if merged["edges"].get(edge, {}).get("ran")]
    could = [edge for edge in edges if edge not in empty]
    never = [edge for edge in could if not merged["edges"].get(edge, {}).get("with_data")]
    runs = f"{merged['runs']} run{'s' * (merged['runs'] != 1)}"
    lines = [f"over {runs} ({merged['examples']} examples): edges {len(ran)}/{len(edges)} "
             f"exercised, {len(could) - len(never)}/{len(could)} with rows in place"]
    if never:
        lines.append("  never with rows in place: " + ", ".join(never))
    return lines
