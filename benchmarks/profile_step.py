"""Where the time of one MeanFieldRegressor step goes, and what a leaner step
would cost (the measurements behind benchmarks/NOTES.md).

Three parts, on the full-batch problem of section 1 (n=20,000, d=50, m=1,000,
ReLU, squared loss, weight decay, the default "standardize" metric):

1. the package's own calls, timed as the flow makes them: ``_move``,
   ``objective.forward``, ``objective.backward``;
2. the numpy operations inside them, replayed one by one (same shapes, same
   order), to attribute the time;
3. a prototype of the optimised step (one reused n*m buffer, no outer
   product, the ReLU mask applied in place, the mask product folded into one
   GEMM), checked against the package's gradients and timed.

Uses private package internals on purpose: it is a profiling tool for
developers, not an API. Run::

    PYTHONPATH=. python benchmarks/profile_step.py [--quick] [--cprofile]
"""

import argparse
import cProfile
import pstats
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldRegressor
from sklearn_meanfield._base import normalized_sample_weight
from sklearn_meanfield._rules import GradientStep
from sklearn_meanfield.datasets import make_teacher_student


def _median_ms(fn, repeats):
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return 1e3 * float(np.median(out))


def _setup(n, d, m, dtype):
    X, y = make_teacher_student(n, d, n_teacher=10, random_state=0)
    X, y = X.astype(dtype), y.astype(dtype)
    est = MeanFieldRegressor(n_particles=m, random_state=0)
    objective = est._make_objective(1e-3)
    s = normalized_sample_weight(None, X, X.dtype)
    # positions live in standardised coordinates: the metric is the identity
    objective.unit.fit_inputs(X, s)
    Xp = objective.unit.prepare(X)
    Y = y.reshape(-1, 1)
    particles = est._init_particles(objective, Xp, Y, s, 1, np.random.RandomState(0))
    return objective, Xp, Y, s, particles, _IdentityMetric()


class _IdentityMetric:
    """The position metric of the network estimators (identity in their
    standardised coordinates)."""

    @staticmethod
    def precondition(G):
        return G


def package_calls(objective, Xp, Y, s, particles, metric, repeats):
    """Median time of each call of one accepted iteration of the flow."""
    rule = GradientStep()
    _value, state = objective.forward(Xp, Y, s, particles)
    grads = objective.backward(state)
    del state
    times = {
        "rule.propose (Particles.copy + update)": _median_ms(
            lambda: rule.propose(particles, grads, 0.1), repeats
        ),
        "objective.forward": _median_ms(
            lambda: objective.forward(Xp, Y, s, particles), repeats
        ),
    }

    def backward():
        # backward overwrites nothing it is given except its own C
        objective.backward(objective.forward(Xp, Y, s, particles)[1])

    times["objective.forward + backward"] = _median_ms(backward, repeats)
    times["objective.backward"] = (
        times["objective.forward + backward"] - times["objective.forward"]
    )
    times["one iteration (move + forward + backward)"] = (
        times["rule.propose (Particles.copy + update)"]
        + times["objective.forward + backward"]
    )
    return times


def replayed_operations(Xp, Y, s, particles, metric, repeats):
    """The numpy operations of one iteration, each timed on its own."""
    W, Theta, b = particles.weights, particles.positions, particles.intercept
    m = Theta.shape[0]
    Phi = np.maximum(Xp @ Theta.T, 0)
    G = (Phi @ W) / m + b - Y
    G *= s[:, None]
    ops = {
        "forward: Z = Xp @ Theta.T (GEMM, new n*m array)": lambda: Xp @ Theta.T,
        "forward: ReLU in place (n*m pass)": lambda: np.maximum(Phi, 0, out=Phi),
        "forward: F = Phi @ W (GEMV, n*m read)": lambda: Phi @ W,
        "loss: residual, squared norm, * s (n-vectors)": lambda: (
            0.5 * float(s @ np.einsum("ij,ij->i", G, G)),
            G * s[:, None],
        ),
        "penalty value (m*p)": lambda: np.vdot(Theta, Theta) + np.vdot(W, W),
        "backward: gW = Phi.T @ G (GEMV, n*m read)": lambda: Phi.T @ G,
        "backward: C = G @ W.T (outer product, new n*m array)": lambda: G @ W.T,
        "backward: mask = Phi > 0 (new n*m bool)": lambda: Phi > 0,
        "backward: C *= mask (n*m pass)": None,
        "backward: gTheta = C.T @ Xp (GEMM)": None,
        "move: Particles.copy + updates + precondition (m*p)": lambda: (
            particles.copy(),
            metric.precondition(Theta),
        ),
    }
    C = G @ W.T
    mask = Phi > 0
    ops["backward: C *= mask (n*m pass)"] = lambda: np.multiply(C, mask, out=C)
    ops["backward: gTheta = C.T @ Xp (GEMM)"] = lambda: C.T @ Xp
    return {name: _median_ms(fn, repeats) for name, fn in ops.items()}


