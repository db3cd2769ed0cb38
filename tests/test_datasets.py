import numpy as np
import pytest

from sklearn_meanfield.datasets import make_teacher_student


def test_teacher_student_shapes_and_teacher():
    X, y, a, theta = make_teacher_student(
        500, 6, n_teacher=4, bias=True, return_teacher=True, random_state=0
    )
    assert X.shape == (500, 6) and y.shape == (500,)
    assert a.tolist() == [1.0, -1.0, 1.0, -1.0]
    assert theta.shape == (4, 7)
    np.testing.assert_allclose(np.linalg.norm(theta[:, :-1], axis=1), 1.0)
    assert np.all(np.abs(theta[:, -1]) <= 1) and np.any(theta[:, -1] != 0)
    Xa = np.column_stack([X, np.ones(500)])
    np.testing.assert_allclose(y, np.maximum(Xa @ theta.T, 0) @ a)


def test_teacher_student_noise_and_seed():
    X, y0 = make_teacher_student(2000, 3, random_state=1)
    X2, y1 = make_teacher_student(2000, 3, noise=0.5, random_state=1)
    np.testing.assert_array_equal(X, X2)
    assert abs(np.std(y1 - y0) - 0.5) < 0.05


def test_teacher_student_bad_parameters():
    with pytest.raises(ValueError, match="n_teacher"):
        make_teacher_student(10, 3, n_teacher=0)
    with pytest.raises(ValueError, match="activation"):
        make_teacher_student(10, 3, activation="gelu")
