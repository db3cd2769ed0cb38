"""Demo: ``python -m sklearn_meanfield``.

Fits :class:`MeanFieldRegressor` on the teacher-student problem of Chizat &
Bach (2018) (ReLU teacher with 5 unit-norm neurons in d = 10, n = 2000
noise-free samples) next to scikit-learn's ``MLPRegressor`` of the same width,
and prints held-out R^2, fit time and iterations for both.
"""

import argparse
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor

from . import MeanFieldRegressor
from .datasets import make_teacher_student


def _fit_and_score(estimator, X_train, y_train, X_test, y_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    return estimator.score(X_test, y_test), elapsed, estimator.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_meanfield", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--n-samples", type=int, default=3000)
    parser.add_argument("--n-features", type=int, default=10)
    parser.add_argument("--n-teacher", type=int, default=5)
    parser.add_argument("--n-particles", type=int, default=50)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    X, y = make_teacher_student(
        args.n_samples,
        args.n_features,
        n_teacher=args.n_teacher,
        random_state=args.random_state,
    )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=1 / 3, random_state=args.random_state
    )
    width = args.n_particles
    models = {
        f"MeanFieldRegressor(n_particles={width})": MeanFieldRegressor(
            n_particles=width, random_state=args.random_state
        ),
        f"MLPRegressor(hidden_layer_sizes=({width},))": MLPRegressor(
            hidden_layer_sizes=(width,),
            max_iter=2000,
            random_state=args.random_state,
        ),
    }
    print(
        f"Teacher-student: ReLU teacher with {args.n_teacher} neurons, "
        f"d = {args.n_features}, {len(X_train)} training / {len(X_test)} "
        "held-out samples, noise-free.\n"
    )
    header = f"{'model':<44} {'held-out R^2':>12} {'fit time (s)':>12} {'n_iter_':>8}"
    print(header)
    print("-" * len(header))
    for name, model in models.items():
        r2, elapsed, n_iter = _fit_and_score(model, X_train, y_train, X_test, y_test)
        print(f"{name:<44} {r2:>12.6f} {elapsed:>12.2f} {n_iter:>8d}")


if __name__ == "__main__":
    main()
