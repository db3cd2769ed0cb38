"""
=========================================
Three particle flows on the same problem
=========================================

:class:`~sklearn_meanfield.MeanFieldRegressor` moves its particles by one
of three flows (``flow=...``):

- ``"wasserstein"``: gradient descent on weights and positions, the
  Wasserstein gradient flow of Chizat & Bach (2018);
- ``"conic"``: conic particle gradient descent (Wasserstein-Fisher-Rao,
  Chizat 2022): multiplicative weight updates move *mass* to the particles
  that lower the objective, while positions move at unit-mass speed;
- ``"langevin"``: mean-field Langevin dynamics, gradient descent plus
  Gaussian noise of temperature ``tau``, which minimises ``J + tau *
  entropy``: particles stay diffuse, with a bias of order ``tau`` unless the
  temperature is annealed (``annealing="linear"``).

We run the three on the same ``d = 2`` ReLU teacher-student problem and
show the paths of the particles and the objective over the iterations.
"""

# %%
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning

from sklearn_meanfield import MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student
from sklearn_meanfield.plotting import LossCurveDisplay, ParticleTrajectoryDisplay

OUT = Path(
    os.environ.get(
        "SKLEARN_MEANFIELD_EXAMPLES_OUT",
        Path(tempfile.gettempdir()) / "sklearn_meanfield_examples",
    )
)
OUT.mkdir(parents=True, exist_ok=True)
QUICK = os.environ.get("SKLEARN_MEANFIELD_EXAMPLES_QUICK") == "1"
warnings.simplefilter("ignore", ConvergenceWarning)

X, y, teacher_w, teacher_theta = make_teacher_student(
    300, 2, n_teacher=3, return_teacher=True, random_state=3
)
common = dict(
    solver="flow",  # the discretised flows, not the default L-BFGS
    n_particles=30,
    alpha=1e-4,
    max_iter=200 if QUICK else 1500,
    tol=0,
    record_every=5,
    random_state=0,
)
flows = {
    "wasserstein": MeanFieldRegressor(flow="wasserstein", **common),
    "conic": MeanFieldRegressor(flow="conic", learning_rate_init=0.1, **common),
    "langevin (tau = 1e-3, annealed)": MeanFieldRegressor(
        flow="langevin", temperature=1e-3, annealing="linear", **common
    ),
}

# %%
# Top: particle paths (``|w| theta``, red ``w > 0``, blue ``w < 0``) and the
# teacher's directions. Bottom: the objective ``J`` of each flow.
fig = plt.figure(figsize=(13, 8))
ax_loss = fig.add_subplot(2, 1, 2)
for k, (name, est) in enumerate(flows.items()):
    est.fit(X, y)
    print(
        f"{name:>32}: train R^2 = {est.score(X, y):.6f}, J = {est.loss_curve_[-1]:.2e}"
    )
    ax = fig.add_subplot(2, 3, k + 1)
    ParticleTrajectoryDisplay.from_estimator(
        est, true_positions=teacher_theta, true_weights=teacher_w, ax=ax
    )
    ax.set_title(name)
    LossCurveDisplay.from_estimator(est, label=name, ax=ax_loss)
ax_loss.legend()
ax_loss.set_title("objective J along the flows")
fig.tight_layout()
fig.savefig(OUT / "plot_flows.png", dpi=80)
plt.show()
