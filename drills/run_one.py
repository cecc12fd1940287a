"""One drill in a process of its own (the engine reads its environment once, at import): starts the
drill's world, runs it, judges it, writes the result as JSON (`python -m drills.run_one NAME --workdir D`)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

from drills.accounting import DrillResult
from drills.harness import Harness
from drills.scenarios import find


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the harness, which stops everything it started


def run(name: str, *, workdir: Path, deadline: float) -> DrillResult:
    drill = find(name)
    result = DrillResult(name=drill.name, title=drill.title, deadline_seconds=deadline)
    started = time.monotonic()
    try:
        with Harness(drill.name, workdir=workdir, deadline=deadline, redis_aof=drill.redis_aof) as harness:
            try:
                drill.run(harness, result)
            finally:
                harness.measure_effects(result)
                harness.observe(result)
    except Exception:  # noqa: BLE001 - whatever broke, the suite reports it as this drill's error
        result.error = traceback.format_exc()[-3000:]
    result.judge()
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=180.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    result = run(args.name, workdir=args.workdir, deadline=args.deadline)
    (args.workdir / "result.json").write_text(json.dumps(result.to_json(), indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
