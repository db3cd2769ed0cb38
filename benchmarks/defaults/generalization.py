"""Held-out scores of the default estimators, old defaults against new.

Run one process per version, with the version's worktree on PYTHONPATH
(and OPENBLAS_NUM_THREADS=1):

    PYTHONPATH=/path/to/old python generalization.py old out_old.json
    PYTHONPATH=/path/to/new python generalization.py new out_new.json
    PYTHONPATH=/path/to/new python generalization.py ref out_ref.json
    python generalization.py merge out_old.json out_new.json out_ref.json  # table

Extra arguments after the output file restrict the run to rows whose name
contains one of them (e.g. ``... new out.json iris wine``).

``old``/``new`` fit MeanFieldRegressor / MeanFieldClassifier with default
parameters (random_state=0); ``ref`` fits MLP (MLPRegressor(max_iter=2000) /
MLPClassifier()) and RidgeCV / LogisticRegression() on the same folds.
Every row is a Pipeline(StandardScaler(), estimator), except the "scaled raw"
rows: raw features multiplied per feature by 10**U(-3, 3) (RandomState(0)),
no StandardScaler, the estimator alone.
Regression: mean R^2 over KFold(5, shuffle=True, random_state=0).
Classification: mean accuracy over StratifiedKFold(5, shuffle=True,
random_state=0). Fit time is summed over the folds. ConvergenceWarnings are
silenced and counted per row.
"""

import json
import sys
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_friedman1,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _scaled(X):
    rng = np.random.RandomState(0)
    return X * 10.0 ** rng.uniform(-3, 3, size=X.shape[1])


def _teacher(noise_frac, activation="relu"):
    from sklearn_meanfield.datasets import make_teacher_student

    kw = dict(
        n_samples=1000,
        n_features=10,
        n_teacher=5,
        activation=activation,
        random_state=0,
    )
    _, y0 = make_teacher_student(noise=0.0, **kw)
    sd = float(np.std(y0))
    return make_teacher_student(noise=noise_frac * sd, **kw)


# name -> (task, loader, use StandardScaler)
DATASETS = {
    "diabetes": ("reg", lambda: load_diabetes(return_X_y=True), True),
    "friedman1": ("reg", lambda: make_friedman1(500, noise=1.0, random_state=0), True),
    "teacher relu, noise 0.1 sd": ("reg", lambda: _teacher(0.1), True),
    "teacher relu, noise 0.5 sd": ("reg", lambda: _teacher(0.5), True),
    "teacher tanh, noise 0.1 sd": ("reg", lambda: _teacher(0.1, "tanh"), True),
    "breast_cancer": ("clf", lambda: load_breast_cancer(return_X_y=True), True),
    "digits": ("clf", lambda: load_digits(return_X_y=True), True),
    "wine": ("clf", lambda: load_wine(return_X_y=True), True),
    "iris": ("clf", lambda: load_iris(return_X_y=True), True),
    "diabetes, scaled raw (no scaler)": (
        "reg",
        lambda: (lambda X, y: (_scaled(X), y))(*load_diabetes(return_X_y=True)),
        False,
    ),
    "breast_cancer, scaled raw (no scaler)": (
        "clf",
        lambda: (lambda X, y: (_scaled(X), y))(*load_breast_cancer(return_X_y=True)),
        False,
    ),
}


def estimators(version, task):
    if version in ("old", "new"):
        from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor

        est = MeanFieldRegressor if task == "reg" else MeanFieldClassifier
        return {"meanfield": est(random_state=0)}
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if task == "reg":
        return {"mlp": MLPRegressor(max_iter=2000, random_state=0), "linear": RidgeCV()}
    return {"mlp": MLPClassifier(random_state=0), "linear": LogisticRegression()}


def evaluate(est, X, y, task, scale):
    cv = (KFold if task == "reg" else StratifiedKFold)(5, shuffle=True, random_state=0)
    scores, fit_time, n_conv, n_iter, solver = [], 0.0, 0, [], None
    for train, test in cv.split(X, y):
        model = make_pipeline(StandardScaler(), clone(est)) if scale else clone(est)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            t0 = time.perf_counter()
            model.fit(X[train], y[train])
            fit_time += time.perf_counter() - t0
        n_conv += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        scores.append(float(model.score(X[test], y[test])))
        final = model[-1] if scale else model
        n_iter.append(int(np.max(getattr(final, "n_iter_", -1))))
        solver = getattr(final, "solver_", getattr(final, "solver", None))
    return {
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "folds": scores,
        "fit_time": fit_time,
        "n_convergence_warnings": n_conv,
        "n_iter": n_iter,
        "solver": solver if isinstance(solver, str) else None,
    }


def run(version, out, only=None):
    import sklearn_meanfield

    results = {"version": version, "module": sklearn_meanfield.__file__, "rows": {}}
    print("using", sklearn_meanfield.__file__, flush=True)
    for name, (task, load, scale) in DATASETS.items():
        if only and not any(o in name for o in only):
            continue
        X, y = load()
        X = np.asarray(X, dtype=float)
        row = {"task": task, "n": int(X.shape[0]), "d": int(X.shape[1])}
        for label, est in estimators(version, task).items():
            row[label] = evaluate(est, X, y, task, scale)
            print(
                f"{name:40s} {label:10s} {row[label]['mean']:.4f} "
                f"{row[label]['fit_time']:7.1f}s "
                f"conv={row[label]['n_convergence_warnings']} "
                f"iters={row[label]['n_iter']}",
                flush=True,
            )
        results["rows"][name] = row
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


def merge(old_path, new_path, ref_path):
    old, new, ref = (json.load(open(p)) for p in (old_path, new_path, ref_path))
    lines = [
        "| data set | n x d | metric | old | new | new - old | fit s old | fit s new "
        "| conv. warn. old / new | MLP | Ridge / LogReg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, o in old["rows"].items():
        n = new["rows"].get(name)
        r = ref["rows"].get(name, {})
        if n is None:
            continue
        a, b = o["meanfield"], n["meanfield"]
        metric = "R^2" if o["task"] == "reg" else "accuracy"

        def fmt(e):
            return f"{e['mean']:.4f}" if e else "-"

        lines.append(
            f"| {name} | {o['n']} x {o['d']} | {metric} | {a['mean']:.4f} "
            f"| {b['mean']:.4f} "
            f"| {round(b['mean'] - a['mean'], 4) + 0.0:+.4f} | {a['fit_time']:.1f} "
            f"| {b['fit_time']:.1f} "
            f"| {a['n_convergence_warnings']} / {b['n_convergence_warnings']} "
            f"| {fmt(r.get('mlp'))} | {fmt(r.get('linear'))} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "merge":
        merge(*sys.argv[2:5])
    else:
        run(sys.argv[1], sys.argv[2], sys.argv[3:] or None)
