"""Spike recovery scores: Hungarian matching, torus distances, counts."""

import numpy as np
import pytest

from sklearn_meanfield.metrics import (
    match_spikes,
    spike_distances,
    spike_recovery_scores,
)


def test_torus_distance_wraps():
    d = spike_distances([0.05], [0.95, 0.5], periodic=True)
    np.testing.assert_allclose(d, [[0.1, 0.45]])
    d = spike_distances([0.05], [0.95], periodic=False)
    np.testing.assert_allclose(d, [[0.9]])
    # 2-D: each coordinate wraps
    d = spike_distances([[0.02, 0.98]], [[0.98, 0.02]], periodic=True)
    np.testing.assert_allclose(d, [[np.hypot(0.04, 0.04)]])


def test_hungarian_matching_is_optimal_not_greedy():
    # Greedy nearest matching would pair 0.5 <-> 0.45 (0.05) and then
    # 0.4 <-> 0.6 (0.2): total 0.25. The optimum pairs 0.4 <-> 0.45 and
    # 0.5 <-> 0.6: total 0.15.
    rows, cols, d = match_spikes([0.4, 0.5], [0.45, 0.6])
    pairs = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    assert pairs == {0: 0, 1: 1}
    assert d.sum() == pytest.approx(0.15)


def test_scores_count_missed_and_spurious():
    true_t = [0.1, 0.4, 0.8]
    true_a = [1.0, -0.5, 2.0]
    found_t = [0.1001, 0.41, 0.6, 0.95]
    found_a = [1.1, -0.5, 0.3, 0.01]
    sc = spike_recovery_scores(
        true_t, true_a, found_t, found_a, periodic=True, max_distance=0.05
    )
    assert sc["n_matched"] == 2
    assert sc["n_missed"] == 1  # 0.8 has nothing within 0.05
    assert sc["n_spurious"] == 2  # 0.6 and 0.95
    assert sc["max_position_error"] == pytest.approx(0.01)
    assert sc["mean_position_error"] == pytest.approx((1e-4 + 0.01) / 2)
    assert sc["max_amplitude_error"] == pytest.approx(0.1)
    assert sc["mean_amplitude_error"] == pytest.approx(0.05)
    # without a distance limit the third true spike is matched to 0.95
    # (distance 0.15) and only one spurious spike is left
    sc = spike_recovery_scores(true_t, true_a, found_t, found_a, periodic=True)
    assert (sc["n_missed"], sc["n_spurious"]) == (0, 1)


def test_scores_with_nothing_found():
    sc = spike_recovery_scores([[0.2]], [1.0], np.zeros((0, 1)), [])
    assert sc["n_missed"] == 1 and sc["n_spurious"] == 0
    assert np.isnan(sc["max_position_error"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="amplitude"):
        spike_recovery_scores([0.1, 0.2], [1.0], [0.1], [1.0])
    with pytest.raises(ValueError, match="dimensions"):
        spike_distances(np.zeros((2, 1)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        spike_distances([np.nan], [0.1])
