"""One frozen, validated value for everything a run is configured by.

Sources, later ones winning: the defaults below, ``[tool.harness]`` in the ``pyproject.toml``
beside ``alembic.ini``, ``HARNESS_DATABASE_URL`` and ``HARNESS_EXAMPLES``, then explicit
options (command line or Python).
``DATABASE_URL`` is deliberately never read: it usually names a database someone cares about.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Mapping, Union, get_args, get_origin, get_type_hints

from .errors import HarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the old-stack tox environment
    import tomli as tomllib

STEP_TIMEOUT_FACTOR = 5
"""The default step limit in statement timeouts: a step runs several statements, each bounded."""
_DURATIONS = {"step_timeout", "duration"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

ServerKind = Literal["embedded", "url", "container"]
ProfileName = Literal["dev", "ci", "nightly"]
EnvMode = Literal["project", "builtin"]
ConnectionAttribute = Literal["connection", "engine"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to run the harness on one Alembic project.

    Every field can be set in ``[tool.harness]`` under the same name.
    """

    alembic_ini: Path | None = None
    """The project's alembic.ini; None when only a server is wanted."""

    server: ServerKind = "embedded"
    """Which PostgreSQL: one the harness starts, one at ``database_url``, or a container."""
    database_url: str | None = None
    """An existing server; the harness only creates and drops its own databases there."""
    pg_version: int | None = None
    """Major version for the embedded server or container; None takes the newest found."""
    pg_bin_dir: str | None = None
    """Directory holding ``initdb`` and ``postgres``, when they are not found on their own."""
    keep_server_dir: bool = False
    """Keep the embedded cluster's data directory after the run (for post-mortems)."""

    env: EnvMode = "project"
    """Run migrations through the project's env.py, or through the harness's built-in one
    (for an env.py that needs the application: Flask-Migrate's, a settings module's)."""
    connection_attribute: ConnectionAttribute = "connection"
    """What the harness puts in ``config.attributes["connection"]`` for env.py: a Connection,
    as in Alembic's cookbook, or an Engine, for env.py files that call ``.connect()`` on it."""
    transaction_per_migration: bool = False
    """With ``env = "builtin"``: one transaction per migration, as the project's env.py says."""
    env_var: str | None = None
    """Environment variable set to the scratch database's URL, for env.py files that read one."""
    driver: str | None = None
    """SQLAlchemy driver for the migrations (psycopg, psycopg2, asyncpg); default from the URL."""
    statement_timeout_ms: int = 60_000
    """A migration statement running longer than this is reported as a hang."""
    step_timeout: float | None = None
    """Seconds (or ``"10m"``) one step may take, whatever it is stuck in (Python code, a call to
    a service): past it the step is a hang. A safety net far above any normal step; None: five
    times ``statement_timeout_ms``."""
    seed_rows: int = 4
    """Rows the walk draws per seed step. Every draw of an example shares one budget of
    Hypothesis (8 KiB of choices): at about 4 rows a step, a nightly example of 60 steps stays
    well inside it. Fewer when the walk's health reports overruns."""
    examples: str | None = None
    """A second example database besides the directory ``.harness/examples`` beside alembic.ini
    (also ``HARNESS_EXAMPLES``): ``redis://host:6379/0``, shared by walks on several machines,
    or ``github-artifact://owner/repo/artifact-name``, read only, for pull requests."""
    duration: float | None = None
    """Seconds (or ``"90m"``) a walk may run: it then stops after the current example and
    reports. None: the profile's own (the nightly profile has one)."""
    version_table: str | None = None
    """``schema.table`` of Alembic's version table when env.py configures another one."""

    tenant_setting: str | None = None
    """The setting policies read the tenant from; detected from the policies when None."""
    tenant_column: str | None = None
    """The column holding the tenant; detected from the policies when None."""
    app_roles: tuple[str, ...] = ()
    """Roles the application connects as; detected from the grants when empty."""
    data_migrations: tuple[str, ...] = ()
    """Revisions that change existing rows on purpose, exempt from data preservation."""
    irreversible: dict[str, str] = dataclasses.field(default_factory=dict)
    """Revisions whose downgrade is deliberately impossible, each with the reason: never downgraded."""
    baseline: str | None = None
    """File of accepted findings (relative to alembic.ini); only new findings fail."""
    expected_objects: tuple[str, ...] = ()
    """Objects that must exist at head, as the report names them (``table public.tenants``)."""
    accept_column_order: bool = False
    """Accept columns that come back at the end of their table after a downgrade and upgrade."""
    target_metadata: str | None = None
    """``module:attribute`` of the models' MetaData, for the ``models`` property when env.py
    passes none to ``context.configure()`` (else env.py's is used)."""
    heads: int | None = None
    """The most heads the history may have (``1``: every branch merged); None: no limit."""
    jobs: int | None = None
    """Processes a sweep runs in at once, each with a server of its own (so only with the
    embedded server); None: one per processor this process may use. Its result is the same
    for any number."""

    @property
    def step_timeout_s(self) -> float:
        """The wall-clock limit of one step, in seconds."""
        if self.step_timeout is not None:
            return self.step_timeout
        return STEP_TIMEOUT_FACTOR * self.statement_timeout_ms / 1000
    scoped_snapshots: bool = True
    """After a step, read only the objects and the rows it changed (logged by event triggers and
    a statement trigger per table in the scratch database), with a whole snapshot the first time
    a walk reaches each state and at the end of each trial; off: every snapshot is whole and
    every table's rows are digested after every step."""
    checkpoints: int = 24
    """The most databases a walk keeps at once, after it has found a failure, of states its
    trials reached (where a trial ended, where attempts parted): a shrink attempt or a replay
    that takes the same steps clones the last it shares instead of running them again (see
    :mod:`harness.checkpoints`); 0: none."""

    def with_options(self, **options: Any) -> Settings:
        """A copy with the options that are not None applied, validated like file settings."""
        given = {k: v for k, v in options.items() if v is not None}
        return _build(self, given, source="options")


