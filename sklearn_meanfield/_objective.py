"""The objective ``J(mu) = R(integral phi dmu) + G(mu)`` on a particle measure.

The measure is ``mu = (1/m) sum_i w_i delta_{theta_i}``: ``m`` particles, each
with a weight ``w_i`` (one per output) and a position ``theta_i``. Its
prediction is

    F(x) = (1/m) sum_i w_i phi(theta_i)(x) + b,

with ``b`` an optional intercept (an atom with constant ``phi``, not a
particle). :class:`MeanFieldObjective` composes a *unit* (``phi``, see
:mod:`sklearn_meanfield._units`), a *loss* ``R`` and a *penalty* ``G`` (see
:mod:`sklearn_meanfield._losses`) and returns ``J`` with its **mean-field
gradients**: for every particle, ``m`` times the partial derivative,

    gW[i]     = m dJ/dw_i     = sum_j phi(theta_i)(x_j) g_j + (penalty),
    gTheta[i] = m dJ/dtheta_i = sum_j (g_j . w_i) grad_theta phi(theta_i)(x_j)
                                + (penalty),

where ``g_j = s_j dl/df(y_j, F(x_j))``. These are the gradients of the first
variation ``J'(mu)`` evaluated at the particles: they stay O(1) whatever ``m``,
so a step size is a time step of the Wasserstein gradient flow and means the
same thing for ``m = 10`` and ``m = 10,000``.
"""

from dataclasses import dataclass

import numpy as np
from sklearn import get_config

from ._memory import row_chunks

__all__ = ["MeanFieldObjective", "Particles"]

#: Bytes of ``Phi`` per block of the forward and backward passes: a block's
#: product, activation, readout and backward product run while it is in the
#: CPU cache (one n x m pass over memory instead of four; the gain is
#: measured in benchmarks/NOTES.md).
_BLOCK_BYTES = 2 * 2**20