class LeanStep:
    """Prototype of the optimised forward + backward for ReLU, one output,
    squared loss and weight decay: one n*m buffer reused by every step.

    forward:  Z <- Xp @ Theta.T (into the buffer); Z <- max(Z, 0) in place;
              F = Z @ w / m + b; G = s * (F - y)             (n-vectors)
    backward: gW = Z.T @ G; Z <- 1{Z > 0} in place;
              gTheta = w * (Z.T @ (G * Xp))                  (one GEMM)
    which needs neither the outer product ``G w^T`` nor a boolean mask.
    With ``transposed_gemm``, the last product is computed as
    ``((G * Xp).T @ Z).T``, a (p, n) @ (n, m) product, which OpenBLAS runs
    faster than (m, n) @ (n, p).
    """

    def __init__(self, n, m, dtype, alpha, transposed_gemm=False):
        self.Z = np.empty((n, m), dtype=dtype)
        self.alpha = alpha
        self.transposed_gemm = transposed_gemm

    def value_and_gradient(self, Xp, y, s, W, Theta, b):
        Z = self.Z
        m = Theta.shape[0]
        np.matmul(Xp, Theta.T, out=Z)
        np.maximum(Z, 0, out=Z)
        G = Z @ W[:, 0]
        G *= 1.0 / m
        G += b[0] - y
        value = 0.5 * float(s @ (G * G))
        value += 0.5 * self.alpha * float(np.vdot(W, W) + np.vdot(Theta, Theta)) / m
        G *= s
        gW = (Z.T @ G)[:, None]
        np.greater(Z, 0, out=Z)  # the ReLU derivative, in place (0.0 / 1.0)
        GXp = G[:, None] * Xp
        gTheta = (GXp.T @ Z).T if self.transposed_gemm else Z.T @ GXp
        gTheta *= W
        gW += self.alpha * W
        gTheta += self.alpha * Theta
        return value, (gW, gTheta, np.array([G.sum()], dtype=G.dtype))


def lean_step(objective, Xp, Y, s, particles, metric, repeats, **options):
    """Check the prototype against the package, then time it."""
    alpha = objective.penalty.alpha
    lean = LeanStep(Xp.shape[0], particles.n_particles, Xp.dtype, alpha, **options)
    W, Theta, b = particles.weights, particles.positions, particles.intercept
    y = Y[:, 0]
    value, grads = lean.value_and_gradient(Xp, y, s, W, Theta, b)
    ref_value, ref_grads = objective.value_and_gradient(Xp, Y, s, particles)
    rtol = 1e-4 if Xp.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(value, ref_value, rtol=rtol)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol * np.abs(r).max())

    def step():
        _value, (gW, gTheta, gb) = lean.value_and_gradient(Xp, y, s, W, Theta, b)
        # the update without Particles.copy: new small arrays
        return W - 0.1 * gW, Theta - 0.1 * metric.precondition(gTheta), b - 0.1 * gb

    return _median_ms(step, repeats)


def matmul_reference(Xp, Theta, repeats):
    Z = np.empty((Xp.shape[0], Theta.shape[0]), dtype=Xp.dtype)
    C = np.ones_like(Z)
    return {
        "Xp @ Theta.T, new array": _median_ms(lambda: Xp @ Theta.T, repeats),
        "Xp @ Theta.T, out= reused buffer": _median_ms(
            lambda: np.matmul(Xp, Theta.T, out=Z), repeats
        ),
        "C.T @ Xp (backward shape)": _median_ms(lambda: C.T @ Xp, repeats),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n, d, m = (5_000, 50, 400) if args.quick else (20_000, 50, 1_000)
    for dtype in (np.float64, np.float32):
        setup = _setup(n, d, m, dtype)
        _objective, Xp, Y, s, particles, metric = setup
        print(f"\n## {np.dtype(dtype).name}, n={n:,}, d={d}, m={m:,}\n")
        print("| operation | median (ms) |\n|---|---|")
        ref = matmul_reference(Xp, particles.positions, args.repeats)
        for name, t in ref.items():
            print(f"| reference: {name} | {t:.1f} |")
        for name, t in package_calls(*setup, args.repeats).items():
            print(f"| package: {name} | {t:.1f} |")
        ops = replayed_operations(Xp, Y, s, particles, metric, args.repeats)
        for name, t in ops.items():
            print(f"| {name} | {t:.1f} |")
        print(f"| sum of the replayed operations | {sum(ops.values()):.1f} |")
        t = lean_step(*setup, args.repeats)
        print(
            f"| prototype: reused buffer, no outer product, in-place mask | {t:.1f} |"
        )
        t = lean_step(*setup, args.repeats, transposed_gemm=True)
        print(f"| prototype: the same + transposed backward GEMM | {t:.1f} |")
        if args.cprofile:
            X = Xp[:, :-1]
            est = MeanFieldRegressor(n_particles=m, max_iter=10, tol=0, random_state=0)
            profile = cProfile.Profile()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                profile.enable()
                est.fit(X, Y[:, 0])
                profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(10)


if __name__ == "__main__":
    main()
