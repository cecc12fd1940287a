"""`python -m drills [--quick] [--only NAME ...]`: run the drills one after another, each in a process of
its own, print the table and write RELIABILITY.md (full suite) and the results as JSON."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drills import report
from drills.accounting import DrillResult
from drills.harness import PIDS_FILE
from drills.processes import ROOT
from drills.scenarios import DRILLS, find

#: Past the deadline: the drill's own start-up (initdb, migrate, workers) and measuring.
SETUP_ALLOWANCE = 300.0
#: Runs of a drill that something outside it disturbed (its processes stopped by another program).
ATTEMPTS = 3


def sweep(workdir: Path) -> None:
    """Stop what a drill left running if its process was killed before its own teardown ran."""
    pids = workdir / PIDS_FILE
    for line in pids.read_text().split() if pids.exists() else []:
        try:
            os.killpg(int(line), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass
    postmaster = workdir / "postgres" / "data" / "postmaster.pid"
    if postmaster.exists():
        try:
            os.kill(int(postmaster.read_text().split()[0]), signal.SIGQUIT)
        except (ProcessLookupError, PermissionError, ValueError, IndexError):
            pass


def run_drill(name: str, *, rundir: Path, deadline: float, attempt: int = 1) -> DrillResult:
    workdir = rundir / (name if attempt == 1 else f"{name}.{attempt}")
    workdir.mkdir(parents=True)
    os.chmod(workdir, 0o755)  # noqa: S103 - PostgreSQL's own user must reach its data directory inside
    started = time.monotonic()
    with open(workdir / "drill.log", "wb") as log:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drills.run_one",
                name,
                "--workdir",
                str(workdir),
                "--deadline",
                str(deadline),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            child.wait(deadline + SETUP_ALLOWANCE)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        except BaseException:
            child.terminate()
            child.wait(60)
            raise
        finally:
            sweep(workdir)
            # The data is spent; the logs (workers', Beat's, postgres.log, redis.log) are kept.
            shutil.rmtree(workdir / "postgres" / "data", ignore_errors=True)
            for aof in (workdir / "redis").glob("appendonly*"):
                shutil.rmtree(aof, ignore_errors=True) if aof.is_dir() else aof.unlink()
    found = workdir / "result.json"
    if found.exists():
        return DrillResult.from_json(json.loads(found.read_text()))
    drill = find(name)
    return DrillResult(
        name=name,
        title=drill.title,
        deadline_seconds=deadline,
        seconds=time.monotonic() - started,
        error=f"the drill process ended without a result (exit {child.returncode}): "
        + (workdir / "drill.log").read_text(errors="replace")[-2000:],
    )


def _verdict(result: DrillResult) -> str:
    if result.disturbances:
        return f"DISTURBED ({'; '.join(result.disturbances)})"
    if result.error:
        return "ERROR"
    return "met" if result.met else "MISSED: " + "; ".join(result.misses)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the quick drills (those make test runs)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these drills only")
    parser.add_argument("--deadline", type=float, help="seconds a drill waits after its fault (default 180, "
                        "60 with --quick: the recovery target)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--report", type=Path, help="write the report here (default: RELIABILITY.md for the "
                        "full suite, none otherwise)")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the drills and exit")
    args = parser.parse_args()
    if args.list:
        for drill in DRILLS:
            print(f"{drill.name:28} {'quick ' if drill.quick else '      '}{drill.title}")
        return 0
    chosen = [find(n) for n in args.only] if args.only else [d for d in DRILLS if d.quick or not args.quick]
    deadline = args.deadline or (60.0 if args.quick else 180.0)
    rundir = Path(tempfile.mkdtemp(prefix="automation-drills-"))
    os.chmod(rundir, 0o755)  # noqa: S103 - the postgres user reaches its data below
    print(f"drills: {len(chosen)} to run; logs in {rundir}", flush=True)
    started = time.monotonic()
    results: list[DrillResult] = []
    for drill in chosen:
        for attempt in range(1, ATTEMPTS + 1):
            result = run_drill(drill.name, rundir=rundir, deadline=deadline, attempt=attempt)
            print(f"  {drill.name:28} {result.seconds:6.1f} s  {_verdict(result)}", flush=True)
            if not result.disturbances:
                break
        if attempt > 1:
            result.notes.insert(0, f"run {attempt} times: the earlier attempts were disturbed from outside")
        results.append(result)
    total = time.monotonic() - started
    (rundir / "results.json").write_text(json.dumps([r.to_json() for r in results], indent=2))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=2))
    print()
    print(report.table(results))
    target = args.report or (None if (args.quick or args.only) else ROOT / "RELIABILITY.md")
    if target is not None:
        report.write(target, results, quick=args.quick, total_seconds=total)
        print(f"\nwritten: {target}")
    if any(r.error for r in results):
        return 2
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