def _block_rows(n_particles, itemsize):
    """Rows of an (n_rows, n_particles) block of about ``_BLOCK_BYTES``."""
    return max(64, _BLOCK_BYTES // (n_particles * itemsize))


def _row_slices(n_samples, rows):
    return [slice(i, min(i + rows, n_samples)) for i in range(0, n_samples, rows)]


@dataclass
class Particles:
    """A particle measure: weights (m, n_outputs), positions (m, n_params),
    intercept (n_outputs,) or None."""

    weights: np.ndarray
    positions: np.ndarray
    intercept: np.ndarray | None = None

    @property
    def n_particles(self):
        return self.positions.shape[0]

    def _fields(self):
        """``(weights, positions, intercept)``; the intercept may be None."""
        return (self.weights, self.positions, self.intercept)

    def copy(self):
        return Particles(*(None if a is None else a.copy() for a in self._fields()))

    def difference(self, other):
        """``self - other`` as Particles (e.g. a velocity)."""
        return Particles(
            *(
                None if a is None else a - b
                for a, b in zip(self._fields(), other._fields(), strict=True)
            )
        )

    def add_scaled(self, other, factor):
        """``self += factor * other`` in place."""
        for a, b in zip(self._fields(), other._fields(), strict=True):
            if a is not None:
                a += factor * b

    def all_finite(self):
        return all(np.isfinite(a).all() for a in self._fields() if a is not None)

    def ravel(self, dtype=np.float64):
        """All the fields in one vector ``[w.ravel(), theta.ravel(), b]``."""
        return np.concatenate(
            [
                np.ravel(a).astype(dtype, copy=False)
                for a in self._fields()
                if a is not None
            ]
        )

    def unravel(self, vector, dtype=None):
        """Particles shaped like ``self`` from a vector of :meth:`ravel`."""
        expected = sum(a.size for a in self._fields() if a is not None)
        if vector.size != expected:
            raise ValueError(
                f"Expected a vector of {expected} values, got {vector.size}."
            )
        fields, start = [], 0
        for a in self._fields():
            if a is None:
                fields.append(None)
                continue
            part = vector[start : start + a.size].reshape(a.shape)
            fields.append(part.astype(dtype or a.dtype))
            start += a.size
        return Particles(*fields)


class MeanFieldObjective:
    """``J(mu) = R(F) + G(mu)`` with ``F = (1/m) Phi W + b``.

    Parameters
    ----------
    unit : unit object
        What one particle contributes (:mod:`sklearn_meanfield._units`).
    loss : loss object
        The data loss ``R`` (:mod:`sklearn_meanfield._losses`).
    penalty : penalty object or None
        The regulariser ``G``.
    """

    def __init__(self, unit, loss, penalty=None):
        self.unit = unit
        self.loss = loss
        self.penalty = penalty

    def predict(self, Xp, particles):
        """``F = (1/m) phi(Theta)(X) W + b``, shape (n_samples, n_outputs),
        over chunks of samples when ``Phi`` does not fit in
        ``working_memory``."""
        W = particles.weights
        chunks = self._chunks(Xp.shape[0], particles.n_particles, Xp.dtype.itemsize)
        if len(chunks) == 1:
            Phi, _ = self.unit.forward(Xp, particles.positions)
            return self._readout(Phi, particles)
        F = np.empty((Xp.shape[0], W.shape[1]), dtype=np.result_type(Xp.dtype, W))
        for rows in chunks:
            Phi, _ = self.unit.forward(Xp[rows], particles.positions)
            F[rows] = self._readout(Phi, particles)
        return F

    def predict_inputs(self, X, particles):
        """``F = (1/m) phi(Theta)(B x) W + b`` for inputs ``X`` in the units of
        the data, shape (n_samples, n_outputs).

        ``unit.prepare`` and the forward pass run chunk by chunk over the
        rows of ``X``, so that neither the prepared inputs (n_samples,
        n_params) nor ``Phi`` (n_samples, n_particles) is formed for all
        rows: a chunk of ``r`` rows holds ``r (n_params + n_particles +
        n_outputs)`` values, within scikit-learn's ``working_memory``. Only
        the output is allocated whole.
        """
        W, positions = particles.weights, particles.positions
        itemsize = np.result_type(X.dtype, positions.dtype).itemsize
        row_bytes = itemsize * (positions.shape[1] + particles.n_particles + W.shape[1])
        F = np.empty((X.shape[0], W.shape[1]), dtype=np.result_type(X.dtype, W))
        for rows in row_chunks(X.shape[0], row_bytes):
            # the forward cache (the activations themselves) is dropped with
            # Phi, so that two chunks of Phi never coexist
            Phi = self.unit.forward(self.unit.prepare(X[rows]), positions)[0]
            F[rows] = self._readout(Phi, particles)
            del Phi
        return F

    def _readout(self, Phi, particles):
        F = Phi @ particles.weights
        F *= 1.0 / particles.n_particles
        if particles.intercept is not None:
            F += particles.intercept
        return F

    def value(self, Xp, Y, s, particles):
        """``J`` alone (one forward pass)."""
        return self.forward(Xp, Y, s, particles)[0]

    def _buffer(self, name, Xp, particles):
        """A reused (len(Xp), n_particles) work array of ``Xp``'s dtype.

        Training allocates the two n x m arrays (activations and
        sensitivities) once instead of at every step; a forward state is
        therefore valid until the next ``forward`` of the same objective.
        """
        shape = (Xp.shape[0], particles.n_particles)
        buffers = self.__dict__.setdefault("_buffers", {})
        buf = buffers.get(name)
        if (
            buf is None
            or buf.dtype != Xp.dtype
            or buf.shape[1] != shape[1]
            or buf.shape[0] < shape[0]
        ):
            buf = buffers[name] = np.empty(shape, dtype=Xp.dtype)
        return buf[: shape[0]]

    def release(self):
        """Drop the work arrays (after a fit, before pickling)."""
        self.__dict__.pop("_buffers", None)

    def _chunks(self, n_samples, n_particles, itemsize):
        """Row slices so that an (n_rows, n_particles) block and its
        sensitivity fit in scikit-learn's ``working_memory``."""
        budget = get_config()["working_memory"] * 2**20  # MiB to bytes
        rows = max(1, min(n_samples, int(budget // (2 * n_particles * itemsize))))
        return _row_slices(n_samples, rows)

    def forward(self, Xp, Y, s, particles):
        """``J`` and the state ``backward`` needs (one forward pass).

        Splitting the two lets a line search reject a step after the forward
        pass alone. The pass runs over row blocks of about ``_BLOCK_BYTES``
        of ``Phi`` (``_block_rows``): each block's product, activation and
        readout run while the block is in cache, and ``backward`` revisits
        the blocks in the same way. When the whole (n_samples, n_particles)
        matrix ``Phi`` does not fit in ``working_memory``
        (``sklearn.set_config``), the pass runs over chunks of samples and
        keeps only the loss gradient ``G`` (n_samples, n_outputs);
        ``backward`` then recomputes ``Phi`` chunk by chunk, so memory stays
        bounded whatever ``n_samples``.
        """
        n_samples, m = Xp.shape[0], particles.n_particles
        itemsize = Xp.dtype.itemsize
        chunks = self._chunks(n_samples, m, itemsize)
        W = particles.weights
        if len(chunks) == 1:
            Phi = self._buffer("phi", Xp, particles)
            F = np.empty((n_samples, W.shape[1]), dtype=np.result_type(Xp.dtype, W))
            blocks = []
            for rows in _row_slices(n_samples, _block_rows(m, itemsize)):
                Phi_b, cache_b = self.unit.forward(
                    Xp[rows], particles.positions, out=Phi[rows]
                )
                np.matmul(Phi_b, W, out=F[rows])
                blocks.append((rows, Phi_b, cache_b))
            F *= 1.0 / m
            if particles.intercept is not None:
                F += particles.intercept
            value, G = self.loss.value_and_gradient(Y, F, s)
        else:
            blocks = None
            G = np.empty((n_samples, W.shape[1]), Xp.dtype)
            value = 0.0
            for rows in chunks:
                Phi_c, _ = self._forward_chunk(Xp[rows], particles)
                F = self._readout(Phi_c, particles)
                del Phi_c
                v, G[rows] = self.loss.value_and_gradient(Y[rows], F, s[rows])
                value += v
        if self.penalty is not None:
            value += self.penalty.value(particles)
        return value, (Xp, particles, blocks, G)

    def _accumulate(self, state, W):
        """``gW = Phi.T G`` and ``gTheta = unit.backward(Xp, G W.T)``, block by
        block over the forward pass's blocks, or over chunks of samples
        (recomputing ``Phi``) when ``forward`` did not keep it."""
        Xp, particles, blocks, G = state
        gW = np.zeros_like(particles.weights)
        gTheta = np.zeros_like(particles.positions)
        if blocks is None:
            blocks = (
                (rows, *self._forward_chunk(Xp[rows], particles))
                for rows in self._chunks(
                    Xp.shape[0], particles.n_particles, Xp.dtype.itemsize
                )
            )
        for rows, Phi_b, cache_b in blocks:
            gW += Phi_b.T @ G[rows]
            gTheta += self._position_gradient(Xp[rows], particles, cache_b, G[rows], W)
        return gW, gTheta

    def _forward_chunk(self, Xc, particles):
        return self.unit.forward(
            Xc, particles.positions, out=self._buffer("phi", Xc, particles)
        )

    def _position_gradient(self, Xp, particles, cache, G, W):
        """``unit.backward`` with the sensitivity ``C = G W.T``; for one
        output, the unit's ``backward_rank1`` avoids forming the n x m C."""
        if G.shape[1] == 1 and hasattr(self.unit, "backward_rank1"):
            return self.unit.backward_rank1(
                Xp, particles.positions, cache, G[:, 0], W[:, 0]
            )
        C = np.matmul(G, W.T, out=self._buffer("sensitivity", Xp, particles))
        return self.unit.backward(Xp, particles.positions, cache, C)

    def backward(self, state):
        """Mean-field gradients ``(gW, gTheta, gb)`` from a ``forward`` state.

        ``gW = Phi.T G``, ``C = G W.T``, ``gTheta = unit.backward(C)`` (which
        multiplies ``C`` by ``dPhi`` and contracts with the inputs),
        ``gb = sum_j G_j`` (``None`` without intercept); ``G`` is the loss
        gradient with respect to ``F``.
        """
        particles, G = state[1], state[3]
        gW, gTheta = self._accumulate(state, particles.weights)
        gb = None if particles.intercept is None else G.sum(axis=0)
        if self.penalty is not None:
            self.penalty.add_gradient(particles, gW, gTheta)
        return gW, gTheta, gb

    def first_variation(self, state):
        """Gradients of the first variation per unit mass, for conic flows.

        Returns ``(gW, gV, gb)``: ``gW`` as in :meth:`backward` (the first
        variation ``J'(mu)`` at each particle, one value per output), and
        ``gV[i]`` the position gradient of ``J'(mu)`` with the weight ``w_i``
        replaced by its direction ``w_i / |w_i|`` (for one output,
        ``sign(w_i) grad V(theta_i)``), plus the penalty's position gradient:
        the velocity of a particle of unit mass in the Wasserstein-Fisher-Rao
        geometry.
        """
        particles, G = state[1], state[3]
        W = particles.weights
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        directions = W / np.where(norms > 0, norms, 1)
        gW, gV = self._accumulate(state, directions)
        gb = None if particles.intercept is None else G.sum(axis=0)
        if self.penalty is not None:
            # the weights' penalty gradient as in backward; on positions, the
            # gradient of the penalty per unit mass
            self.penalty.add_gradient(particles, gW, gV)
        return gW, gV, gb

    def value_and_gradient(self, Xp, Y, s, particles):
        """``J`` and its mean-field gradients ``(gW, gTheta, gb)``."""
        value, state = self.forward(Xp, Y, s, particles)
        return value, self.backward(state)
