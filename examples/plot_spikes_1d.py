"""
=================================================================
Off-the-grid spikes deconvolution in 1-D, against a grid Lasso
=================================================================

A few signed spikes ``mu = sum_i a_i delta_{t_i}`` on the torus ``[0, 1)``
are seen through a low-pass filter, the Dirichlet kernel of cutoff ``fc``:
``y_j = sum_i a_i K(x_j - t_i) + noise``. The BLASSO recovers them by
minimising ``(1/2n) |y - Phi mu|^2 + alpha |mu|`` over *measures*.
:class:`~sklearn_meanfield.SparseSpikeDeconvolver` discretises the measure
into particles placed on a coarse grid and moves weights *and* positions by
conic particle gradient descent (Chizat, 2022): the particles slide to the
spikes, with no grid to limit the precision (and, by default, Newton's
method polishes the spikes once the particles have gathered).

A :class:`~sklearn.linear_model.Lasso` on a fixed grid solves the same
problem restricted to the grid: its spikes can only sit on grid points, and
a spike between two of them is split in two.
"""

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Lasso

from sklearn_meanfield import DirichletKernel, SparseSpikeDeconvolver
from sklearn_meanfield.datasets import make_spikes
from sklearn_meanfield.metrics import spike_recovery_scores
from sklearn_meanfield.plotting import (
    ParticleTrajectoryDisplay,
    SpikesDisplay,
)

OUT = Path(
    os.environ.get(
        "SKLEARN_MEANFIELD_EXAMPLES_OUT",
        Path(tempfile.gettempdir()) / "sklearn_meanfield_examples",
    )
)
OUT.mkdir(parents=True, exist_ok=True)
QUICK = os.environ.get("SKLEARN_MEANFIELD_EXAMPLES_QUICK") == "1"

# %%
# The data: 5 spikes, separation at least ``0.7 / fc``, 100 samples on a
# regular grid of the torus, a little noise.
fc = 7
X, y, true_positions, true_amplitudes = make_spikes(
    n_spikes=5,
    n_samples=100,
    cutoff=fc,
    min_separation=0.7,
    noise=0.02,
    random_state=0,
)

# %%
# Particles. 30 grid positions per sign, small equal masses, and the flow
# alone (``polish=False``) with small steps, which makes the paths visible.
# By default the flow takes a few line-searched steps, until the masses have
# gathered, and Newton's method then polishes the spikes they form (a
# handful of iterations in all; see the last cell).
alpha = 0.02
spikes = SparseSpikeDeconvolver(
    cutoff=fc,
    alpha=alpha,
    n_particles=30,
    weight_step=1.0,
    position_step=3.0,
    max_iter=100 if QUICK else 400,
    record_every=1,
    random_state=0,
    polish=False,
).fit(X, y)
print(
    f"{spikes.n_spikes_} spikes after {spikes.n_iter_} iterations, "
    f"max |eta| = {spikes.certificate_max_:.4f}, duality gap = {spikes.dual_gap_:.1e}"
)

# %%
# The particles' paths: ``record_every=1`` kept a snapshot of the raw
# particles at every step of the flow (before pruning and debiasing).
trajectory = spikes.trajectory_

# %%
# The grid Lasso: the same objective (scikit-learn's Lasso minimises
# ``(1/2n) |y - A w|^2 + alpha |w|_1``) with the columns of ``A`` the
# kernel at 100 grid points.
grid = np.arange(100) / 100
A = DirichletKernel(fc).value(X[:, None, :] - grid[None, :, None])
lasso = Lasso(alpha=alpha, fit_intercept=False, max_iter=100_000).fit(A, y)
support = np.flatnonzero(np.abs(lasso.coef_) > 1e-2 * np.abs(lasso.coef_).max())

for name, pos, amp in [
    ("particles", spikes.positions_, spikes.weights_),
    ("grid Lasso", grid[support], lasso.coef_[support]),
]:
    scores = spike_recovery_scores(
        true_positions, true_amplitudes, pos, amp, periodic=True, max_distance=0.05
    )
    print(
        f"{name:>10}: {len(amp)} spikes, max position error "
        f"{scores['max_position_error']:.1e}, max amplitude error "
        f"{scores['max_amplitude_error']:.2f}"
    )

# %%
# The figure: the paths of the particles (size: final mass), the signal and
# the spikes found, and the dual certificate ``eta``. At the BLASSO solution
# ``|eta| <= 1``, touching ``+-1`` exactly at the spikes: the certificate
# proves the particles found the global minimiser.
fig = plt.figure(figsize=(12, 7))
ax_paths = fig.add_subplot(1, 2, 1)
ax_signal = fig.add_subplot(2, 2, 2)
ax_eta = fig.add_subplot(2, 2, 4, sharex=ax_signal)
ParticleTrajectoryDisplay.from_trajectory(
    trajectory,
    kind="spikes",
    true_positions=true_positions,
    true_weights=true_amplitudes,
    ax=ax_paths,
)
ax_paths.set_xscale("log")
ax_paths.set_title("particle positions during the flow")
SpikesDisplay.from_estimator(
    spikes,
    X,
    y,
    true_positions=true_positions,
    true_weights=true_amplitudes,
    ax=[ax_signal, ax_eta],
)
ax_signal.stem(
    grid[support],
    lasso.coef_[support],
    linefmt="C1:",
    markerfmt="C1s",
    basefmt=" ",
    label="grid Lasso",
)
ax_signal.legend(loc="best", fontsize="small")
ax_signal.set_title("signal, reconstruction and spikes")
fig.tight_layout()
fig.savefig(OUT / "plot_spikes_1d.png", dpi=80)
plt.show()

# %%
# The default solver on the same data: the flow finds the support in a few
# steps, Newton's method polishes it and the certificate proves it optimal,
# at a lower objective than the flow alone reached.
fast = SparseSpikeDeconvolver(cutoff=fc, alpha=alpha, random_state=0).fit(X, y)
print(
    f"default: {fast.n_spikes_} spikes after {fast.n_iter_} iterations, "
    f"max |eta| - 1 = {fast.certificate_max_ - 1:.1e}, duality gap = "
    f"{fast.dual_gap_:.1e} (flow alone: {spikes.n_iter_} iterations, gap "
    f"{spikes.dual_gap_:.1e})"
)
