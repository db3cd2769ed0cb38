"""Test-session settings.

The suite runs one BLAS thread: its products are small, and on a shared
2-core machine two OpenBLAS threads spin-wait on each other (measured: the
whole suite took 585 s with the library default and 406 s with one thread).
The examples, run in subprocesses, get ``OPENBLAS_NUM_THREADS=1`` in
tests/test_examples.py.
"""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
