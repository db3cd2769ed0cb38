"""
========================================================
Localising point sources in a simulated microscopy image
========================================================

Single-molecule localisation microscopy (and astronomy) images point
sources: each pixel counts the photons of the sources that fall on it,
through the optics' point-spread function (PSF), plus a background, with
Poisson noise. The pixel ``x`` of side ``s`` collects from a source at
``t`` the Gaussian PSF integrated over its area::

    y_x ~ Poisson( sum_i N_i prod_k [Phi((x_k - t_ik + s/2) / sigma)
                                      - Phi((x_k - t_ik - s/2) / sigma)] + b )

:class:`~sklearn_meanfield.SparseSpikeDeconvolver` with
``kernel="integrated_gaussian"`` fits that model off the pixel grid: the
amplitudes are the photon counts ``N_i`` of the sources, ``positive=True``
keeps them non-negative and ``fit_intercept=True`` fits the background
``b``. How good are the positions? The Cramer-Rao bound (Mortensen et al.,
Nature Methods 2010) is the smallest standard deviation of any unbiased
localisation from these photons:
``sqrt(sigma_a^2 / N (1 + 4 tau + sqrt(2 tau / (1 + 4 tau))))`` per
coordinate, ``sigma_a^2 = sigma^2 + s^2 / 12``, ``tau = 2 pi sigma_a^2 b /
(N s^2)``.
"""

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sklearn_meanfield import IntegratedGaussianKernel, SparseSpikeDeconvolver
from sklearn_meanfield.metrics import match_spikes, spike_recovery_scores
from sklearn_meanfield.plotting import SpikesDisplay

OUT = Path(
    os.environ.get(
        "SKLEARN_MEANFIELD_EXAMPLES_OUT",
        Path(tempfile.gettempdir()) / "sklearn_meanfield_examples",
    )
)
OUT.mkdir(parents=True, exist_ok=True)
QUICK = os.environ.get("SKLEARN_MEANFIELD_EXAMPLES_QUICK") == "1"

# %%
# A 48 x 48 image (24 x 24 in quick mode) of sources 3 PSF widths apart at
# least, 600 to 1400 photons each, PSF sigma 1.2 pixels, 10 background
# photons per pixel.
size = 24 if QUICK else 48
n_sources = 4 if QUICK else 12
sigma, background = 1.2, 10.0
rng = np.random.RandomState(0)
g = np.arange(size, dtype=float)
pixels = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
while True:
    sources = rng.uniform(1.5, size - 2.5, (n_sources, 2))
    D = np.sqrt(((sources[:, None] - sources[None]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    if D.min() >= 3 * sigma:
        break
photons = rng.uniform(600, 1400, n_sources)
psf = IntegratedGaussianKernel(sigma, pixel_size=1.0)
counts = rng.poisson(psf.value(pixels[:, None] - sources[None]) @ photons + background)

# %%
# ``alpha``: spikes appear where the residual's correlation with the PSF
# exceeds ``alpha``. The background's Poisson noise correlates with a PSF at
# about ``sqrt(b) |K| / n`` (``|K|`` the PSF's norm over the pixels, ``n`` the
# number of pixels); four times that, times ``sqrt(2 log n)`` for the
# maximum over the image, keeps noise from making sources.
n = pixels.shape[0]
norm = np.sqrt(np.sum(psf.value(pixels - pixels.mean(axis=0)) ** 2))
alpha = 4 * np.sqrt(background) * norm / n * np.sqrt(2 * np.log(n))
est = SparseSpikeDeconvolver(
    "integrated_gaussian",
    bandwidth=sigma,
    alpha=alpha,
    positive=True,
    fit_intercept=True,
).fit(pixels, counts)
scores = spike_recovery_scores(
    sources, photons, est.positions_, est.weights_, max_distance=1.0
)
print(
    f"{est.n_spikes_} sources found ({scores['n_missed']} missed, "
    f"{scores['n_spurious']} spurious) in {est.n_iter_} steps; "
    f"background {est.intercept_:.2f} photons per pixel (true {background:g})"
)

# %%
# Errors against the Cramer-Rao bound: an efficient estimator has a radial
# error of root mean square ``sqrt(2)`` times the bound per coordinate.
rows, cols, error = match_spikes(sources, est.positions_)
sa2 = sigma**2 + 1 / 12
tau = 2 * np.pi * sa2 * background / photons[rows]
crb = np.sqrt(sa2 / photons[rows] * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))
print(
    f"position error: worst {error.max():.3f} px, RMS {np.sqrt(np.mean(error**2)):.3f} "
    f"px; Cramer-Rao bound {crb.min():.3f} to {crb.max():.3f} px per coordinate; "
    f"RMS error / (sqrt(2) CRB) = {np.sqrt(np.mean((error / crb) ** 2 / 2)):.2f}"
)
print(
    "photon counts, relative error: "
    f"{np.abs(est.weights_[cols] / photons[rows] - 1).max():.3f} at worst"
)

# %%
# The image with the true (crosses) and recovered (circles, area
# proportional to the photons) sources, and the dual certificate: ``eta <=
# 1`` everywhere and ``= 1`` at the sources proves that no other source is
# worth its ``alpha``.
display = SpikesDisplay.from_estimator(
    est,
    pixels,
    counts,
    true_positions=sources,
    true_weights=photons,
    n_grid=4 * size,
)
display.figure_.savefig(OUT / "plot_spikes_microscopy.png", dpi=80)
plt.show()
