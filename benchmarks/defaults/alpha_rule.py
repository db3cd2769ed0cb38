"""Candidate sample-size-dependent default alphas, measured on held-out data.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=<worktree> \
        python benchmarks/defaults/alpha_rule.py [row filters...]
    python benchmarks/alpha_rule.py --table     # alpha_rule.md from alpha_rule.json

Each rule maps the number of TRAINING samples n (of the fold or split) to an
alpha, passed explicitly: MeanFieldRegressor/Classifier(alpha=rule(n),
random_state=0), all else default (100 particles, solver="auto" = L-BFGS
here). Data and CV are those of generalization.py (CV rows: KFold(5,
shuffle=True, random_state=0) / StratifiedKFold(5, shuffle=True,
random_state=0), Pipeline(StandardScaler(), est) except the "scaled raw" row)
and of alpha_scan.py (noise-free teachers: one train/test split, held-out R^2).
Fits with the same (row, fold, alpha) are computed once and reused across
rules (e.g. F equals D below n=5000 and A above).
"""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
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

HERE = Path(__file__).resolve().parent

RULES = {
    "A: 1e-3": lambda n: 1e-3,
    "B: 0.1/sqrt(n)": lambda n: 0.1 / np.sqrt(n),
    "C: 0.14/sqrt(n)": lambda n: 0.14 / np.sqrt(n),
    "D: 5/n": lambda n: 5.0 / n,
    "E: 10/n": lambda n: 10.0 / n,
    "F: max(1e-3, 5/n)": lambda n: max(1e-3, 5.0 / n),
}


def _scaled(X):  # as generalization.py
    rng = np.random.RandomState(0)
    return X * 10.0 ** rng.uniform(-3, 3, size=X.shape[1])


def _teacher(noise_frac, activation="relu"):  # as generalization.py
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


def _split(n_total, d, m0, seed, train, test):
    from sklearn_meanfield.datasets import make_teacher_student

    X, y = make_teacher_student(n_total, d, n_teacher=m0, random_state=seed)
    return X[train], y[train], X[test], y[test]


# name -> (kind, task, loader, use StandardScaler)
# kind "cv": loader -> (X, y); kind "split": loader -> (Xtr, ytr, Xte, yte)
ROWS = {
    "diabetes": ("cv", "reg", lambda: load_diabetes(return_X_y=True), True),
    "diabetes, scaled raw (no scaler)": (
        "cv",
        "reg",
        lambda: (lambda X, y: (_scaled(X), y))(*load_diabetes(return_X_y=True)),
        False,
    ),
    "friedman1": (
        "cv",
        "reg",
        lambda: make_friedman1(500, noise=1.0, random_state=0),
        True,
    ),
    "teacher relu, noise 0.1 sd": ("cv", "reg", lambda: _teacher(0.1), True),
    "teacher relu, noise 0.5 sd": ("cv", "reg", lambda: _teacher(0.5), True),
    "teacher tanh, noise 0.1 sd": ("cv", "reg", lambda: _teacher(0.1, "tanh"), True),
    "breast_cancer": ("cv", "clf", lambda: load_breast_cancer(return_X_y=True), True),
    "digits": ("cv", "clf", lambda: load_digits(return_X_y=True), True),
    "wine": ("cv", "clf", lambda: load_wine(return_X_y=True), True),
    "iris": ("cv", "clf", lambda: load_iris(return_X_y=True), True),
}
# alpha_scan.py's noise-free teachers
for _s in (0, 1, 2):
    ROWS[f"noise-free d=50 m0=10 seed {_s}, 5000/5000"] = (
        "split",
        "reg",
        (
            lambda s: (
                lambda: _split(10000, 50, 10, s, slice(0, 5000), slice(5000, 10000))
            )
        )(_s),
        True,
    )
ROWS["noise-free d=10 m0=5, 2000/1000"] = (
    "split",
    "reg",
    lambda: _split(3000, 10, 5, 0, slice(0, 2000), slice(2000, 3000)),
    True,
)
# n sweep, seed 0: make_teacher_student draws the teacher first and then X row
# by row, so the first rows of the 25000-sample set are those of any smaller
# set of seed 0; train on the first n rows, test on rows 20000..25000 (the
# same 5000 test points for every n).
for _n in (1000, 5000, 20000):
    ROWS[f"noise-free d=50 m0=10 seed 0, n_train={_n} (test rows 20000:25000)"] = (
        "split",
        "reg",
        (lambda n: lambda: _split(25000, 50, 10, 0, slice(0, n), slice(20000, 25000)))(
            _n
        ),
        True,
    )


def _est(task, alpha, scale):
    from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor

    cls = MeanFieldRegressor if task == "reg" else MeanFieldClassifier
    est = cls(alpha=alpha, random_state=0)
    return make_pipeline(StandardScaler(), est) if scale else est


def _fit(task, alpha, scale, Xtr, ytr, Xte, yte):
    model = _est(task, alpha, scale)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        t0 = time.perf_counter()
        model.fit(Xtr, ytr)
        dt = time.perf_counter() - t0
    nconv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    final = model[-1] if scale else model
    return {
        "score": float(model.score(Xte, yte)),
        "train_score": float(model.score(Xtr, ytr)),
        "fit_time": dt,
        "n_iter": int(np.max(getattr(final, "n_iter_", -1))),
        "solver": getattr(final, "solver_", None),
        "conv_warn": nconv,
    }