@dataclasses.dataclass(frozen=True)
class Profile:
    """A walk's budget: how many examples, how long each, how much work shrinking one failure
    may take. Work, never seconds: a seed must give the same failure under any load."""

    max_examples: int
    """Examples (fresh databases) to walk."""
    steps: int
    """Steps per example at most (Hypothesis' ``stateful_step_count``)."""
    shrink_examples: int
    """Examples Hypothesis's shrinking may replay. Every one replays migrations (about 50 ms a
    step), so its own bound (500 successful shrinks or 300 s) would cost minutes per failure."""
    replays: int
    """Replays that may cut the shrunk failure's steps and rows further (:mod:`harness.minimize`)."""
    duration: float | None = None
    """Seconds after which the walk ends, after the example running then: the nightly one
    leaves room for shrinking and the report inside a CI job's six hours."""


PROFILES: dict[str, Profile] = {
    "dev": Profile(max_examples=10, steps=12, shrink_examples=15, replays=12),
    "ci": Profile(max_examples=30, steps=20, shrink_examples=30, replays=24),
    "nightly": Profile(max_examples=100_000, steps=30, shrink_examples=500, replays=80,
                       duration=4 * 3600),
}
"""Budgets by use: a quick look at a desk, minutes in CI, hours at night. Nightly examples are
30 steps (at 60 they overran Hypothesis's budget per example more often; see docs/ci.md for
what a nightly walk discards). Here, not beside the machine, so that ``harness --help`` lists
them without loading Hypothesis."""

def profile(name: str) -> Profile:
    """The budget of the profile ``name``; an unknown name is an error listing the known ones."""
    if name not in PROFILES:
        raise HarnessError(f"unknown profile {name!r}", hint=f"one of {', '.join(PROFILES)}")
    return PROFILES[name]


