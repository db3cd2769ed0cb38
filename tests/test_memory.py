"""Bounded memory of the prediction paths and of the particles (issue 14).

The prediction measurements run in a subprocess (benchmarks/memory.py) with
its address space capped a few GiB above its size, so that a regression
fails with a MemoryError instead of exhausting the machine. What is
asserted is memory, never time.
"""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_meanfield import (
    MeanFieldClassifier,
    MeanFieldClassifierCV,
    MeanFieldRegressor,
    MeanFieldRegressorCV,
    _memory,
)

MEMORY_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "memory.py"
MIB = 2**20


@pytest.fixture(scope="module")
def memory():
    spec = importlib.util.spec_from_file_location("benchmarks_memory", MEMORY_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_predict_one_million_rows_within_working_memory(memory):
    # the case: 1e6 rows, m=500, working_memory=64 grew the process
    # by 4.4 GiB; the whole (n, m) activations are 3.7 GiB, the prepared
    # inputs [B x, 1] 84 MiB
    n, wm = 1_000_000, 64
    results = memory.measure("regressor", ["predict"], n, 10, 500, wm)
    for method, r in results.items():
        assert r["finite"], method
        # the target
        if r["rss_growth"] is not None:
            assert r["rss_growth"] < 300 * MIB, (method, r)
        # tighter: one chunk within working_memory, plus the (n,) output and
        # its copies (a full copy of the prepared inputs would exceed it)
        assert r["traced_peak"] < wm * MIB + 4 * n * 8 + 16 * MIB, (method, r)


def test_classifier_outputs_within_working_memory(memory):
    # 3 classes, 1e5 rows: the activations alone would be 380 MiB
    n, k, wm = 100_000, 3, 16
    methods = ["decision_function", "predict_proba", "predict", "score"]
    results = memory.measure("classifier", methods, n, 10, 500, wm)
    for method, r in results.items():
        assert r["finite"], method
        # a chunk of the forward pass or of log-softmax, and a few (n, k)
        # arrays (scores, log-probabilities, probabilities)
        assert r["traced_peak"] < wm * MIB + 4 * n * k * 8 + 16 * MIB, (method, r)


def test_predict_chunks_match_one_pass():
    # chunking changes nothing but the memory: predictions with a tiny
    # working_memory (one row per chunk would be too slow; 37 rows here)
    import sklearn

    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 4))
    y = X[:, 0] - np.abs(X[:, 1])
    reg = MeanFieldRegressor(n_particles=50, max_iter=30, random_state=0).fit(X, y)
    clf = MeanFieldClassifier(n_particles=50, max_iter=30, random_state=0).fit(
        X, np.digitize(y, [-1, 0])
    )
    whole = reg.predict(X), clf.predict_proba(X), clf.decision_function(X)
    row = (5 + 50 + 1) * 8
    X_sparse = sp.csr_array(X)
    with sklearn.config_context(working_memory=37 * row / MIB):
        assert len(_memory.row_chunks(300, row)) == 9
        chunked = reg.predict(X), clf.predict_proba(X), clf.decision_function(X)
        sparse = (
            reg.predict(X_sparse),
            clf.predict_proba(X_sparse),
            clf.decision_function(X_sparse),
        )
    for a, b, c in zip(whole, chunked, sparse, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-10)


def test_row_chunks_cover_rows_within_budget():
    import sklearn

    with sklearn.config_context(working_memory=1):
        chunks = _memory.row_chunks(10_000, 1000)  # 1048 rows per MiB
        assert [c.stop - c.start for c in chunks[:-1]] == [1048] * 9
        assert chunks[-1] == slice(9432, 10_000)
        # a row larger than the budget: one row per chunk, never zero
        assert _memory.row_chunks(3, 2 * MIB) == [slice(i, i + 1) for i in range(3)]
        assert _memory.row_chunks(0, 100) == []


@pytest.mark.parametrize(
    "Estimator", [MeanFieldRegressor, MeanFieldClassifier], ids=lambda e: e.__name__
)
def test_impossible_n_particles_fails_fast(Estimator):
    # 10**12 particles of 5 values are 37 TiB per copy: more than any
    # machine. The check runs before any particle is allocated (if it did
    # not, numpy would refuse the 37 TiB allocation at once: no risk).
    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 2
    est = Estimator(n_particles=10**12)
    with pytest.raises(ValueError, match=r"n_particles=1000000000000 needs at least"):
        est.fit(X, y)
    assert not hasattr(est, "positions_")


