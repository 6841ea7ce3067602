"""The benchmark harness runs and prints its tables (a smoke test; timings are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_run(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "conv.py"), "--quick", "--cases", "A,P3",
         "--backends", "numpy,cython,torch", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "NumPy GEMM (2048x2048)" in text
    assert "cython/torch" in text and "share of the NumPy GEMM peak" in text
    lines = [l for l in text.splitlines() if l.startswith("target ")]
    assert len(lines) == 7 and any("PASS" in l or "FAIL" in l for l in lines)
    data = json.loads(out.read_text())
    for key in ("conv/A/cython/float32", "conv/A/torch/float64", "pool/P3/numpy/float32"):
        result = data["results"][key]
        assert "error" not in result, result
        assert result["fwd_ms"] > 0 and result["fwdbwd_ms"] >= 0
