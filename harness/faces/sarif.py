"""SARIF 2.1.0 for code scanning: a rule per property, each result in its revision file.

Code scanning resolves relative URIs against the repository root (``%SRCROOT%``) and tracks a
result across commits by its partial fingerprint, so that an annotation fixed and found again is the
same alert, not a new one.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import PurePosixPath
from typing import Any, Mapping

from .annotations import Annotation

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/alembic-harness/"


def document(annotations: list[Annotation], rules: Mapping[str, str]) -> dict[str, Any]:
    """The SARIF log of one run; ``rules`` maps each rule id to its one-sentence description."""
    ids = list(rules) + sorted({a.rule for a in annotations} - set(rules))
    driver = {
        "name": "harness",
        "informationUri": INFORMATION_URI,
        "version": _version(),
        "rules": [_rule(rule, rules.get(rule, rule)) for rule in ids],
    }
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository root"}}},
            "results": [_result(a, ids.index(a.rule)) for a in annotations],
        }],
    }


def _rule(rule: str, text: str) -> dict[str, Any]:
    return {
        "id": rule,
        "name": "".join(part.capitalize() for part in rule.split("_")),
        "shortDescription": {"text": text.split(". ")[0].rstrip(".") + "."},
        "fullDescription": {"text": text},
        "defaultConfiguration": {"level": "error"},
    }


def _result(annotation: Annotation, index: int) -> dict[str, Any]:
    return {
        "ruleId": annotation.rule,
        "ruleIndex": index,
        "level": "error",
        "message": {"text": f"{annotation.title}: {annotation.message}"},
        "locations": [{"physicalLocation": {
            "artifactLocation": _artifact(annotation.path),
            "region": {"startLine": annotation.line},
        }}],
        "partialFingerprints": {"harnessFinding/v1": annotation.fingerprint},
    }


def _artifact(path: str) -> dict[str, str]:
    """Relative to the repository root when the file is inside it, else an absolute file URI."""
    if PurePosixPath(path).is_absolute():
        return {"uri": PurePosixPath(path).as_uri()}
    return {"uri": path, "uriBaseId": "%SRCROOT%"}


def _version() -> str:
    try:
        return metadata.version("alembic-harness")
    except metadata.PackageNotFoundError:
        return "0+unknown"
