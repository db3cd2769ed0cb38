"""Every example script runs (Agg backend, quick sizes) and saves its figures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
#: examples that need SparseSpikeDeconvolver
SPIKES = {"plot_spikes_1d.py", "plot_spikes_2d.py"}


def _has_spikes():
    try:
        from sklearn_meanfield import SparseSpikeDeconvolver  # noqa: F401
    except ImportError:
        return False
    return True


def test_examples_found():
    names = {path.name for path in EXAMPLES}
    assert {
        "plot_teacher_student.py",
        "plot_spikes_1d.py",
        "plot_spikes_2d.py",
        "plot_model_selection.py",
        "plot_flows.py",
        "plot_regularization_path.py",
    } <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_and_saves_figures(script, tmp_path):
    if script.name in SPIKES and not _has_spikes():
        pytest.skip("SparseSpikeDeconvolver is not importable")
    env = dict(os.environ)
    env.update(
        MPLBACKEND="Agg",
        SKLEARN_MEANFIELD_EXAMPLES_OUT=str(tmp_path),
        SKLEARN_MEANFIELD_EXAMPLES_QUICK="1",
        # small matrices: threaded BLAS only adds contention on a busy machine
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = sorted(tmp_path.glob(f"{script.stem}*.png"))
    assert figures, f"{script.name} saved no PNG in {tmp_path}"
    for figure in figures:
        assert figure.stat().st_size > 1000, figure
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
