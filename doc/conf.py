"""Sphinx configuration of the sklearn_meanfield documentation.

Build from the repository root (warnings are errors)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

``SKLEARN_MEANFIELD_EXAMPLES_QUICK=1`` runs the gallery's examples at the
reduced sizes the test suite uses (CI); every example still gets its page and
its figures.
"""

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# document (and run the examples against) the working tree, installed or not
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "sphinxext"))

from api_page import api_rst  # noqa: E402

import sklearn_meanfield  # noqa: E402

# the examples draw their figures without a display
os.environ.setdefault("MPLBACKEND", "Agg")

project = "sklearn_meanfield"
author = "the sklearn_meanfield developers"
copyright = "2026, the sklearn_meanfield developers"
release = sklearn_meanfield.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "benchmark_results",
    "plain_docstrings",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/backreferences", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"
# keep quotes as typed: benchmark tables and formulas are quoted exactly
smartquotes = False
# "fit()" rather than "MeanFieldRegressor.fit()" in the page contents
toc_object_entries_show_parents = "hide"
nitpicky = True

# -- the API reference ------------------------------------------------------
# api.rst is written here, from the package's __all__ lists, at every build
(HERE / "api.rst").write_text(api_rst(), encoding="utf-8")

autosummary_generate = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# No intersphinx: the build must work without network. References to
# scikit-learn objects link to its API pages (one page per public object,
# see _sklearn_reference below); references to other libraries' objects
# (numpy, scipy, matplotlib, the Python standard library) stay plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|matplotlib|pandas|dask|dask_ml|joblib)(\..*)?"),
    (r"py:.*", r"(int|float|str|bool|object|dict|list|tuple|callable)"),
    # fitted attributes are documented in the Attributes lists, not as objects
    (r"py:attr", r".*\w_"),
]
SKLEARN_URL = "https://scikit-learn.org/stable/modules/generated/{}.html"


def _sklearn_reference(app, env, node, contnode):
    """Resolve ``sklearn.module.Object`` (and ``.method``) to scikit-learn's
    API page of the object."""
    from docutils import nodes

    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("sklearn."):
        return None
    parts = target.split(".")
    # the page is the first CamelCase or function name after the modules
    for k in range(1, len(parts)):
        if not re.fullmatch(r"[a-z_0-9]+", parts[k]) or k == len(parts) - 1:
            page = ".".join(parts[: k + 1])
            anchor = "" if k == len(parts) - 1 else "#" + target
            break
    reference = nodes.reference(
        "", "", internal=False, refuri=SKLEARN_URL.format(page) + anchor
    )
    reference += contnode
    return reference


def _plain_sklearn_refs(app, what, name, obj, options, lines):
    """Methods inherited from scikit-learn (``get_metadata_routing``,
    ``set_params``, ...) refer to labels of scikit-learn's user guide, which
    do not exist here: keep their text, drop the link."""
    module = getattr(obj, "__module__", "") or ""
    if not module.startswith("sklearn."):
        return
    for k, line in enumerate(lines):
        line = re.sub(r":(?:ref|term|doc):`([^`<]*?)\s*<[^`>]*>`", r"\1", line)
        lines[k] = re.sub(r":(?:ref|term|doc):`([^`]*)`", r"\1", line)


# -- the gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("sklearn_meanfield",),
    "backreferences_dir": "generated/backreferences",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    # no page of execution times (it loads scripts from third-party sites)
    "write_computation_times": False,
    "image_scrapers": ("matplotlib",),
    # a failing example fails the build (after every example has run)
    "only_warn_on_example_error": False,
}

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_meanfield {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "api": []}


def setup(app):
    app.connect("missing-reference", _sklearn_reference)
    app.connect("autodoc-process-docstring", _plain_sklearn_refs)
