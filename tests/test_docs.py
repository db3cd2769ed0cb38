"""The documentation's own code, without Sphinx: the benchmark tables of the
performance page, the API page and the docstring preprocessing.

The site itself is built and checked by ``.ci/run`` (``doc/check_build.py``).
"""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "doc" / "sphinxext"))

from api_page import api_rst, public_names  # noqa: E402
from benchmark_results import markdown_to_rst  # noqa: E402
from plain_docstrings import literal_attribute_types, literal_formulas  # noqa: E402

RESULTS = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")


def _md_tables(text):
    """Rows of cells of every pipe table of a Markdown text."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            if not re.fullmatch(r"[|\s:-]+", line.strip()):
                rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _rst_tables(rst):
    """Rows of cells of every list-table, unescaped."""
    tables = []
    for block in rst.split(".. list-table::")[1:]:
        rows = []
        for line in block.splitlines():
            if line.startswith("   * - "):
                rows.append([line[7:]])
            elif line.startswith("     - "):
                rows[-1].append(line[7:])
            elif line.strip() and not line.startswith("   :"):
                break
        tables.append(rows)
    return tables


def _unescape(cell):
    """The Markdown text of a converted cell."""
    cell = cell.replace("\\ ", "").replace("``", "`")
    return re.sub(r"\\(.)", r"\1", cell)


def test_benchmark_tables_are_converted_cell_for_cell():
    md, rst = _md_tables(RESULTS), _rst_tables(markdown_to_rst(RESULTS))
    assert len(md) >= 5
    assert len(rst) == len(md)
    for md_rows, rst_rows in zip(md, rst, strict=True):
        assert [[_unescape(c) for c in row] for row in rst_rows] == md_rows


def test_markdown_headings_lists_and_markup():
    md = (
        "# Title\n\n- Command: `run.py --x` (full)\n- BLAS:\n  - openblas_64 *one*\n\n"
        "## 1. Step (n=2)\n\nSome text with a|b and x_ and `a`s.\n\n"
        "| a | b |\n|---|---|\n| 1. first | `c` |\n"
    )
    rst = markdown_to_rst(md)
    assert "Title" not in rst  # the page has its own title
    assert "- Command: ``run.py --x`` (full)" in rst
    assert "- BLAS:\n\n  - openblas\\_64 \\*one\\*" in rst
    assert "\n1\\. Step (n=2)\n--------------\n" in rst
    assert "Some text with a\\|b and x\\_ and ``a``\\ s." in rst
    assert "   * - 1\\. first\n     - ``c``" in rst


def test_markdown_result_parses_without_warnings():
    docutils_core = pytest.importorskip("docutils.core")
    from io import StringIO

    messages = StringIO()
    docutils_core.publish_doctree(
        "Performance\n===========\n\n" + markdown_to_rst(RESULTS),
        settings_overrides={"warning_stream": messages, "report_level": 1},
    )
    assert messages.getvalue() == ""


def test_api_page_lists_every_public_name():
    names = public_names()
    assert {"sklearn_meanfield", "sklearn_meanfield.plotting"} <= set(names)
    assert "MeanFieldRegressor" in names["sklearn_meanfield"]
    rst = api_rst()
    for module, module_names in names.items():
        assert f".. automodule:: {module}\n" in rst
        section = rst.split(f".. automodule:: {module}\n")[1]
        section = section.split(".. automodule::")[0]
        listed = re.findall(r"^   (\w+)$", section, flags=re.M)
        assert sorted(listed) == sorted(module_names), module


def test_formula_blocks_become_literal_blocks():
    lines = [
        "Summary.",
        "",
        "The model is",
        "",
        "    f(x) = |w| a_i",
        "",
        "Parameters",
        "----------",
        "alpha : float",
        "    The weight of",
        "",
        "        G = |mu|",
        "",
        "    and more.",
        "- item:",
        "",
        "  - nested item",
        "",
        "Already::",
        "",
        "    literal",
    ]
    out = literal_formulas(list(lines))
    # a "::" paragraph before each formula block, nothing else changed
    assert out == [
        *lines[:4],
        "::",
        "",
        *lines[4:11],
        "    ::",
        "",
        *lines[11:],
    ]


def test_attribute_names_in_types_are_quoted():
    lines = [
        "positions_ : ndarray of shape (n_spikes_, n_dims)",
        "    Text with n_spikes_ unchanged.",
        "feature_names_in_ : ndarray of shape (n_features_in_,)",
    ]
    assert literal_attribute_types(lines) == [
        "positions_ : ndarray of shape (``n_spikes_``, n_dims)",
        "    Text with n_spikes_ unchanged.",
        "feature_names_in_ : ndarray of shape (``n_features_in_``,)",
    ]