def run(only):
    import sklearn_meanfield

    out = HERE / "alpha_rule.json"
    res = json.loads(out.read_text()) if out.exists() else {"rows": {}}
    res["module"] = sklearn_meanfield.__file__
    print("using", sklearn_meanfield.__file__, flush=True)
    for name, (kind, task, load, scale) in ROWS.items():
        if only and not any(o in name for o in only):
            continue
        data = load()
        if kind == "cv":
            X, y = (np.asarray(a) for a in data)
            X = X.astype(float)
            cv = (KFold if task == "reg" else StratifiedKFold)(
                5, shuffle=True, random_state=0
            )
            folds = [(X[tr], y[tr], X[te], y[te]) for tr, te in cv.split(X, y)]
        else:
            folds = [data]
        cache = {}
        row = {
            "task": task,
            "kind": kind,
            "n_train": [len(f[1]) for f in folds],
            "rules": {},
        }
        for rule, f in RULES.items():
            per = []
            for i, fold in enumerate(folds):
                a = float(f(len(fold[1])))
                if (i, a) not in cache:
                    cache[(i, a)] = _fit(task, a, scale, *fold)
                per.append(dict(cache[(i, a)], alpha=a))
            r = {
                "score": float(np.mean([p["score"] for p in per])),
                "train_score": float(np.mean([p["train_score"] for p in per])),
                "alpha": [p["alpha"] for p in per],
                "folds": per,
            }
            row["rules"][rule] = r
            print(
                f"{name:62s} {rule:18s} alpha~{np.mean(r['alpha']):.2e} "
                f"score={r['score']:.5f} train={r['train_score']:.4f} "
                f"t={sum(p['fit_time'] for p in per):.1f}s "
                f"it={[p['n_iter'] for p in per]} solver={per[0]['solver']} "
                f"warn={sum(p['conv_warn'] for p in per)}",
                flush=True,
            )
        res["rows"][name] = row
        out.write_text(json.dumps(res, indent=1))


def table():
    res = json.loads((HERE / "alpha_rule.json").read_text())
    old = json.loads((HERE / "generalization_old.json").read_text())["rows"]
    rules = list(RULES)
    head = ["data set", "n train", "old defaults", *rules]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in res["rows"].items():
        nt = row["n_train"]
        ntxt = f"{min(nt)}-{max(nt)}" if min(nt) != max(nt) else str(nt[0])
        o = old.get(name, {}).get("meanfield")
        otxt = f"{o['mean']:.4f}" if o else ""
        nd = 5 if row["kind"] == "split" else 4
        cells = []
        for r in rules:
            v = row["rules"][r]["score"]
            a = np.mean(row["rules"][r]["alpha"])
            cells.append(f"{v:.{nd}f} ({a:.1e})")
        lines.append(f"| {name} | {ntxt} | {otxt} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


def seeds(version, out_name):
    """Robustness of the thin margins: estimator random_state 0, 1, 2 on a few
    CV rows, for ``old`` (that worktree's defaults) or ``new`` (rules A, B).

        PYTHONPATH=<old worktree> python alpha_rule.py --seeds old
        PYTHONPATH=<new worktree> python alpha_rule.py --seeds new
    """
    import sklearn_meanfield
    from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor

    print("using", sklearn_meanfield.__file__, flush=True)
    names = [
        "teacher tanh, noise 0.1 sd",
        "teacher relu, noise 0.1 sd",
        "iris",
        "friedman1",
    ]
    res = {"module": sklearn_meanfield.__file__, "rows": {}}
    for name in names:
        _, task, load, _scale = ROWS[name]
        X, y = (np.asarray(a) for a in load())
        X = X.astype(float)
        cv = (KFold if task == "reg" else StratifiedKFold)(
            5, shuffle=True, random_state=0
        )
        cls = MeanFieldRegressor if task == "reg" else MeanFieldClassifier
        rules = (
            {"old": None}
            if version == "old"
            else {k: RULES[k] for k in list(RULES)[:2]}
        )
        for rule, f in rules.items():
            for rs in (0, 1, 2):
                sc = []
                for tr, te in cv.split(X, y):
                    kw = {} if f is None else {"alpha": float(f(len(tr)))}
                    model = make_pipeline(StandardScaler(), cls(random_state=rs, **kw))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        model.fit(X[tr], y[tr])
                    sc.append(model.score(X[te], y[te]))
                res["rows"].setdefault(name, {}).setdefault(rule, {})[rs] = float(
                    np.mean(sc)
                )
                print(f"{name:30s} {rule:16s} rs={rs} {np.mean(sc):.4f}", flush=True)
    (HERE / out_name).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        table()
    elif sys.argv[1:2] == ["--seeds"]:
        seeds(sys.argv[2], f"alpha_rule_seeds_{sys.argv[2]}.json")
    else:
        run(sys.argv[1:])
