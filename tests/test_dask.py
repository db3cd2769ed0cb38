"""Scaling out with dask: joblib's dask backend and dask-ml's Incremental.

Each test starts its own ``LocalCluster`` on localhost and closes it.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from sklearn_meanfield import MeanFieldClassifier, MeanFieldRegressor
from sklearn_meanfield.datasets import make_teacher_student

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def test_grid_search_on_a_dask_cluster(client):
    X, y = make_teacher_student(1500, 5, n_teacher=3, random_state=0)
    search = GridSearchCV(
        MeanFieldRegressor(20, max_iter=300, random_state=0),
        {"alpha": [1e-5, 1e-1], "n_particles": [10, 20]},
        cv=3,
        n_jobs=-1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_backend("dask"):
            search.fit(X, y)
    # the workers really ran the fits
    assert len(client.scheduler_info()["workers"]) == 2
    assert search.best_params_["alpha"] == 1e-5
    assert search.best_score_ > 0.99
    # same result as a local search
    local = GridSearchCV(search.estimator, search.param_grid, cv=3, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local.fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )


def test_incremental_partial_fit_on_a_chunked_dask_array(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = make_teacher_student(2000, 5, n_teacher=3, random_state=0)
    X_dask = da.from_array(X, chunks=(200, 5))
    y_dask = da.from_array(y, chunks=200)
    # the blocks in their order (Incremental shuffles them by default, with an
    # unseeded generator: a different order, and a different model, at each run)
    model = wrappers.Incremental(
        MeanFieldRegressor(20, batch_size=50, random_state=0), shuffle_blocks=False
    )
    for _ in range(5):
        model.partial_fit(X_dask, y_dask)
    estimator = model.estimator_
    assert estimator.n_iter_ == 5 * X_dask.numblocks[0]  # one epoch per block
    assert estimator.t_ == 5 * 2000
    prediction = model.predict(X_dask).compute()
    assert r2_score(y, prediction) > 0.99
    # the same model as partial_fit on the same blocks in memory
    local = MeanFieldRegressor(20, batch_size=50, random_state=0)
    for _ in range(5):
        for start in range(0, 2000, 200):
            local.partial_fit(X[start : start + 200], y[start : start + 200])
    np.testing.assert_allclose(estimator.weights_, local.weights_, rtol=1e-12)
    np.testing.assert_allclose(estimator.positions_, local.positions_, rtol=1e-12)
    np.testing.assert_allclose(prediction, local.predict(X), rtol=1e-10, atol=1e-12)


def test_incremental_classifier_on_a_dask_array(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = make_teacher_student(
        2000, 4, n_teacher=3, task="classification", random_state=0
    )
    model = wrappers.Incremental(
        MeanFieldClassifier(20, batch_size=50, random_state=0), shuffle_blocks=False
    )
    X_dask = da.from_array(X, chunks=(250, 4))
    y_dask = da.from_array(y, chunks=250)
    for _ in range(3):
        model.partial_fit(X_dask, y_dask, classes=[0, 1])
    accuracy = np.mean(model.predict(X_dask).compute() == y)
    assert accuracy > 0.9