@pytest.mark.parametrize("solver", ["auto", "adam", "flow"])
def test_particle_memory_check_against_available_memory(monkeypatch, solver):
    # the case, n_particles=10**8 with 10 features, on a machine with
    # 8 GiB available: the particles alone are 9 GiB per copy
    monkeypatch.setattr(_memory, "available_memory", lambda: 8 * 2**30)
    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((30, 10)), rng.standard_normal(30)
    est = MeanFieldRegressor(n_particles=10**8, solver=solver)
    with pytest.raises(ValueError) as info:
        est.fit(X, y)
    message = str(info.value)
    assert "n_particles=100000000" in message
    # bytes needed: 3 copies of 1e8 * (11 + 1) float64 (Adam 5), plus the
    # L-BFGS workspace of 45 float64 copies for solver="auto" (L-BFGS here)
    copies = {"auto": 3 + 45, "adam": 5, "flow": 3}[solver]
    need = (copies * 10**8 * 12 * 8 + 2 * 10**8 * 8) / 2**30
    needed = float(re.search(r"needs at least ([0-9.e+]+) GiB", message).group(1))
    assert needed == pytest.approx(need, rel=1e-2)
    assert "8 GiB available" in message
    assert not hasattr(est, "positions_")


def test_particle_memory_check_passes_ordinary_fits(monkeypatch):
    # 1 GiB available is plenty for 1000 particles: the check must not
    # reject ordinary fits, nor the CV estimators' fits
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    rng = np.random.RandomState(0)
    X = rng.standard_normal((60, 3))
    y = X[:, 0]
    MeanFieldRegressor(n_particles=1000, max_iter=3).fit(X, y)
    MeanFieldRegressorCV(n_particles=20, n_alphas=2, cv=2, max_iter=3).fit(X, y)
    MeanFieldClassifierCV(n_particles=20, n_alphas=2, cv=2, max_iter=3).fit(X, y > 0)
    # and the estimate itself: 1000 particles, 4 position values, 1 output
    _, need = _memory.particle_bytes(1000, 4, 1, 8, "lbfgs", 20)
    assert need == (3 * 8 + 45 * 8) * 5000 + 2 * 8 * 1000


def test_available_memory_is_positive_and_bounded():
    if not Path("/proc/meminfo").exists():
        pytest.skip("/proc/meminfo: Linux only")
    available = _memory.available_memory()
    info = _memory._read_fields("/proc/meminfo", unit=1024)
    assert 0 < available <= info["MemTotal"] + info.get("SwapTotal", 0)
    assert available <= info["MemAvailable"] + info.get("SwapFree", 0)


def test_available_memory_honours_the_address_space_limit():
    # ulimit -v: a child with a 1.5 GiB address-space headroom sees at most
    # that much available
    import subprocess
    import sys

    code = (
        "import resource, sys\n"
        "from sklearn_meanfield import _memory\n"
        "vm = _memory._read_fields('/proc/self/status', unit=1024)['VmSize']\n"
        "cap = vm + 3 * 2**29\n"
        "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
        "print(_memory.available_memory() / 2**30)\n"
    )
    if not Path("/proc/self/status").exists():
        pytest.skip("/proc/self/status: Linux only")
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert 1.3 < float(out.stdout) <= 1.5


def test_spikes_fit_at_twenty_thousand_samples_under_one_gib(tmp_path):
    # the case: alpha_max evaluated the kernel and its gradient on
    # n x (n + candidates) pairs (1.5 GiB at n=5,000, MemoryError at
    # 20,000); the certificate gradients now run over chunks of candidates
    import subprocess
    import sys

    script = tmp_path / "spikes_memory.py"
    # peak RSS as VmHWM (the high-water mark of this process's memory, reset
    # at exec; ru_maxrss would include the forking test process's)
    script.write_text(
        "import re, warnings\n"
        "from sklearn_meanfield import SparseSpikeDeconvolver\n"
        "from sklearn_meanfield.datasets import make_spikes\n"
        "X, y = make_spikes(5, 20000, random_state=0, noise=1e-3,"
        " sampling='random')[:2]\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        "    d = SparseSpikeDeconvolver(random_state=0).fit(X, y)\n"
        "status = open('/proc/self/status').read()\n"
        "print(d.n_spikes_, re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**__import__("os").environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    n_spikes, peak_kib = map(int, out.stdout.split())
    assert n_spikes == 5
    assert peak_kib * 1024 < 1024 * MIB
