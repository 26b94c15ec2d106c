"""The alternative: pytest-alembic's up/down consistency and downgrade-leaves-no-trace tests.

pytest-alembic is never a dependency of the harness: it runs from a virtual environment of its
own (made on first use under the temporary directory), with a pytest it can collect under --
its 0.13.1 crashes at collection under pytest 9.2 -- and the same Alembic, SQLAlchemy and psycopg
as the harness, so only the tools differ. Its time is what pytest itself measured for the two
tests (setup, call and teardown, from its JUnit XML): interpreter start and collection are left
out, as the harness's sweep is timed inside its process too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from importlib.metadata import version
from pathlib import Path

PYTEST_ALEMBIC = "pytest-alembic==0.13.1"
PYTEST = "pytest>=8,<9"
TESTS = ("test_up_down_consistency", "test_downgrade_leaves_no_trace")

CONFTEST = '''\
import os

import pytest
import sqlalchemy


@pytest.fixture
def alembic_config():
    return {"file": os.environ["BENCH_ALEMBIC_INI"]}


@pytest.fixture
def alembic_engine():
    engine = sqlalchemy.create_engine(os.environ["BENCH_DATABASE_URL"])
    yield engine
    engine.dispose()
'''

PYTEST_INI = """\
[pytest]
pytest_alembic_include_experimental = downgrade_leaves_no_trace
pytest_alembic_tests_path = conftest.py
"""


def environment() -> Path:
    """The Python of pytest-alembic's own virtual environment, made once."""
    stack = [f"{name}=={version(name)}" for name in ("alembic", "sqlalchemy", "psycopg", "psycopg-binary")]
    root = Path(tempfile.gettempdir()) / "harness-bench-pytest-alembic"
    python = root / "bin" / "python"
    marker = root / "installed.txt"
    wanted = "\n".join([PYTEST_ALEMBIC, PYTEST, *stack])
    if not marker.is_file() or marker.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PYTEST_ALEMBIC, PYTEST, *stack],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marker.write_text(wanted)
    return python


def run_pytest_alembic(python: Path, ini: Path, url: str) -> float:
    """Seconds pytest-alembic's two tests took on the history at ``ini``, database ``url``."""
    with tempfile.TemporaryDirectory(prefix="bench-pytest-alembic-") as work:
        work_dir = Path(work)
        (work_dir / "conftest.py").write_text(CONFTEST)
        (work_dir / "pytest.ini").write_text(PYTEST_INI)
        report = work_dir / "report.xml"
        env = {**os.environ, "BENCH_ALEMBIC_INI": str(ini), "BENCH_DATABASE_URL": url}
        env.pop("PYTEST_ADDOPTS", None)
        result = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--test-alembic",
             "-k", " or ".join(TESTS), f"--junitxml={report}"],
            cwd=work_dir, env=env, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pytest-alembic failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        cases = ElementTree.parse(report).getroot().iter("testcase")
        times = {case.get("name"): float(case.get("time")) for case in cases}
    missing = [name for name in TESTS if name not in times]
    if missing:
        raise RuntimeError(f"pytest-alembic did not run {missing}")
    return sum(times[name] for name in TESTS)
