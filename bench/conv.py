"""Benchmark: cs_utils backends against torch on the CPU, as ratios, in one run.

    python bench/conv.py            # everything (a few minutes on 2 cores)
    python bench/conv.py --quick    # fewer repeats, for a smoke test
    python bench/conv.py --json out.json

Every measurement runs in a fresh subprocess of its own, so that NumPy's and
torch's thread pools never compete (on 2 cores that alone costs 1.6-2.6x) and
so that the peak memory (ru_maxrss) of that one measurement can be read.
Times are medians of several repeats (the best repeat is kept too). The naive
loops are timed on one image and scaled by the batch size (marked ~). Peak
memory is that of the first forward+backward call of the process, above what
the inputs and the imported libraries already take. The load average is
printed: on a machine shared with other jobs, compare only ratios measured in
the same run, and run it again when the load was high.

On a machine with a CUDA GPU a "cuda" column is added: the "torch" backend with
the tensors on the GPU (timed with torch.cuda.synchronize, its peak memory from
torch.cuda.max_memory_allocated). Without one the column is left out, and said so.

The last lines compare the figures with the targets of the performance issue
and print PASS or FAIL for each; a JSON file keeps every figure (the
building-layers lecture plots it with cs_utils.viz.plot_benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONV_CASES = {
    "A": dict(x=(100, 3, 31, 31), w=(25, 3, 3, 3), stride=1, pad=1),
    "B": dict(x=(64, 64, 32, 32), w=(64, 64, 3, 3), stride=1, pad=1),
    "C": dict(x=(16, 3, 227, 227), w=(96, 3, 11, 11), stride=4, pad=0),
}
POOL_CASES = {
    "P2": dict(x=(64, 64, 32, 32), size=2, stride=2),
    "P3": dict(x=(64, 64, 33, 33), size=3, stride=2),
}
BACKENDS = ["naive", "numpy", "cython", "torch", "cuda"]  # cuda: the torch backend on a GPU, where there is one
DTYPES = ["float32", "float64"]

# (label, how to compute the measured value from the results, comparison, target)
TARGETS = [
    ("conv fwd+bwd float32, case B, cython vs torch", ("ratio", "conv", "B", "float32", "fwdbwd"), "<=", 1.3),
    ("conv fwd+bwd float64, case B, cython vs torch", ("ratio", "conv", "B", "float64", "fwdbwd"), "<=", 0.8),
    ("conv fwd+bwd float32, case A, cython vs torch", ("ratio", "conv", "A", "float32", "fwdbwd"), "<=", 1.5),
    ("conv forward float32, case B, share of GEMM peak", ("peak", "conv", "B", "float32", "fwd"), ">=", 0.70),
    ("max pool 2x2 s2 fwd+bwd float32, cython vs torch", ("ratio", "pool", "P2", "float32", "fwdbwd"), "<=", 1.5),
    ("max pool 3x3 s2 fwd+bwd float32, cython vs torch", ("ratio", "pool", "P3", "float32", "fwdbwd"), "<=", 2.0),
    ("peak memory, case B fwd+bwd float32, cython vs torch", ("memory", "conv", "B", "float32", "fwdbwd"), "<=", 1.5),
]


def conv_flops(case: dict) -> float:
    """Floating-point operations of one forward pass: 2 per multiply-add."""
    n, c, h, w = case["x"]
    f, _, hh, ww = case["w"]
    ho = (h + 2 * case["pad"] - hh) // case["stride"] + 1
    wo = (w + 2 * case["pad"] - ww) // case["stride"] + 1
    return 2.0 * n * f * ho * wo * c * hh * ww


# --------------------------------------------------------------------------
# Worker side: one measurement per process
# --------------------------------------------------------------------------


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _status_kib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _call_peak_mib(fn) -> float:
    """Memory that one call of ``fn`` needs at its peak, above what the process held before.

    Measured on the first call, with the inputs made and the libraries imported: on
    Linux the high-water mark (VmHWM) is reset to the current size first (clear_refs),
    so the figure is the call's own peak. Measuring after a warm-up call instead would
    see memory that the allocator kept from the warm-up and report too little.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
        fn()
        return max(_status_kib("VmHWM") - before, 0.0) / 1024.0
    except OSError:  # not Linux: ru_maxrss never goes down, so its rise is the peak of fn
        before = _peak_mib()
        fn()
        return max(_peak_mib() - before, 0.0)


