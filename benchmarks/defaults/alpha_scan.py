"""Scan of the default ``alpha`` of MeanFieldRegressor / MeanFieldClassifier.

Run from the repository root:

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python alpha_scan.py

Every estimator has its defaults (n_particles=100, solver="auto",
random_state=0) except ``alpha``; it sits in Pipeline(StandardScaler(), est)
unless the row says "no scaler". Regression: 5-fold KFold(shuffle=True,
random_state=0), mean R^2; classification: StratifiedKFold(5), mean accuracy;
noise-free teachers: one train/test split, held-out R^2. Writes
alpha_scan.json and alpha_table.md next to this file.
"""

import json
import os
import sys
import time
import warnings
from pathlib import Path

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
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student

ALPHAS = [1e-7, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
# ALPHA_SCAN_ALPHAS="2e-3" runs extra alphas; rows are merged per alpha
if os.environ.get("ALPHA_SCAN_ALPHAS"):
    ALPHAS = [float(a) for a in os.environ["ALPHA_SCAN_ALPHAS"].split(",")]
HERE = Path(__file__).resolve().parent


def noisy_teacher(n, d, n_teacher, rel_noise, random_state):
    """Teacher data with noise std = rel_noise * std of the clean targets.

    ``noise`` of make_teacher_student is an absolute standard deviation; the
    noise is drawn after X and the clean y from the same stream, so the
    clean targets of the same seed give the signal's std.
    """
    _, y0 = make_teacher_student(n, d, n_teacher=n_teacher, random_state=random_state)
    sd = float(np.std(y0))
    X, y = make_teacher_student(
        n, d, n_teacher=n_teacher, noise=rel_noise * sd, random_state=random_state
    )
    return X, y, sd


def fit_one(est, Xtr, ytr, Xte, yte):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always", ConvergenceWarning)
        t = time.perf_counter()
        est.fit(Xtr, ytr)
        dt = time.perf_counter() - t
    nw = sum(issubclass(x.category, ConvergenceWarning) for x in w)
    last = est[-1] if hasattr(est, "steps") else est
    return est.score(Xte, yte), dt, getattr(last, "n_iter_", None), nw


def cv_eval(est, X, y, cv):
    scores, times, iters, nwarn = [], [], [], 0
    for tr, te in cv.split(X, y):
        s, dt, it, nw = fit_one(clone(est), X[tr], y[tr], X[te], y[te])
        scores.append(s)
        times.append(dt)
        iters.append(it)
        nwarn += nw
    return {
        "score": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "fit_time_median": float(np.median(times)),
        "n_iter_median": None if iters[0] is None else float(np.median(iters)),
        "n_conv_warnings": nwarn,
    }


def split_eval(est, X, y, n_train):
    s, dt, it, nw = fit_one(
        clone(est), X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    )
    return {
        "score": float(s),
        "std": 0.0,
        "fit_time_median": dt,
        "n_iter_median": None if it is None else float(it),
        "n_conv_warnings": nw,
    }


def main():
    kf = KFold(5, shuffle=True, random_state=0)
    skf = StratifiedKFold(5)
    notes = {}

    reg_cv = {}
    reg_cv["diabetes"] = load_diabetes(return_X_y=True)
    reg_cv["friedman1 (n=500, noise=1)"] = make_friedman1(
        500, noise=1.0, random_state=0
    )
    for rel in (0.1, 0.5):
        X, y, sd = noisy_teacher(1000, 10, 5, rel, 0)
        name = f"teacher d=10 m0=5 n=1000, noise {rel:g}*sd(f)"
        reg_cv[name] = (X, y)
        notes[name] = f"sd(f)={sd:.3f}, noise std={rel * sd:.3f}"

    reg_split = {}
    for seed in (0, 1, 2):
        X, y = make_teacher_student(10000, 50, n_teacher=10, random_state=seed)
        reg_split[f"noise-free teacher d=50 m0=10 (seed {seed}), 5000/5000"] = (
            X,
            y,
            5000,
        )
    X, y = make_teacher_student(3000, 10, n_teacher=5, random_state=0)
    reg_split["noise-free teacher d=10 m0=5, 2000/1000"] = (X, y, 2000)

    clf_cv = {
        "breast_cancer": load_breast_cancer(return_X_y=True),
        "digits": load_digits(return_X_y=True),
        "wine": load_wine(return_X_y=True),
        "iris": load_iris(return_X_y=True),
    }

    results = {"rows": {}, "baselines": {}, "notes": notes}
    out = HERE / "alpha_scan.json"
    if out.exists():  # merge with the rows of earlier (filtered) runs
        old = json.loads(out.read_text())
        results["rows"].update(old.get("rows", {}))
        results["baselines"].update(old.get("baselines", {}))

    def run_row(key, kind, est_factory, data, scaler=True):
        row = {}
        for a in ALPHAS:
            est = est_factory(a)
            if scaler:
                est = make_pipeline(StandardScaler(), est)
            if kind == "cv":
                X, y, cv = data
                row[a] = cv_eval(est, X, y, cv)
            else:
                X, y, n_train = data
                row[a] = split_eval(est, X, y, n_train)
            print(
                f"{key:70s} alpha={a:g}: {row[a]['score']:.5f} "
                f"t={row[a]['fit_time_median']:.2f}s it={row[a]['n_iter_median']} "
                f"w={row[a]['n_conv_warnings']}",
                flush=True,
            )
        merged = results["rows"].setdefault(key, {})
        merged.update({str(a): v for a, v in row.items()})
        (HERE / "alpha_scan.json").write_text(json.dumps(results, indent=1))

    def run_base(key, est, data, kind="cv"):
        est = make_pipeline(StandardScaler(), est)
        r = cv_eval(est, *data) if kind == "cv" else split_eval(est, *data)
        results["baselines"][key] = r
        print(
            f"  baseline {key}: {r['score']:.5f} t={r['fit_time_median']:.2f}s",
            flush=True,
        )
        (HERE / "alpha_scan.json").write_text(json.dumps(results, indent=1))

    reg = lambda a: MeanFieldRegressor(alpha=a, random_state=0)  # noqa: E731
    clf = lambda a: MeanFieldClassifier(alpha=a, random_state=0)  # noqa: E731

    only = sys.argv[1:]  # optional filter of row-name substrings
    want = lambda k: not only or any(o in k for o in only)  # noqa: E731

    for name, (X, y) in reg_cv.items():
        if want(name):
            run_row(name, "cv", reg, (X, y, kf))
    for name, (X, y, n_train) in reg_split.items():
        if want(name):
            run_row(name, "split", reg, (X, y, n_train))
    for name, (X, y) in clf_cv.items():
        if want(name):
            run_row(name, "cv", clf, (X, y, skf))
    # the same without StandardScaler (the estimators standardise internally)
    if want("no scaler"):
        X, y = reg_cv["diabetes"]
        run_row("diabetes, no scaler", "cv", reg, (X, y, kf), scaler=False)
        X, y = clf_cv["breast_cancer"]
        run_row("breast_cancer, no scaler", "cv", clf, (X, y, skf), scaler=False)

    if want("baseline"):
        for name, (X, y) in reg_cv.items():
            run_base(f"{name} | RidgeCV", RidgeCV(), (X, y, kf))
            run_base(
                f"{name} | MLPRegressor(max_iter=2000)",
                MLPRegressor(max_iter=2000, random_state=0),
                (X, y, kf),
            )
        for name, (X, y, n_train) in reg_split.items():
            run_base(f"{name} | RidgeCV", RidgeCV(), (X, y, n_train), kind="split")
            run_base(
                f"{name} | MLPRegressor(max_iter=2000)",
                MLPRegressor(max_iter=2000, random_state=0),
                (X, y, n_train),
                kind="split",
            )
        for name, (X, y) in clf_cv.items():
            run_base(
                f"{name} | MLPClassifier()", MLPClassifier(random_state=0), (X, y, skf)
            )


def write_table():
    """alpha_table.md from alpha_scan.json (``python alpha_scan.py --table``)."""
    res = json.loads((HERE / "alpha_scan.json").read_text())
    rows, base = res["rows"], res["baselines"]
    alphas = sorted({float(a) for r in rows.values() for a in r})
    extra = set(alphas) - set(ALPHAS)
    head = [
        ("0 (1e-7)" if a == 1e-7 else f"{a:g}") + (" (extra)" if a in extra else "")
        for a in alphas
    ]

    def ref(name, tag):
        for k, v in base.items():
            if k.startswith(name + " | ") and tag in k:
                return f"{v['score']:.4f}"
        return ""

    def table(field, fmt, with_refs):
        cols = ["data set", *head]
        if with_refs:
            cols += ["RidgeCV", "MLPRegressor(max_iter=2000) / MLPClassifier()"]
        out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for name, r in rows.items():
            vals = [r.get(str(a), {}).get(field) for a in alphas]
            best = max(v for v in vals if v is not None) if field == "score" else None
            cells = []
            for v in vals:
                c = "" if v is None else fmt.format(v)
                cells.append(f"**{c}**" if best is not None and v == best else c)
            if with_refs:
                cells += [ref(name, "RidgeCV"), ref(name, "MLP")]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(out)

    notes = "\n".join(f"- {k}: {v}" for k, v in res.get("notes", {}).items())
    md = f"""# Held-out score versus alpha (commit ecf2c18, `alpha_scan.py`)

Defaults otherwise (n_particles=100, solver="auto" = L-BFGS, random_state=0),
in Pipeline(StandardScaler(), est) unless "no scaler". Regression: mean R^2 of
KFold(5, shuffle=True, random_state=0), or held-out R^2 of the given split;
classification: mean accuracy of StratifiedKFold(5). Bold: best of the row.
Noisy teachers: noise std relative to the std of the clean teacher output:
{notes}

## Score

{table("score", "{:.4f}", True)}

## Median fit time per fold (s)

{table("fit_time_median", "{:.2f}", False)}

## Median L-BFGS iterations per fold

{table("n_iter_median", "{:.0f}", False)}
"""
    (HERE / "alpha_table.md").write_text(md)
    print(md)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        write_table()
    else:
        main()
