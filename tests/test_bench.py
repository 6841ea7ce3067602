"""The benchmark harness runs and prints its tables (a smoke test; timings are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import load_bench_conv

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
bench = load_bench_conv()


def test_bench_quick_run(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "conv.py"), "--quick", "--cases", "A,P3",
         "--backends", "numpy,cython,torch,cuda", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "NumPy GEMM (2048x2048)" in text
    assert "cython/torch" in text and "share of the NumPy GEMM peak" in text
    lines = [l for l in text.splitlines() if l.startswith("target ")]
    assert len(lines) == 7 and any("PASS" in l or "FAIL" in l for l in lines)
    data = json.loads(out.read_text())
    assert data["cases"] == json.loads(json.dumps({"A": bench.CONV_CASES["A"], "P3": bench.POOL_CASES["P3"]}))
    if HAS_CUDA:
        assert data["results"]["conv/A/cuda/float32"]["fwd_ms"] > 0
        assert "cuda" in data["backends"]
    else:  # the column is left out, and the output says so
        assert "no CUDA GPU on this machine; the cuda column is left out" in text
        assert "cuda" not in data["backends"] and not any("/cuda/" in k for k in data["results"])
    for key in ("conv/A/cython/float32", "conv/A/torch/float64", "pool/P3/numpy/float32"):
        result = data["results"][key]
        assert "error" not in result, result
        assert result["fwd_ms"] > 0 and result["fwdbwd_ms"] >= 0


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine")
def test_cuda_worker_times_on_the_gpu():
    """One measurement of the cuda column: the tensors live on the GPU and its memory is measured."""
    result = bench.measure({"op": "conv", "case": "A", "backend": "cuda", "dtype": "float32", "repeats": 2})
    assert "error" not in result, result
    assert result["fwd_ms"] > 0 and result["fwdbwd_peak_mib"] > 0
