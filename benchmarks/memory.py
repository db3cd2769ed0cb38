"""Peak memory of the network estimators' prediction paths (issue 14).

Each measurement runs in a fresh subprocess: a model with ``m`` particles is
fitted on 200 samples, then ``predict`` (or ``score``, ``decision_function``,
``predict_proba``) runs on ``n`` rows of ``d`` standard normal features under
``sklearn.config_context(working_memory=...)``. Reported per call:

- ``rss_growth``: the peak resident set size during the call minus the
  resident size before it (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``; Linux only, else None);
- ``traced_peak``: the peak of the memory allocated during the call as seen
  by ``tracemalloc`` (numpy reports its arrays to it);
- ``output``: the bytes of the returned array.

The input ``X`` itself is allocated before the call and is not counted. The
child caps its address space (``RLIMIT_AS``) a few GiB above its size after
the set-up, so that a regression fails with a MemoryError instead of
exhausting the machine.

Usage::

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/memory.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc, json, os, sys, time, tracemalloc, warnings
import numpy as np
import sklearn

args = json.loads(sys.argv[1])
warnings.simplefilter("ignore")
from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor


def status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


rng = np.random.default_rng(0)
n, d, m = args["n"], args["d"], args["m"]
Xs = rng.standard_normal((200, d))
ys = Xs[:, 0] + np.sin(Xs[:, 1])
if args["estimator"] == "regressor":
    est = MeanFieldRegressor(n_particles=m, max_iter=5, random_state=0)
    est.fit(Xs, ys)
    y = rng.standard_normal(n)
else:
    est = MeanFieldClassifier(n_particles=m, max_iter=5, random_state=0)
    est.fit(Xs, np.digitize(ys, [-0.5, 0.5]))
    y = rng.integers(0, 3, n)
X = rng.standard_normal((n, d)).astype(args["dtype"])
vm = status("VmSize")
if vm is not None and args.get("cap_gib"):
    import resource

    cap = vm + int(args["cap_gib"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
results = {}
for method in args["methods"]:
    gc.collect()
    before = status("VmRSS")
    has_peak = reset_peak()
    tracemalloc.start()
    start = time.perf_counter()
    with sklearn.config_context(working_memory=args["working_memory"]):
        if method == "score":
            out = np.asarray(est.score(X, y))
        else:
            out = getattr(est, method)(X)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = status("VmHWM") if has_peak else None
    results[method] = {
        "rss_growth": None if peak is None or before is None else peak - before,
        "traced_peak": traced,
        "output": int(out.nbytes),
        "seconds": seconds,
        "finite": bool(np.all(np.isfinite(out))),
    }
    del out
print(json.dumps(results))
"""


def measure(
    estimator,
    methods,
    n,
    d,
    m,
    working_memory=64,
    dtype="float64",
    cap_gib=3.0,
    timeout=300,
):
    """Run the measurement in a subprocess; ``{method: {...}}`` in bytes."""
    args = dict(
        estimator=estimator,
        methods=list(methods),
        n=n,
        d=d,
        m=m,
        working_memory=working_memory,
        dtype=dtype,
        cap_gib=cap_gib,
    )
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASES = [
    ("regressor", ["predict", "score"], 1_000_000, 10, 500, 64),
    ("regressor", ["predict"], 1_000_000, 50, 500, 64),
    ("regressor", ["predict"], 1_000_000, 10, 500, 1024),
    (
        "classifier",
        ["decision_function", "predict_proba", "predict"],
        1_000_000,
        10,
        500,
        64,
    ),
]


def main():
    mib = 2**20
    print(
        "| estimator | method | n | d | m | working_memory (MiB) | RSS growth (MiB) "
        "| traced peak (MiB) | output (MiB) | time (s) |"
    )
    print("|" + "---|" * 10)
    for estimator, methods, n, d, m, wm in CASES:
        results = measure(estimator, methods, n, d, m, wm, cap_gib=6.0)
        for method, r in results.items():
            growth = (
                "n/a" if r["rss_growth"] is None else f"{r['rss_growth'] / mib:.0f}"
            )
            print(
                f"| {estimator} | {method} | {n:.0e} | {d} | {m} | {wm} | {growth} "
                f"| {r['traced_peak'] / mib:.0f} | {r['output'] / mib:.1f} "
                f"| {r['seconds']:.1f} |"
            )


if __name__ == "__main__":
    main()
