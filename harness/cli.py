"""The ``harness`` command: argument parsing, output and exit codes over :mod:`harness.commands`.

Exit codes: 0 every property holds, 1 a property is violated, 2 usage, configuration or
infrastructure error (one line saying why, on stderr, before anything else), or a walk that
discarded too many examples to be trusted; 130 / 143 a walk stopped by SIGINT / SIGTERM that
found nothing (it still reports what it walked).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn, Sequence

from . import commands, faces
from .errors import HarnessError
from .failures import read_failure_file, write_failure_file
from .progress import coverage_summary
from .settings import PROFILES, harness_path, load_settings

EXIT_OK, EXIT_VIOLATED, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error says why in its first line (argparse prints usage first)."""

    def error(self, message: str) -> NoReturn:
        print(f"harness: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = args.run(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("harness: interrupted; scratch databases dropped", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in the harness or a library: one line, details on request
        print(f"harness: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exc()
        else:
            print("harness: set HARNESS_DEBUG=1 for the traceback", file=sys.stderr)
        return EXIT_ERROR
    return result if isinstance(result, int) else _finish(result, args)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness", description="Execute Alembic migrations on real PostgreSQL and prove them safe."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, run) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        p.add_argument("--json", metavar="PATH", type=Path, help="write the result as JSON")
        p.add_argument("--database-url", metavar="URL",
                       help="an existing server (only scratch databases are created there)")
        p.add_argument("--pg-version", type=int, metavar="N", help="PostgreSQL major version to start")
        return p

    walk = command("walk", "the random walk over the revision graph", _walk)
    _project_options(walk)
    _ci_options(walk)
    walk.add_argument("--profile", choices=list(PROFILES), default=os.environ.get("HARNESS_PROFILE", "ci"),
                      help="budget: dev (seconds), ci (minutes, default), nightly (hours)")
    walk.add_argument("--seed", type=int, help="the seed of a previous walk, to repeat it")
    walk.add_argument("--max-examples", type=int, metavar="N", help="examples (fresh databases) to walk")
    walk.add_argument("--steps", type=int, metavar="N", help="steps per example")
    walk.add_argument("--since", metavar="GIT_REF",
                      help="walk only the revisions added since this git ref (pull-request mode)")
    walk.add_argument("--shard", type=_shard, metavar="I/N",
                      help="walk the I-th of N shares of the work (one per CI job, from 1)")
    walk.add_argument("--duration", metavar="DURATION",
                      help="stop after the example running when this is spent (seconds, or 90m)")

    sweep = command("sweep", "every revision up, down and up again, all invariants checked", _sweep)
    _project_options(sweep)
    _ci_options(sweep)
    sweep.add_argument("--revision", action="append", dest="revisions", metavar="REV",
                       help="sweep only these revisions (repeatable)")
    sweep.add_argument("--since", metavar="GIT_REF",
                       help="sweep only the revisions added since this git ref (pull-request mode)")
    sweep.add_argument("--jobs", type=int, metavar="N",
                       help="processes at once, each with a server of its own (default: one per "
                       "processor; the result is the same for any number)")

    baseline = command("baseline", "sweep and accept every finding: fail only on new ones from now on",
                       _baseline)
    baseline.add_argument("-c", "--config", type=Path, default=Path("alembic.ini"), help="alembic.ini")
    baseline.add_argument("-o", "--output", type=Path, metavar="FILE.json",
                          help="the baseline file (default: the baseline setting, else "
                          "harness-baseline.json beside alembic.ini)")

    replay = command("replay", "run a recorded failure again; exit 0 once it is fixed", _replay)
    replay.add_argument("failure_file", type=Path, metavar="FAILURE.json")
    replay.add_argument("-c", "--config", type=Path, help="alembic.ini (default: the recorded one)")
    replay.add_argument("--report", metavar="PATH", type=Path, help="write a markdown summary")

    coverage = sub.add_parser("coverage", help="coverage of several runs (shards of a night) merged",
                              description="coverage of several runs (shards of a night) merged")
    coverage.set_defaults(run=_coverage)
    coverage.add_argument("action", choices=["merge"])
    coverage.add_argument("files", nargs="+", type=Path, metavar="RESULT.json",
                          help="results written by walk --json (or merged coverage)")
    coverage.add_argument("--json", metavar="PATH", type=Path, help="write the merged coverage as JSON")

    report = command("report", "the migration safety verification document, from what ran", _report)
    report.add_argument("-c", "--config", type=Path, default=Path("alembic.ini"), help="alembic.ini")
    report.add_argument("-o", "--output", type=Path, metavar="FILE.md", help="write the markdown here")
    report.add_argument("--rows-per-table", type=int, default=200, metavar="N",
                        help="rows in each table of the seeded databases")
    report.add_argument("--walk-examples", type=int, default=10, metavar="N",
                        help="examples of the tenant isolation walk (0 skips it)")
    _ci_options(report)
    return parser


def _ci_options(p: argparse.ArgumentParser) -> None:
    """Files for CI services; GitHub annotations and job summary need none (GITHUB_ACTIONS)."""
    p.add_argument("--sarif", metavar="PATH", type=Path,
                   help="write SARIF 2.1.0 (code scanning): a result per violation, at its line")
    p.add_argument("--gitlab", metavar="PATH", type=Path,
                   help="write a GitLab Code Quality report")


def _project_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=Path("alembic.ini"), help="alembic.ini")
    p.add_argument("--failures-dir", type=Path, metavar="DIR",
                   help="where failure files go (default: .harness/failures beside alembic.ini)")
    p.add_argument("--report", metavar="PATH", type=Path, help="write a markdown summary")
    p.add_argument("--step-timeout", metavar="DURATION",
                   help="wall-clock limit of one step (seconds, or 10m): past it the step hangs")


def _settings(args: argparse.Namespace, ini: Path | None):
    return load_settings(ini, database_url=args.database_url, pg_version=args.pg_version,
                         step_timeout=getattr(args, "step_timeout", None))


def _walk(args: argparse.Namespace) -> commands.RunResult:
    settings = _settings(args, args.config).with_options(duration=args.duration)
    return commands.walk(
        settings, profile=args.profile, seed=args.seed, max_examples=args.max_examples,
        steps=args.steps, database_dir=harness_path(settings.alembic_ini, "examples"),
        since=args.since, shard=args.shard,
    )


def _shard(text: str) -> tuple[int, int]:
    try:
        return commands.parse_shard(text)
    except HarnessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sweep(args: argparse.Namespace) -> commands.RunResult:
    settings = _settings(args, args.config).with_options(jobs=args.jobs)
    return commands.sweep(settings, revisions=args.revisions, since=args.since)


def _baseline(args: argparse.Namespace) -> int:
    path, result = commands.write_baseline(_settings(args, args.config), args.output)
    _write(args.json, _json(result.to_json()))
    print(f"harness baseline: {len(result.violations)} findings accepted in {path}; "
          f"set baseline = \"{path.name}\" in [tool.harness] to fail only on new ones")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> commands.RunResult:
    _, recorded_ini = read_failure_file(args.failure_file)
    return commands.replay(args.failure_file, _settings(args, args.config or recorded_ini))


def _report(args: argparse.Namespace) -> int:
    from .report import build_report

    command = f"harness report -c {args.config}" + (f" -o {args.output}" if args.output else "")
    report = build_report(_settings(args, args.config), rows_per_table=args.rows_per_table,
                          walk_examples=args.walk_examples, command=command)
    _write(args.output, report.to_markdown())
    _write(args.json, _json(report.to_json()))
    if args.output is None:
        print(report.to_markdown())
    print(report.summary_line())
    faces.publish_report(report, sarif_path=args.sarif, gitlab_path=args.gitlab)
    return EXIT_OK if report.ok else EXIT_VIOLATED


def _coverage(args: argparse.Namespace) -> int:
    from . import coverage_history

    documents = []
    for path in args.files:
        try:
            documents.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise HarnessError(f"cannot read coverage from {path}: {exc}",
                               hint="give the files walk --json wrote") from None
    merged = coverage_history.merge(documents)
    revisions = list(dict.fromkeys(edge.split(" ", 1)[1] for edge in merged["edges"]))
    width = max((len(edge) for edge in merged["edges"]), default=0)
    print(f"harness coverage: {len(documents)} files, {merged['runs']} runs, "
          f"{merged['examples']} examples, {merged['steps']} steps")
    for edge, counts in merged["edges"].items():
        print(f"  {edge:<{width}}  ran {counts['ran']:>8}  with rows {counts['with_data']:>8}")
    print("\n".join(coverage_history.summary(merged, revisions)))
    _write(args.json, _json(merged))
    return EXIT_OK


def _finish(result: commands.RunResult, args: argparse.Namespace) -> int:
    out = sys.stdout
    ini = Path(args.config).resolve() if args.config else None
    failures_dir = getattr(args, "failures_dir", None) or (harness_path(ini, "failures") if ini else None)
    for failure in result.failures:
        print(failure.render(), file=out)
        if failures_dir is not None and result.command != "replay":
            path = write_failure_file(failures_dir, failure, ini)
            print(f"\nFailure file: {path}\nReplay it:    harness replay {path}", file=out)
        print("", file=out)
    for revision, reason in result.not_reached.items():
        print(f"not reached: {revision}: {reason}", file=out)
    if result.command == "walk":
        print("\n".join(coverage_summary(result.coverage)), file=out)
    print(_summary(result), file=out)
    _write(args.json, _json(result.to_json()))
    _write(args.report, result.to_markdown())
    faces.publish_run(result, sarif_path=getattr(args, "sarif", None),
                      gitlab_path=getattr(args, "gitlab", None))
    if not result.ok:
        return EXIT_VIOLATED
    if result.problem:
        print(f"harness: error: {result.problem}", file=sys.stderr)
        return EXIT_ERROR
    return 128 + result.stop_signal if result.stop_signal else EXIT_OK


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, default=str) + "\n"


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _summary(result: commands.RunResult) -> str:
    coverage = result.coverage
    counts: dict[str, int] = {}
    for failure in result.failures:
        counts[failure.violations[0].property] = counts.get(failure.violations[0].property, 0) + 1
    defects = len(result.failures)
    found = (f"{defects} defect{'s' * (defects != 1)} ("
             + ", ".join(f"{n} {p}" for p, n in sorted(counts.items())) + ")") if defects else "no defects"
    if unrepeated := sum(not failure.repeated for failure in result.failures):
        found += f" ({unrepeated} did not repeat)"
    if result.accepted:
        found += f" ({result.accepted} accepted by the baseline)"
    seed = f", seed {result.seed}" if result.seed is not None else ""
    return (
        f"harness {result.command}: {'ok' if result.ok else 'FAILED'}: {found}; "
        f"{coverage.get('steps', 0)} steps over {coverage.get('states', 0)} states in "
        f"{result.duration_s:.1f}s{seed}{_ending(result)}"
    )


def _ending(result: commands.RunResult) -> str:
    """How a walk ended, when not by running all its examples, and how many it discarded."""
    health = result.health or {}
    said = f"; {health.get('examples', 0)} examples"
    if health.get("discarded"):
        said += f", {health['discarded']} discarded"
    if result.stopped == "duration":
        said += ", stopped at its duration"
    elif result.stopped == "signal" and result.stop_signal:
        said += f", stopped by {commands.signal_name(result.stop_signal)}"
    elif result.stopped == "unrepeated":
        said += ", ended at a failure that did not repeat"
    return said if result.stopped else ""
