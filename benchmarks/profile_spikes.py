"""Where the time of ``SparseSpikeDeconvolver.fit`` goes, phase by phase, on
one case of ``benchmarks/sfw.py`` (issue 16).

The package's phase functions are wrapped by process-time timers (the
package is not modified): the sliding run (flow, Newton sliding,
certificates), the Newton sliding itself, the flow's first values, the
certificate grids and searches, the refit, the forward operator. Each seed
is fitted once untimed, then ``--fits`` times timed; times are per fit.
Nested phases are included in their parents.

Usage::

    PYTHONPATH=. python benchmarks/profile_spikes.py --case 6 --seeds 5
"""

import argparse
import collections
import functools
import sys
import time
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

from threadpoolctl import threadpool_limits

import sklearn_meanfield._blasso as blasso
import sklearn_meanfield._operators as operators
import sklearn_meanfield._sliding as sliding
from sklearn_meanfield import SparseSpikeDeconvolver

PHASES = [
    (blasso, "sliding_run", "sliding run (flow, sliding, certificates)"),
    (sliding, "slide", "  Newton sliding"),
    (sliding._SharedColumns, "of", "  flow: values at the initial particles"),
    (sliding.CertificateGrid, "__init__", "  certificate grid (built)"),
    (sliding, "certificate_search", "  certificate search"),
    (blasso, "debias", "refit (debias)"),
    (operators.SpikeUnit, "pairwise", "[forward operator, all calls]"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=int, default=6, help="index in spike_cases()")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fits", type=int, default=3)
    args = parser.parse_args()
    name = "benchmarks_sfw"
    spec = spec_from_file_location(name, Path(__file__).with_name("sfw.py"))
    sfw = module_from_spec(spec)
    sys.modules[name] = sfw
    spec.loader.exec_module(sfw)

    spent, calls = collections.defaultdict(float), collections.Counter()
    for owner, attr, label in PHASES:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*a, _f=original, _label=label, **k):
            start = time.process_time()
            try:
                return _f(*a, **k)
            finally:
                spent[_label] += time.process_time() - start
                calls[_label] += 1

        setattr(owner, attr, timed)

    case = sfw.spike_cases("full")[args.case]
    with threadpool_limits(1):
        data = [case.make(seed) for seed in range(args.seeds)]
        estimators = [
            SparseSpikeDeconvolver(
                alpha=case.alpha, random_state=seed, **case.estimator_params
            )
            for seed in range(args.seeds)
        ]
        for est, (X, y, _, _) in zip(estimators, data, strict=True):
            est.fit(X, y)  # untimed: first calls
        spent.clear()
        calls.clear()
        total, n_fits = 0.0, 0
        for est, (X, y, _, _) in zip(estimators, data, strict=True):
            for _ in range(args.fits):
                start = time.process_time()
                est.fit(X, y)
                total += time.process_time() - start
                n_fits += 1
    print(f"{case.name}: {1e3 * total / n_fits:.1f} ms per fit (process time)")
    for _, _, label in PHASES:
        print(
            f"{label:45s} {1e3 * spent[label] / n_fits:7.2f} ms, "
            f"{calls[label] / n_fits:.1f} calls per fit"
        )


if __name__ == "__main__":
    main()
