"""Spikes for real measurement models against the grid Lasso (issue 15).

Three problems, each solved by ``SparseSpikeDeconvolver`` (off the grid)
and by scikit-learn's ``Lasso`` on grids of two resolutions (the same
objective: the grid Lasso is the BLASSO restricted to the grid):

1. 1-D Fourier coefficients ``|k| <= fc``, complex noise;
2. 2-D Fourier coefficients ``|k|_inf <= fc``, complex noise;
3. a 64 x 64 image of 20 point sources (Gaussian PSF integrated over the
   pixels, 700 to 1300 photons each, 10 background photons per pixel,
   Poisson counts), with an unpenalised background: ``positive=True,
   fit_intercept=True`` for both.

Reported: fit time (median over rounds, contenders interleaved, one BLAS
thread), the worst and mean position error after optimal matching, missed
and spurious spikes (a spike further than half a resolution cell from every
true one is spurious). A grid Lasso's spikes are the connected groups of
non-zero coefficients of one sign, at their mass-weighted position with the
summed amplitude, those lighter than 1% of the largest dropped (as the
deconvolver prunes). For the image, the Cramer-Rao bound of each source
(Mortensen et al. 2010) is reported beside the errors.

Usage::

    PYTHONPATH=. python benchmarks/spikes_models.py --threads 1 [--rounds 3]
"""

import argparse
import time
import warnings

import numpy as np
from scipy import ndimage
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from sklearn_meanfield import IntegratedGaussianKernel, SparseSpikeDeconvolver
from sklearn_meanfield.datasets import make_spikes
from sklearn_meanfield.metrics import match_spikes, spike_recovery_scores


def _frequencies(fc, d):
    axis = np.arange(-fc, fc + 1)
    mesh = np.meshgrid(*([axis] * d), indexing="ij")
    return np.column_stack([g.ravel() for g in mesh]).astype(float)


def fourier_problem(fc, d, n_spikes, separation, noise, seed):
    _, _, T, a = make_spikes(
        n_spikes, 11, n_dims=d, cutoff=fc, min_separation=separation,
        random_state=seed,
    )  # fmt: skip
    X = _frequencies(fc, d)
    y = np.exp(-2j * np.pi * X @ T.T) @ a
    rng = np.random.RandomState(seed + 1)
    y = y + noise * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    # alpha: 3 times the noise's correlation with a spike,
    # sqrt(2) noise / sqrt(n), times sqrt(2 log(resolution cells))
    n = X.shape[0]
    alpha = 3 * np.sqrt(2) * noise / np.sqrt(n) * np.sqrt(2 * np.log(n))
    return X, y, T, a, alpha


def image_problem(size, n_sources, sigma, photons, background, seed):
    rng = np.random.RandomState(seed)
    g = np.arange(size, dtype=float)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    for _ in range(10_000):
        T = rng.uniform(1.5, size - 2.5, (n_sources, 2))
        D = np.sqrt(((T[:, None] - T[None]) ** 2).sum(-1))
        np.fill_diagonal(D, np.inf)
        if D.min() >= 3 * sigma:
            break
    N = photons * rng.uniform(0.7, 1.3, n_sources)
    kernel = IntegratedGaussianKernel(sigma, 1.0)
    y = rng.poisson(kernel.value(X[:, None] - T[None]) @ N + background)
    norm = np.sqrt(np.sum(kernel.value(X - X.mean(0)) ** 2))
    n = X.shape[0]
    alpha = 4 * np.sqrt(background) * norm / n * np.sqrt(2 * np.log(n))
    return X, y.astype(float), T, N, alpha


def cramer_rao(sigma, N, b, s=1.0):
    sa2 = sigma**2 + s**2 / 12
    tau = 2 * np.pi * sa2 * b / (N * s**2)
    return np.sqrt(sa2 / N * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))


def _grid_axes(per_axis, d, periodic, lower=0.0, upper=1.0):
    if periodic:
        axis = np.arange(per_axis) / per_axis
    else:
        axis = np.linspace(lower, upper, per_axis)
    mesh = np.meshgrid(*([axis] * d), indexing="ij")
    return axis, np.column_stack([g.ravel() for g in mesh])


def lasso_spikes(coef, grid, shape, periodic, prune=1e-2):
    """Connected groups of non-zero coefficients of one sign (wrapping on
    the torus), at their mass-weighted position, amplitudes summed."""
    W = coef.reshape(shape)
    positions, amplitudes = [], []
    span = 1.0
    for sign in (1.0, -1.0):
        mask = sign * W > 0
        labels, _ = ndimage.label(mask)
        if periodic:  # join labels across the seam of each axis
            for axis in range(W.ndim):
                first = np.take(labels, 0, axis=axis)
                last = np.take(labels, -1, axis=axis)
                for u, v in zip(first.ravel(), last.ravel(), strict=True):
                    if u and v and u != v:
                        labels[labels == v] = u
        for lab in np.unique(labels[labels > 0]):
            idx = np.flatnonzero(labels.ravel() == lab)
            mass = np.abs(coef[idx])
            pts = grid[idx]
            if periodic:  # average around the first point
                ref = pts[np.argmax(mass)]
                D = pts - ref
                D -= span * np.floor(D / span + 0.5)
                pos = (ref + (mass @ D) / mass.sum()) % span
            else:
                pos = (mass @ pts) / mass.sum()
            positions.append(pos)
            amplitudes.append(coef[idx].sum())
    if not amplitudes:
        return np.zeros((0, grid.shape[1])), np.zeros(0)
    amplitudes = np.array(amplitudes)
    keep = np.abs(amplitudes) >= prune * np.abs(amplitudes).max()
    return np.array(positions)[keep], amplitudes[keep]