def _synced(fn):
    """``fn`` followed by waiting for the GPU to finish it."""
    import torch

    def call():
        fn()
        torch.cuda.synchronize()

    return call


def _cuda_call_peak_mib(fn) -> float:
    """GPU memory that one call of ``fn`` needs at its peak, above what was allocated before."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def _times_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, best) of ``repeats`` timed calls after one warm-up call."""
    fn()  # warm-up (allocator, thread pools, lazy imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def _median_ms(fn, repeats: int) -> float:
    return _times_ms(fn, repeats)[0]


def _make_inputs(job: dict):
    import numpy as np

    rng = np.random.default_rng(0)
    dtype = np.dtype(job["dtype"])
    if job["op"] == "conv":
        case = CONV_CASES[job["case"]]
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = (rng.standard_normal(case["w"]) * 0.1).astype(dtype)
        b = rng.standard_normal(case["w"][0]).astype(dtype)
        return [x, w, b], case
    case = POOL_CASES[job["case"]]
    return [rng.standard_normal(case["x"]).astype(dtype)], case


def run_worker(job: dict) -> dict:
    """Time one (op, case, backend, dtype): median and best of the repeats, and peak memory."""
    import numpy as np

    if job["op"] == "gemm":
        n = 2048
        a = np.random.default_rng(0).standard_normal((n, n)).astype(job["dtype"])
        median, best = _times_ms(lambda: a @ a, job["repeats"])
        return {"gflops": 2 * n**3 / (median * 1e-3) / 1e9, "best_gflops": 2 * n**3 / (best * 1e-3) / 1e9}

    arrays, case = _make_inputs(job)
    backend = job["backend"]
    scale = 1
    if backend == "naive":  # one image, scaled by N: the loops are linear in the batch
        scale = arrays[0].shape[0]
        arrays[0] = arrays[0][:1].copy()
    from cs_utils import functional as F
    from cs_utils.shapes import conv_output_shape, pool_output_shape

    if job["op"] == "conv":
        out_shape = conv_output_shape(arrays[0].shape, arrays[1].shape, case["stride"], case["pad"])
    else:
        out_shape = pool_output_shape(arrays[0].shape, case["size"], case["stride"])
    arrays.append(np.ones(out_shape, dtype=arrays[0].dtype))  # the upstream gradient
    on_gpu = backend == "cuda"  # the torch backend, with the tensors on the GPU
    if backend in ("torch", "cuda"):
        import torch

        torch.set_grad_enabled(False)
        arrays = [torch.from_numpy(a) for a in arrays]
        if on_gpu:
            arrays = [a.cuda() for a in arrays]
        backend = "torch"

    if job["op"] == "conv":
        x, w, b, dout = arrays
        kw = dict(stride=case["stride"], pad=case["pad"], backend=backend)

        def fwd():
            F.conv_forward(x, w, b, **kw)

        def fwdbwd():
            _, c = F.conv_forward(x, w, b, **kw)
            F.conv_backward(dout, c)

    else:
        x, dout = arrays
        kw = dict(size=case["size"], stride=case["stride"], backend=backend)

        def fwd():
            F.max_pool_forward(x, **kw)

        def fwdbwd():
            _, c = F.max_pool_forward(x, **kw)
            F.max_pool_backward(dout, c)

    result = {"estimated": scale != 1}
    if on_gpu:  # a GPU runs asynchronously: a call is done when the device is
        fwd, fwdbwd = _synced(fwd), _synced(fwdbwd)
        result["fwdbwd_peak_mib"] = _cuda_call_peak_mib(fwdbwd)
    else:
        result["fwdbwd_peak_mib"] = _call_peak_mib(fwdbwd) if scale == 1 else None
    median, best = _times_ms(fwdbwd, job["repeats"])
    result["fwdbwd_ms"], result["fwdbwd_best_ms"] = median * scale, best * scale
    median, best = _times_ms(fwd, job["repeats"])
    result["fwd_ms"], result["fwd_best_ms"] = median * scale, best * scale
    return result


