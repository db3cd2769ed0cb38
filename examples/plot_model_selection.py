"""
=====================================================
Model selection: a mean-field network in a Pipeline
=====================================================

:class:`~sklearn_meanfield.MeanFieldRegressor` is an ordinary scikit-learn
estimator: it goes in a :class:`~sklearn.pipeline.Pipeline` and its
hyperparameters are tuned by :class:`~sklearn.model_selection.GridSearchCV`.
Here we tune the weight decay ``alpha`` (a number without units) and the
number of particles on the diabetes dataset shipped with scikit-learn (for
``alpha`` alone, :class:`~sklearn_meanfield.MeanFieldRegressorCV` does the
same along a warm-started path, see ``plot_regularization_path.py``), and
compare the held-out
:math:`R^2` with :class:`~sklearn.neural_network.MLPRegressor`,
:class:`~sklearn.linear_model.Ridge` and
:class:`~sklearn.kernel_ridge.KernelRidge`, each tuned the same way.
"""

# %%
import os
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_meanfield import MeanFieldRegressor

OUT = Path(
    os.environ.get(
        "SKLEARN_MEANFIELD_EXAMPLES_OUT",
        Path(tempfile.gettempdir()) / "sklearn_meanfield_examples",
    )
)
OUT.mkdir(parents=True, exist_ok=True)
QUICK = os.environ.get("SKLEARN_MEANFIELD_EXAMPLES_QUICK") == "1"
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Every model is a pipeline standardising the features, tuned by 5-fold
# cross-validation (3-fold in quick mode) on the training set.
cv = 3 if QUICK else 5
candidates = {
    "MeanFieldRegressor": (
        MeanFieldRegressor(max_iter=100 if QUICK else 1000, random_state=0),
        {
            # alpha has no units (inputs and y are standardised inside the
            # fit); alpha_max, where the fit becomes constant, is about 0.7
            "alpha": [1e-2, 1e-1] if QUICK else [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
            "n_particles": [10, 50] if QUICK else [10, 50, 200],
        },
    ),
    "MLPRegressor": (
        MLPRegressor(solver="lbfgs", max_iter=100 if QUICK else 500, random_state=0),
        {
            "alpha": [1e-1, 1.0] if QUICK else [1e-2, 1e-1, 1.0, 10.0],
            "hidden_layer_sizes": [(10,), (50,)],
        },
    ),
    "Ridge": (Ridge(), {"alpha": np.logspace(-3, 3, 13)}),
    "KernelRidge (RBF)": (
        KernelRidge(kernel="rbf"),
        {"alpha": np.logspace(-3, 1, 5), "gamma": np.logspace(-3, 0, 4)},
    ),
}

rows, searches = [], {}
for name, (estimator, grid) in candidates.items():
    last = estimator.__class__.__name__.lower()
    search = GridSearchCV(
        make_pipeline(StandardScaler(), estimator),
        {f"{last}__{key}": values for key, values in grid.items()},
        cv=cv,
    )
    start = time.perf_counter()
    search.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    searches[name] = search
    best = {k.split("__", 1)[1]: v for k, v in search.best_params_.items()}
    rows.append(
        {
            "model": name,
            "best parameters": best,
            "CV R^2": search.best_score_,
            "test R^2": search.score(X_test, y_test),
            "search time (s)": elapsed,
        }
    )

table = pd.DataFrame(rows).set_index("model")
with pd.option_context(
    "display.max_columns", None, "display.max_colwidth", 45, "display.width", 150
):
    print(table.round(3))

# %%
# The figure: left, the cross-validated :math:`R^2` of the mean-field network
# over the grid (the number of particles matters little once there are
# enough: the mean-field limit); right, the test :math:`R^2` of every model.
results = pd.DataFrame(searches["MeanFieldRegressor"].cv_results_)
heat = results.pivot_table(
    index="param_meanfieldregressor__n_particles",
    columns="param_meanfieldregressor__alpha",
    values="mean_test_score",
)
fig, (ax_grid, ax_bar) = plt.subplots(1, 2, figsize=(11, 4))
image = ax_grid.imshow(heat.values, cmap="viridis", aspect="auto")
ax_grid.set_xticks(range(heat.shape[1]), [f"{a:g}" for a in heat.columns])
ax_grid.set_yticks(range(heat.shape[0]), [str(m) for m in heat.index])
ax_grid.set_xlabel("alpha")
ax_grid.set_ylabel("n_particles")
ax_grid.set_title("MeanFieldRegressor: CV R^2")
for (i, j), value in np.ndenumerate(heat.values):
    ax_grid.text(j, i, f"{value:.3f}", ha="center", va="center", color="w")
fig.colorbar(image, ax=ax_grid)
ax_bar.barh(table.index, table["test R^2"], color=["C3", "C0", "C1", "C2"])
ax_bar.set_xlim(table["test R^2"].min() - 0.05, table["test R^2"].max() + 0.02)
ax_bar.set_xlabel("test R^2 (diabetes)")
ax_bar.set_title("tuned models on held-out data")
fig.tight_layout()
fig.savefig(OUT / "plot_model_selection.png", dpi=80)
plt.show()
