"""For lesson 02: one dot product step by step, the paper's figures, committed GPU results."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from analysis.xnor.packing import pack_bits, xnor_matmul

PAPER = {
    "source": "Hubara et al., Binarized Neural Networks, NIPS 2016 (GTX 750)",
    "xnor_vs_baseline_8192": 23.0,  # XNOR kernel vs the unoptimized GPU kernel, 8192^3
    "xnor_vs_cublas_8192": 3.4,  # XNOR kernel vs cuBLAS, 8192^3
    "mlp_xnor_vs_baseline": 7.0,  # MNIST MLP inference with XNOR vs baseline kernel
}


def parse_pm1(text: str) -> np.ndarray:
    """'+-+ -' → [1, −1, 1, −1] float32: '+' is +1, '-' is −1, spaces are ignored."""
    chars = [c for c in text if not c.isspace()]
    bad = sorted({c for c in chars if c not in "+-"})
    if bad:
        raise ValueError(f"a ±1 vector is written with '+' and '-' only, got {''.join(bad)!r}")
    if not chars:
        raise ValueError("a ±1 vector needs at least one '+' or '-'")
    return np.array([1.0 if c == "+" else -1.0 for c in chars], dtype=np.float32)


def dot_by_xnor(a: np.ndarray, b: np.ndarray) -> dict:
    """a·b for ±1 vectors, through the bits: a·b = K − 2·popcount(a XOR b).

    Returns the bits of a and b (1 for +1), their XOR, popcount p, K − 2p (from
    `xnor_matmul`) and the float dot product, for the lesson's widget.
    """
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"two ±1 vectors of the same length, got shapes {a.shape} and {b.shape}")
    k = a.shape[0]
    bits_a, bits_b = (a >= 0).astype(np.uint8), (b >= 0).astype(np.uint8)
    xor = bits_a ^ bits_b
    dot = int(xnor_matmul(pack_bits(a[None]), pack_bits(b[None]), k)[0, 0])
    return {"k": k, "bits_a": bits_a, "bits_b": bits_b, "xor": xor,
            "popcount": int(xor.sum()), "dot": dot, "dot_float": float(a @ b)}


def committed_benchmarks(folder: str | Path | None = None) -> list[dict]:
    """GPU results of `bench xnor` / `bench bnn-inference` committed as benchmarks/*.json.

    A file that is not a JSON object (cut short, a merge conflict left in it) is skipped with
    a warning naming it, so that one bad file does not take the others' figures with it.
    """
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parents[2] / "benchmarks"
    results = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as error:  # ValueError: JSONDecodeError, UnicodeDecodeError
            warnings.warn(f"{path}: not readable as JSON ({error}); skipped", stacklevel=2)
            continue
        if not isinstance(result, dict):
            warnings.warn(f"{path}: a JSON {type(result).__name__}, not a benchmark result; skipped",
                          stacklevel=2)
            continue
        if result.get("benchmark") in ("xnor", "bnn-inference") and result.get("device") == "cuda":
            results.append({**result, "file": path.name})
    return results
