"""
===========================================
Spikes in 2-D: a toy super-resolution image
===========================================

Point sources on the plane seen through a low-pass filter, as in a
fluorescence microscopy image: the observed image is ``y(x) = sum_i a_i
K(x - t_i) + noise`` on a grid of pixels, with ``K`` the 2-D Dirichlet
kernel (a product of 1-D kernels of cutoff ``fc``) on the torus
``[0, 1)^2``. :class:`~sklearn_meanfield.SparseSpikeDeconvolver` with
``positive=True`` (intensities are non-negative) starts from a coarse grid
of particles and moves them to the sources, off the pixel grid; the dual
certificate ``eta`` checks the result: ``eta <= 1`` everywhere and ``= 1``
at the sources.
"""

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from sklearn_meanfield import SparseSpikeDeconvolver
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
# A 20 x 20 pixel image (16 x 16 in quick mode) of 4 sources.
fc = 4
X, y, true_positions, true_amplitudes = make_spikes(
    n_spikes=4,
    n_samples=16**2 if QUICK else 20**2,
    n_dims=2,
    cutoff=fc,
    min_separation=1.0,
    positive=True,
    noise=0.01,
    random_state=0,
)
spikes = SparseSpikeDeconvolver(
    cutoff=fc,
    alpha=2e-3,
    positive=True,
    n_particles=64,
    record_every=1,
    random_state=0,
).fit(X, y)
scores = spike_recovery_scores(
    true_positions, true_amplitudes, spikes.positions_, spikes.weights_, periodic=True
)
print(
    f"{spikes.n_spikes_} sources found in {spikes.n_iter_} iterations; max "
    f"position error {scores['max_position_error']:.1e} (pixel: {1 / 20:.2f}), "
    f"max |eta| = {spikes.certificate_max_:.4f}"
)

# %%
# The particle paths on the plane (``record_every=1``), the image with the
# true and recovered sources, and the certificate.
trajectory = spikes.trajectory_
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
ParticleTrajectoryDisplay.from_trajectory(
    trajectory,
    kind="spikes",
    true_positions=true_positions,
    true_weights=true_amplitudes,
    ax=axes[0],
)
axes[0].set_aspect("equal")
axes[0].set_title("particle paths (size: final mass)")
SpikesDisplay.from_estimator(
    spikes,
    X,
    y,
    true_positions=true_positions,
    true_weights=true_amplitudes,
    n_grid=60,
    ax=axes[1:],
)
fig.tight_layout()
fig.savefig(OUT / "plot_spikes_2d.png", dpi=80)
plt.show()
