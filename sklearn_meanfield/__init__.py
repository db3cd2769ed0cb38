"""Scikit-learn estimators that learn a measure with particles.

A model is a cloud of particles (a weight and a position each) trained by
gradient descent on all of them with the mean-field scaling (Chizat & Bach,
NeurIPS 2018).
"""

from ._base import TrainingRecord
from ._classifier import MeanFieldClassifier
from ._cv import MeanFieldClassifierCV, MeanFieldRegressorCV, SparseSpikeDeconvolverCV
from ._flow import DivergenceError
from ._kernels import DirichletKernel, GaussianKernel, IntegratedGaussianKernel
from ._operators import Box, ForwardOperator, FourierOperator, Torus
from ._path import alpha_grid, regularization_path
from ._regressor import MeanFieldRegressor
from ._spikes import SparseSpikeDeconvolver

__all__ = [
    "Box",
    "DirichletKernel",
    "DivergenceError",
    "ForwardOperator",
    "FourierOperator",
    "GaussianKernel",
    "IntegratedGaussianKernel",
    "MeanFieldClassifier",
    "MeanFieldClassifierCV",
    "MeanFieldRegressor",
    "MeanFieldRegressorCV",
    "SparseSpikeDeconvolver",
    "SparseSpikeDeconvolverCV",
    "Torus",
    "TrainingRecord",
    "alpha_grid",
    "regularization_path",
]
__version__ = "0.1.0"
