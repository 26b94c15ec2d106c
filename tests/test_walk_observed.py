"""What a walk walked, as Hypothesis's observability output shows it (the lines Tyche reads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from projects import chain, make_project


def test_each_test_case_carries_the_walks_features(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a", "b"))
    storage = tmp_path / "hypothesis"
    env = {**os.environ, "HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY": "1",
           "HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY_NOCOVER": "1",
           "HYPOTHESIS_STORAGE_DIRECTORY": str(storage)}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "walk", "-c", str(ini), "--database-url", pg_server.dsn(),
         "--seed", "3", "--max-examples", "5", "--steps", "8"], capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0, done.stderr

    lines = [json.loads(line) for path in (storage / "observed").glob("*.jsonl")
             for line in path.read_text().splitlines()]
    cases = [line for line in lines if line.get("type") == "test_case" and line.get("status") == "passed"]
    assert cases
    features = [case["features"] for case in cases]
    assert all("steps" in f for f in features)
    # examples start from states drawn over the graph (the start is a feature); the edges an
    # example walks from there are its features, whichever it starts from
    starts = {f["start"] for f in features}
    assert starts <= {"base", "a", "b"} and len(starts) > 1
    assert any(key in ("upgrade a", "upgrade b", "downgrade a", "downgrade b") for f in features for key in f)
    assert any(key.startswith("rows public.t_") for f in features for key in f)
    assert all("target:distinct edges walked" in f for f in features)