# --------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------


def _cuda_available() -> bool:
    """Asked in a subprocess, so that this process never starts torch's threads or CUDA."""
    probe = "import torch; print(torch.cuda.is_available())"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == "True"


def measure(job: dict) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_ms(r: dict | None, key: str) -> str:
    if not r or "error" in r:
        return "error" if r else "-"
    return ("~" if r.get("estimated") else "") + f"{r[key]:.1f}"


def _ratio(r: dict | None, t: dict | None, key: str) -> str:
    if not r or not t or "error" in r or "error" in t:
        return "-"
    return f"{r[key] / t[key]:.2f}x"


def _target_value(kind, op, case, dtype, key, results, gemm_peak, stat):
    """The measured value of one target; ``stat`` "" uses medians, "_best" the best repeats."""
    ours = results.get(f"{op}/{case}/cython/{dtype}") or results.get(f"{op}/{case}/numpy/{dtype}")
    torch_r = results.get(f"{op}/{case}/torch/{dtype}")
    try:
        if kind == "ratio":
            return ours[f"{key}{stat}_ms"] / torch_r[f"{key}{stat}_ms"]
        if kind == "peak":  # always best against best: the GEMM peak is the best of its repeats
            return conv_flops(CONV_CASES[case]) / (ours[f"{key}_best_ms"] * 1e-3) / 1e9 / gemm_peak[dtype]
        if kind == "memory":
            return ours[f"{key}_peak_mib"] / torch_r[f"{key}_peak_mib"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return None


def evaluate_targets(results: dict, gemm_peak: dict) -> list[tuple[str, float | None, str, float, bool | None, float | None]]:
    """(label, value, comparison, target, passed, value from the best repeats) per target.

    Ratios use medians (the verdict) and, for a feeling of the noise, the best repeats.
    The share of the GEMM peak compares best with best: on a busy machine the
    two-thread BLAS benchmark loses far more to other processes than one thread per
    core does, and a median GEMM figure would make every share look good.
    """
    rows = []
    for label, (kind, op, case, dtype, key), cmp, target in TARGETS:
        value = _target_value(kind, op, case, dtype, key, results, gemm_peak, "")
        best = _target_value(kind, op, case, dtype, key, results, gemm_peak, "_best") if kind == "ratio" else None
        ok = None if value is None else (value <= target if cmp == "<=" else value >= target)
        rows.append((label, value, cmp, target, ok, best))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, not a measurement)")
    parser.add_argument("--repeats", type=int, default=0, help="timed repeats per measurement (default 7, 2 with --quick)")
    parser.add_argument("--json", default=str(Path(__file__).with_name("results.json")), help="where to write all figures")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset of " + ",".join(BACKENDS))
    parser.add_argument("--cases", default=",".join(list(CONV_CASES) + list(POOL_CASES)))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0

    repeats = args.repeats or (2 if args.quick else 7)
    backends = [b for b in args.backends.split(",") if b]
    cases = [c for c in args.cases.split(",") if c]
    import numpy as np

    from cs_utils.im2col import HAVE_CYTHON

    if not HAVE_CYTHON and "cython" in backends:
        print("note: the Cython extension is not built; its column is skipped (run `make setup`)")
        backends.remove("cython")
    if "cuda" in backends and not _cuda_available():
        print("note: no CUDA GPU on this machine; the cuda column is left out")
        backends.remove("cuda")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print("load average at the start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    gemm_runs = {dt: measure({"op": "gemm", "dtype": dt, "repeats": repeats}) for dt in DTYPES}
    gemm = {dt: r["best_gflops"] for dt, r in gemm_runs.items()}  # the machine's peak: best of the repeats
    print("NumPy GEMM (2048x2048) peak, best of the repeats: "
          + ", ".join(f"{dt} {gemm[dt]:.1f} GFLOP/s (median {gemm_runs[dt]['gflops']:.1f})" for dt in DTYPES))

    results: dict[str, dict] = {}
    for op, table in (("conv", CONV_CASES), ("pool", POOL_CASES)):
        for case_name, case in table.items():
            if case_name not in cases:
                continue
            for dtype in DTYPES:
                for backend in backends:
                    job = {"op": op, "case": case_name, "backend": backend, "dtype": dtype,
                           "repeats": 1 if backend == "naive" else repeats}
                    results[f"{op}/{case_name}/{backend}/{dtype}"] = measure(job)

    print()
    header = f"{'case':<5} {'dtype':<8} {'measure':<8}" + "".join(f"{b:>14}" for b in backends)
    header += "".join(f"{b + '/torch':>14}" for b in backends if b != "torch")
    for op, table, title in (("conv", CONV_CASES, "convolution"), ("pool", POOL_CASES, "max pooling")):
        print(f"{title}: median ms ('~' = naive timed on one image and scaled by N), and ratio to torch CPU")
        for case_name, case in table.items():
            if case_name not in cases:
                continue
            desc = ", ".join(f"{k}={v}" for k, v in case.items())
            print(f"  {case_name}: {desc}")
        print(header)
        for case_name in table:
            if case_name not in cases:
                continue
            for dtype in DTYPES:
                t = results.get(f"{op}/{case_name}/torch/{dtype}")
                for key in ("fwd", "fwdbwd"):
                    row = f"{case_name:<5} {dtype:<8} {key:<8}"
                    row += "".join(f"{_fmt_ms(results.get(f'{op}/{case_name}/{b}/{dtype}'), key + '_ms'):>14}" for b in backends)
                    row += "".join(f"{_ratio(results.get(f'{op}/{case_name}/{b}/{dtype}'), t, key + '_ms'):>14}" for b in backends if b != "torch")
                    print(row)
        print()

    print("conv forward: achieved GFLOP/s and share of the NumPy GEMM peak, median [best] of the repeats")
    for case_name, case in CONV_CASES.items():
        if case_name not in cases:
            continue
        for dtype in DTYPES:
            cells = []
            for b in backends:
                r = results.get(f"conv/{case_name}/{b}/{dtype}")
                if r and "error" not in r:
                    g = conv_flops(case) / (r["fwd_ms"] * 1e-3) / 1e9
                    gb = conv_flops(case) / (r["fwd_best_ms"] * 1e-3) / 1e9
                    if b == "cuda":  # the CPU's GEMM peak says nothing about a GPU
                        cells.append(f"cuda {g:.1f} [{gb:.1f}] on the GPU")
                    else:
                        cells.append(f"{b} {g:.1f} ({100 * g / gemm[dtype]:.0f}%) [{gb:.1f} ({100 * gb / gemm[dtype]:.0f}%)]")
            print(f"  {case_name} {dtype}: " + ", ".join(cells))
    print()
    print("peak memory of conv fwd+bwd (MiB above the inputs, first call, one process each):")
    for case_name in CONV_CASES:
        if case_name not in cases:
            continue
        cells = []
        for b in backends:
            r = results.get(f"conv/{case_name}/{b}/float32")
            if r and r.get("fwdbwd_peak_mib") is not None:
                cells.append(f"{b} {r['fwdbwd_peak_mib']:.0f}" + (" (GPU memory)" if b == "cuda" else ""))
        print(f"  {case_name} float32: " + ", ".join(cells))
    print()

    print("load average at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    targets = evaluate_targets(results, gemm)
    for label, value, cmp, target, ok, best in targets:
        shown = "n/a" if value is None else f"{value:.2f}"
        if best is not None:
            shown += f" (best repeats: {best:.2f})"
        verdict = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        print(f"target {verdict}: {label}: {shown} (target {cmp} {target})")

    payload = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
        "gemm_gflops": gemm,
        "gemm_gflops_median": {dt: r["gflops"] for dt, r in gemm_runs.items()},
        "date": time.strftime("%Y-%m-%d"),
        "cases": {name: case for name, case in {**CONV_CASES, **POOL_CASES}.items() if name in cases},
        "backends": backends,
        "load_average_end": os.getloadavg(),
        "results": results,
        "targets": [dict(label=l, value=v, cmp=c, target=t, ok=o, value_best=vb) for l, v, c, t, o, vb in targets],
        "repeats": repeats,
    }
    Path(args.json).write_text(json.dumps(payload, indent=2))
    print(f"\nall figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