def fourier_lasso(X, y, alpha, per_axis, d):
    """The BLASSO on a grid: real and imaginary rows, sklearn's 1/(2 n_rows)
    is half ours, so its alpha is half."""
    _, grid = _grid_axes(per_axis, d, periodic=True)
    E = np.exp(-2j * np.pi * X @ grid.T)
    A = np.vstack([E.real, E.imag])
    b = np.concatenate([y.real, y.imag])

    def fit():
        model = Lasso(alpha=alpha / 2, fit_intercept=False, max_iter=20_000, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(A, b)
        return lasso_spikes(model.coef_, grid, (per_axis,) * d, periodic=True)

    return fit


def image_lasso(X, y, alpha, upsample, sigma, size):
    per_axis = round(size * upsample)
    _, grid = _grid_axes(per_axis, 2, periodic=False, lower=-0.5, upper=size - 0.5)
    A = IntegratedGaussianKernel(sigma, 1.0).pairwise_value_and_gradient(X, grid)[0]

    def fit():
        model = Lasso(alpha=alpha, positive=True, max_iter=20_000, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(A, y)
        return lasso_spikes(model.coef_, grid, (per_axis, per_axis), periodic=False)

    return fit


def measure(contenders, T, a, periodic, max_distance, rounds):
    times = {name: [] for name in contenders}
    found = {}
    for _ in range(rounds):
        for name, fit in contenders.items():
            t0 = time.perf_counter()
            found[name] = fit()
            times[name].append(time.perf_counter() - t0)
    rows = []
    for name in contenders:
        P, A = found[name]
        sc = spike_recovery_scores(
            T, a, P, A, periodic=periodic, max_distance=max_distance
        )
        rows.append(
            (
                name,
                float(np.median(times[name])),
                sc["max_position_error"],
                sc["mean_position_error"],
                sc["n_missed"],
                sc["n_spurious"],
            )
        )
    return rows, found


def print_table(title, rows, unit):
    print(f"\n{title}")
    print(
        f"| method | time (s) | max error ({unit}) | mean error ({unit}) | missed "
        "| spurious |\n|---|---|---|---|---|---|"
    )
    for name, t, emax, emean, miss, spur in rows:
        print(f"| {name} | {t:.3f} | {emax:.2e} | {emean:.2e} | {miss} | {spur} |")


def deconvolver(X, y, **params):
    def fit():
        est = SparseSpikeDeconvolver(**params).fit(X, y)
        return est.positions_, est.weights_

    return fit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    limits = None
    if args.threads:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.threads)

    # 1. 1-D Fourier
    fc = 20
    X, y, T, a, alpha = fourier_problem(fc, 1, 10, 1.5, 0.05, seed=0)
    contenders = {
        "SparseSpikeDeconvolver": deconvolver(X, y, kernel="fourier", alpha=alpha),
        "Lasso, 1k grid": fourier_lasso(X, y, alpha, 1000, 1),
        "Lasso, 10k grid": fourier_lasso(X, y, alpha, 10_000, 1),
    }
    rows, _ = measure(contenders, T, a, True, 0.5 / fc, args.rounds)
    print_table(
        f"1. 1-D Fourier, fc={fc}, 10 signed spikes 1.5/fc apart, complex noise "
        f"0.05 per coefficient, alpha={alpha:.3g}",
        rows,
        "torus",
    )

    # 2. 2-D Fourier
    fc = 8
    X, y, T, a, alpha = fourier_problem(fc, 2, 8, 1.5, 0.05, seed=0)
    contenders = {
        "SparseSpikeDeconvolver": deconvolver(
            X, y, kernel="fourier", alpha=alpha, n_particles=144
        ),
        "Lasso, 64x64 grid": fourier_lasso(X, y, alpha, 64, 2),
        "Lasso, 128x128 grid": fourier_lasso(X, y, alpha, 128, 2),
    }
    rows, _ = measure(contenders, T, a, True, 0.5 / fc, args.rounds)
    print_table(
        f"2. 2-D Fourier, fc={fc} ({X.shape[0]} coefficients), 8 signed spikes "
        f"1.5/fc apart, complex noise 0.05, alpha={alpha:.3g}",
        rows,
        "torus",
    )

    # 3. 64 x 64 image
    size, sigma, background = 64, 1.2, 10.0
    X, y, T, N, alpha = image_problem(size, 20, sigma, 1000.0, background, seed=0)
    contenders = {
        "SparseSpikeDeconvolver": deconvolver(
            X,
            y,
            kernel="integrated_gaussian",
            bandwidth=sigma,
            alpha=alpha,
            positive=True,
            fit_intercept=True,
        ),
        "Lasso, pixel grid": image_lasso(X, y, alpha, 1, sigma, size),
        "Lasso, 1.5x grid": image_lasso(X, y, alpha, 1.5, sigma, size),
    }
    rows, found = measure(contenders, T, N, False, 1.0, args.rounds)
    print_table(
        f"3. {size}x{size} image, 20 sources of 700-1300 photons, PSF sigma "
        f"{sigma} px, {background:g} background photons per pixel, Poisson, "
        f"alpha={alpha:.3g}",
        rows,
        "px",
    )
    P, _ = found["SparseSpikeDeconvolver"]
    rows_, _, dist = match_spikes(T, P)
    crb = cramer_rao(sigma, N[rows_], background)
    print(
        f"   Cramer-Rao bound per coordinate: {crb.min():.3f} to {crb.max():.3f} px; "
        f"RMS radial error / (sqrt(2) CRB) = "
        f"{np.sqrt(np.mean((dist / (np.sqrt(2) * crb)) ** 2)):.2f}"
    )
    if limits is not None:
        limits.restore_original_limits()


if __name__ == "__main__":
    main()
