"""Benchmark: grading a class with `cs-course grade` on 1 and 2 local workers and on 2 Dask workers.

    python bench/grading.py                 # 100 submissions (tens of minutes on 2 shared cores)
    python bench/grading.py --n 10          # a smaller class
    python bench/grading.py --configs j1,dask2 --json results-grading.json

The class is made of the solution (60 %), the partial answer of the pipeline
tests (20 %) and the untouched release (20 %) of assignment 1, so every score
is known; the run fails if one differs. Each configuration grades its own copy
of the class (the gradebook starts with the assignment registered, nothing
graded). Figures per configuration: wall-clock time, submissions per minute,
seconds per submission, CPU time of the coordinating process (preparing
submissions and nbgrader's bookkeeping) and of the workers with their
kernels, and the throughput relative to one local worker. On a machine that
other people also use, the wall-clock figures move with their load; the CPU
figures much less, so both are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_class(workspace: Path, n: int) -> dict[str, float]:
    """``n`` submissions of assignment 1 in ``workspace``; returns student -> expected score."""
    import nbformat
    from conftest import A1, A1_NOTEBOOK, A1_PARTIAL_ANSWERS, a1_expected_grades

    from cs_utils.course import fill_release, prepare_workspace

    release, source = ROOT / "assignments" / A1 / A1_NOTEBOOK, ROOT / "solutions" / A1 / A1_NOTEBOOK
    kinds = {"solution": nbformat.writes(fill_release(release, source)),
             "partial": nbformat.writes(fill_release(release, source, answers=A1_PARTIAL_ANSWERS)),
             "untouched": release.read_text()}
    expected_by_kind = {kind: sum(points.values()) for kind, points in a1_expected_grades().items()}
    expected = {}
    for i in range(n):
        kind = "solution" if i % 5 < 3 else ("partial" if i % 5 == 3 else "untouched")
        student = f"student{i:03d}"
        folder = workspace / "submitted" / student / A1
        folder.mkdir(parents=True)
        (folder / A1_NOTEBOOK).write_text(kinds[kind])
        expected[student] = expected_by_kind[kind]
    prepare_workspace(workspace, A1, course=ROOT)
    return expected


def run(config: str, template: Path, expected: dict[str, float], scratch: Path) -> dict:
    from conftest import A1

    from cs_utils.course import grade

    workspace = scratch / config
    shutil.copytree(template, workspace)
    cluster = client = None
    kwargs: dict = {"jobs": 1}
    if config.startswith("dask"):
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=int(config[4:]), threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        kwargs = {"dask": cluster.scheduler_address}
    else:
        kwargs = {"jobs": int(config[1:])}
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    try:
        results = grade(workspace, A1, course=ROOT, progress=False, **kwargs)
    finally:
        wall = time.perf_counter() - started
        if cluster is not None:
            cluster.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    wrong = {r.student: (r.score, expected[r.student], r.error) for r in results
             if not r.ok or abs((r.score or 0) - expected[r.student]) > 1e-4}
    coordinator_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    worker_cpu = sum(r.cpu_seconds for r in results)
    shutil.rmtree(workspace, ignore_errors=True)
    return {"config": config, "n": len(results), "wall_s": wall, "per_minute": 60 * len(results) / wall,
            "s_per_submission": wall / len(results), "notebook_s_mean": sum(r.seconds for r in results) / len(results),
            "coordinator_cpu_s": coordinator_cpu, "worker_cpu_s": worker_cpu,
            "cpu_s_per_submission": (coordinator_cpu + worker_cpu) / len(results),
            "workers": len({r.worker for r in results}), "wrong": wrong}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions in the class")
    parser.add_argument("--configs", default="j1,j2,dask2", help="j<N>: N local workers; dask<N>: a LocalCluster")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    scratch = Path(tempfile.mkdtemp(prefix="cs-bench-grading-"))
    try:
        template = scratch / "template"
        expected = make_class(template, args.n)
        load = os.getloadavg()
        print(f"{args.n} submissions of a1_convolution; {os.cpu_count()} CPUs, load average "
              f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; Python {platform.python_version()}")
        rows = []
        for config in args.configs.split(","):
            row = run(config, template, expected, scratch)
            rows.append(row)
            print(f"  {config:6} {row['wall_s']:8.1f} s wall  {row['per_minute']:6.2f} /min  "
                  f"{row['cpu_s_per_submission']:6.2f} CPU s per submission  workers used: {row['workers']}"
                  + (f"  WRONG: {row['wrong']}" if row["wrong"] else ""), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = rows[0]
    print()
    print(f"{'config':8}{'wall s':>9}{'s/sub':>8}{'subs/min':>10}{'speed-up':>10}{'coord CPU s':>13}"
          f"{'worker CPU s':>14}{'CPU s/sub':>11}")
    for row in rows:
        print(f"{row['config']:8}{row['wall_s']:9.1f}{row['s_per_submission']:8.2f}{row['per_minute']:10.2f}"
              f"{base['wall_s'] / row['wall_s']:10.2f}{row['coordinator_cpu_s']:13.1f}{row['worker_cpu_s']:14.1f}"
              f"{row['cpu_s_per_submission']:11.2f}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "rows": rows}, indent=1))
    return 1 if any(row["wrong"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