HARNESS_DIR = ".harness"
"""The harness's own files, beside alembic.ini (a project adds it to .gitignore):
``examples/``, Hypothesis' saved examples, which run first in the next walk, and
``failures/``, the failure files ``harness replay`` reads."""


def harness_path(
    alembic_ini: str | os.PathLike[str], part: Literal["examples", "failures", "hypothesis"]
) -> Path:
    """Where the harness keeps ``part`` for the project of ``alembic_ini``."""
    return Path(alembic_ini).parent / HARNESS_DIR / part


def load_settings(alembic_ini: str | os.PathLike[str] | None = None, **options: Any) -> Settings:
    """Settings for the project whose ``alembic.ini`` is given, with ``options`` on top."""
    settings = Settings()
    if alembic_ini is not None:
        ini = Path(alembic_ini).resolve()
        if not ini.is_file():
            raise HarnessError(
                f"no alembic.ini at {ini}", hint="pass the project's file with -c PATH"
            )
        settings = dataclasses.replace(settings, alembic_ini=ini)
        settings = _build(settings, _read_pyproject(ini.parent / "pyproject.toml"),
                          source=str(ini.parent / "pyproject.toml"))
    for name, setting in (("HARNESS_DATABASE_URL", "database_url"), ("HARNESS_EXAMPLES", "examples")):
        if os.environ.get(name):
            settings = _build(settings, {setting: os.environ[name]}, source=name)
    return settings.with_options(**options)


def _read_pyproject(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("harness", {})
    return {key.replace("-", "_"): value for key, value in table.items()}


def _build(base: Settings, values: Mapping[str, Any], *, source: str) -> Settings:
    fields = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise HarnessError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} in {source}: {', '.join(unknown)}",
            hint=f"known settings: {', '.join(sorted(fields))}",
        )
    hints = get_type_hints(Settings)
    converted = {name: _convert(name, value, hints[name], source) for name, value in values.items()}
    if converted.get("database_url") and "server" not in converted:
        converted["server"] = "url"
    return dataclasses.replace(base, **converted)


def _convert(name: str, value: Any, hint: Any, source: str) -> Any:
    """Check ``value`` against the field's type, converting the few lossless cases."""
    if name in _DURATIONS and value is not None:
        return parse_duration(value, f"setting {name} in {source}")
    union = get_origin(hint) in (Union, UnionType)
    options = [a for a in get_args(hint) if a is not type(None)] if union else [hint]
    if value is None and union and type(None) in get_args(hint):
        return None
    for option in options:
        origin = get_origin(option)
        if origin is Literal and value in get_args(option):
            return value
        if origin is tuple and isinstance(value, (list, tuple)) and all(
            isinstance(v, str) for v in value
        ):
            return tuple(value)
        if origin is dict and isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return dict(value)
        if option is Path and isinstance(value, (str, os.PathLike)):
            return Path(value)
        if option in (int, str, bool) and type(value) is option:
            return value
    expected = " or ".join(_describe(o) for o in options)
    raise HarnessError(f"setting {name} in {source} must be {expected}, not {value!r}")


def parse_duration(value: Any, what: str = "a duration") -> float:
    """Seconds from a number of seconds or a text like ``"90m"``, ``"1h30m"``, ``"45s"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
        if not parts or re.sub(r"[\d.\s]+[smhd]?", "", text):
            raise HarnessError(f"{what} must be seconds or a duration like 90m, 1h30m, 45s, "
                               f"not {value!r}")
        seconds = sum(float(n) * _UNITS[unit or "s"] for n, unit in parts)
    if seconds <= 0:
        raise HarnessError(f"{what} must be positive, not {value!r}")
    return seconds


def _describe(option: Any) -> str:
    if get_origin(option) is Literal:
        return " / ".join(repr(a) for a in get_args(option))
    if get_origin(option) is tuple:
        return "a list of strings"
    if get_origin(option) is dict:
        return "a table of strings"
    return getattr(option, "__name__", str(option))
