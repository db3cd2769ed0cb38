"""Scores of sparse spikes recovery.

Recovered spikes are matched one-to-one to the true spikes by an optimal
(Hungarian) assignment minimising the total distance between matched
positions (:func:`scipy.optimize.linear_sum_assignment`); distances are
measured on the torus ``[0, 1)^n_dims`` when ``periodic=True``.
"""

from numbers import Real

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["match_spikes", "spike_distances", "spike_recovery_scores"]


def _as_positions(P, name):
    P = np.asarray(P, dtype=float)
    if P.ndim == 1:
        P = P[:, None]
    if P.ndim != 2:
        raise ValueError(
            f"{name} must be an array of shape (n_spikes, n_dims) or (n_spikes,); "
            f"got shape {P.shape}."
        )
    if not np.isfinite(P).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return P


def spike_distances(positions_a, positions_b, *, periodic=False):
    """Euclidean distances between two sets of spike positions.

    ``dist[i, k] = |wrap(a_i - b_k)|``, where on the torus (``periodic=True``)
    ``wrap`` maps each coordinate difference into ``[-1/2, 1/2)``.

    Parameters
    ----------
    positions_a : array-like of shape (n_a, n_dims) or (n_a,)
    positions_b : array-like of shape (n_b, n_dims) or (n_b,)
    periodic : bool, default=False

    Returns
    -------
    dist : ndarray of shape (n_a, n_b)
    """
    A = _as_positions(positions_a, "positions_a")
    B = _as_positions(positions_b, "positions_b")
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"The two sets of positions have {A.shape[1]} and {B.shape[1]} "
            "dimensions; they must have the same."
        )
    D = A[:, None, :] - B[None, :, :]
    if periodic:
        D -= np.floor(D + 0.5)
    return np.sqrt(np.einsum("ijk,ijk->ij", D, D))


def match_spikes(true_positions, positions, *, periodic=False, max_distance=None):
    """Optimal one-to-one matching of recovered to true spikes.

    Minimises the sum of the distances of the matched pairs (Hungarian
    algorithm). Pairs farther apart than ``max_distance`` are not matches.

    Parameters
    ----------
    true_positions : array-like of shape (n_true, n_dims) or (n_true,)
    positions : array-like of shape (n_found, n_dims) or (n_found,)
    periodic : bool, default=False
        Distances on the torus ``[0, 1)^n_dims``.
    max_distance : float or None, default=None
        Largest distance of a match; None: no limit.

    Returns
    -------
    true_index : ndarray of shape (n_matched,)
    found_index : ndarray of shape (n_matched,)
    distances : ndarray of shape (n_matched,)
        ``true_positions[true_index]`` is matched to
        ``positions[found_index]`` at these distances.
    """
    dist = spike_distances(true_positions, positions, periodic=periodic)
    if dist.size == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros(0)
    rows, cols = linear_sum_assignment(dist)
    d = dist[rows, cols]
    if max_distance is not None:
        ok = d <= max_distance
        rows, cols, d = rows[ok], cols[ok], d[ok]
    return rows, cols, d


@validate_params(
    {
        "true_positions": ["array-like"],
        "true_amplitudes": ["array-like"],
        "positions": ["array-like"],
        "amplitudes": ["array-like"],
        "periodic": ["boolean"],
        "max_distance": [Interval(Real, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def spike_recovery_scores(
    true_positions,
    true_amplitudes,
    positions,
    amplitudes,
    *,
    periodic=False,
    max_distance=None,
):
    """Position and amplitude errors, missed and spurious spikes.

    After :func:`match_spikes`, with matched pairs ``(t_i, a_i) <-> (s_i,
    b_i)``:

    - ``max_position_error = max_i |t_i - s_i|``, ``mean_position_error``
      its mean (torus distance if ``periodic``);
    - ``max_amplitude_error = max_i |a_i - b_i|``, ``mean_amplitude_error``;
    - ``n_missed``: true spikes without a match, ``n_spurious``: recovered
      spikes without a match.

    Errors are NaN when nothing is matched.

    Parameters
    ----------
    true_positions : array-like of shape (n_true, n_dims) or (n_true,)
    true_amplitudes : array-like of shape (n_true,)
    positions : array-like of shape (n_found, n_dims) or (n_found,)
    amplitudes : array-like of shape (n_found,)
    periodic : bool, default=False
    max_distance : float or None, default=None
        Largest distance of a match (e.g. half the minimum separation);
        None: every spike is matched while both sets have one left.

    Returns
    -------
    scores : dict
        Keys ``max_position_error``, ``mean_position_error``,
        ``max_amplitude_error``, ``mean_amplitude_error``, ``n_missed``,
        ``n_spurious``, ``n_matched``.
    """
    a_true = np.asarray(true_amplitudes, dtype=float).ravel()
    a = np.asarray(amplitudes, dtype=float).ravel()
    n_true = _as_positions(true_positions, "true_positions").shape[0]
    n_found = _as_positions(positions, "positions").shape[0]
    if a_true.shape[0] != n_true or a.shape[0] != n_found:
        raise ValueError(
            "Each set needs one amplitude per position: got "
            f"{n_true} true positions and {a_true.shape[0]} true amplitudes, "
            f"{n_found} positions and {a.shape[0]} amplitudes."
        )
    rows, cols, d = match_spikes(
        true_positions, positions, periodic=periodic, max_distance=max_distance
    )
    amp = np.abs(a_true[rows] - a[cols])
    nan = float("nan")
    return {
        "max_position_error": float(d.max()) if d.size else nan,
        "mean_position_error": float(d.mean()) if d.size else nan,
        "max_amplitude_error": float(amp.max()) if amp.size else nan,
        "mean_amplitude_error": float(amp.mean()) if amp.size else nan,
        "n_missed": int(n_true - rows.size),
        "n_spurious": int(n_found - rows.size),
        "n_matched": int(rows.size),
    }
