"""
=====================================================
Teacher-student networks: more particles, global fits
=====================================================

A ReLU *teacher* network with ``m0`` neurons generates the targets, and a
*student* :class:`~sklearn_meanfield.MeanFieldRegressor` with ``m`` particles
(hidden neurons) learns them by the mean-field gradient flow of Chizat & Bach
(NeurIPS 2018). The particle objective is not convex, yet in the
many-particle limit the flow can only converge to a global minimiser; the
paper shows that a few times more particles than the teacher needs are
already enough.

This example reproduces the two figures that make that point: the particle
trajectories in ``d = 2`` for ``m = m0, 2 m0, 20 m0``, and the excess loss at
convergence against ``m`` in ``d = 10``.
"""

# %%
# Where the figures go: ``SKLEARN_MEANFIELD_EXAMPLES_OUT`` (default: a
# temporary directory), and ``SKLEARN_MEANFIELD_EXAMPLES_QUICK=1`` shrinks
# the problems (for the test suite).
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student
from sklearn_meanfield.plotting import ParticleTrajectoryDisplay

OUT = Path(
    os.environ.get(
        "SKLEARN_MEANFIELD_EXAMPLES_OUT",
        Path(tempfile.gettempdir()) / "sklearn_meanfield_examples",
    )
)
OUT.mkdir(parents=True, exist_ok=True)
QUICK = os.environ.get("SKLEARN_MEANFIELD_EXAMPLES_QUICK") == "1"
# max_iter is the budget of "convergence" here: no warning for reaching it
warnings.simplefilter("ignore", ConvergenceWarning)

# %%
# Particle trajectories in the plane
# ----------------------------------
# In ``d = 2`` (no bias), a ReLU neuron ``w relu(theta . x)`` is
# 2-homogeneous: only the direction of ``theta`` and the product
# ``|w| |theta|`` matter. We draw each particle at ``|w| theta`` (red for
# ``w > 0``, blue for ``w < 0``), its path during training as a line, and
# the teacher's neurons as dashed rays. With ``m = m0`` particles every
# particle must find its own teacher neuron, and on this problem the flow
# gets stuck (``1 - R^2 ~ 0.3``); with more particles, mass reaches every
# teacher direction and the loss goes to zero. (Without weight decay,
# ``alpha=0``, the minimisers are the teacher's function; in ``d = 2``
# without bias, ``relu(z) - relu(-z) = z`` lets opposite directions share a
# linear part, so some particles settle on the ray opposite a teacher's.)
m0 = 3
X, y, teacher_w, teacher_theta = make_teacher_student(
    300, 2, n_teacher=m0, return_teacher=True, random_state=3
)
max_iter = 300 if QUICK else 1500

fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
for ax, m in zip(axes, [m0, 2 * m0, 20 * m0], strict=True):
    student = MeanFieldRegressor(
        n_particles=m,
        solver="flow",  # the gradient flow of the theorem (the paper's figures)
        alpha=0,
        max_iter=max_iter,
        tol=0,
        record_every=5,
        random_state=0,
    ).fit(X, y)
    ParticleTrajectoryDisplay.from_estimator(
        student, true_positions=teacher_theta, true_weights=teacher_w, ax=ax
    )
    ax.set_title(f"m = {m} particles: 1 - R^2 = {1 - student.score(X, y):.1e}")
axes[0].legend(loc="lower left", fontsize="small")
fig.suptitle(f"Student particles (|w| theta) and teacher directions, m0 = {m0}")
fig.tight_layout()
fig.savefig(OUT / "plot_teacher_student_trajectories.png", dpi=80)

# %%
# Excess loss at convergence against the number of particles
# ----------------------------------------------------------
# In ``d = 10`` with ``m0 = 5`` teacher neurons and no noise, the teacher
# has zero loss, so the training loss at the end of the flow *is* the
# excess loss. We report ``1 - R^2`` on the training data (the squared
# error relative to the variance of ``y``) after a fixed budget of steps,
# for several random teachers. Below ``m0`` particles the student cannot
# represent the teacher; from ``m0`` on, every run ends near zero (the
# remaining ``1e-5``-ish values are the finite budget: more particles
# start further from the solution). Values are floored at ``1e-10`` for
# the log scale.
d, m0 = 10, 5
ms = [2, 5, 10] if QUICK else [1, 2, 3, 4, 5, 10, 20, 40]
seeds = range(2 if QUICK else 4)


def excess_loss(m, seed):
    X, y = make_teacher_student(
        300 if QUICK else 1000, d, n_teacher=m0, random_state=seed
    )
    student = MeanFieldRegressor(
        n_particles=m,
        solver="flow",
        alpha=0,
        max_iter=200 if QUICK else 2000,
        tol=0,
        random_state=0,
    ).fit(X, y)
    return max(1 - student.score(X, y), 1e-10)


excess = np.array([[excess_loss(m, s) for s in seeds] for m in ms])
for m, row in zip(ms, excess, strict=True):
    print(f"m = {m:3d}: 1 - R^2 = " + ", ".join(f"{v:.1e}" for v in row))

fig, ax = plt.subplots(figsize=(5.5, 4))
for j in range(excess.shape[1]):
    ax.plot(ms, excess[:, j], "o", color="0.6", ms=4)
ax.plot(ms, np.median(excess, axis=1), "k-", label="median over initialisations")
ax.axvline(m0, color="tab:red", ls=":", label="m = m0")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("number of particles m")
ax.set_ylabel("excess loss (1 - R^2) at convergence")
ax.set_title(f"ReLU teacher, d = {d}, m0 = {m0}")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "plot_teacher_student_excess_loss.png", dpi=80)
plt.show()
