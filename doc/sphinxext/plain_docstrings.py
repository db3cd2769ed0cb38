"""Render the package's plain-text docstrings faithfully.

The docstrings write formulas as indented plain-text blocks
(``J = (1/2) sum_j s_j |y_j - f(x_j)|^2 ...``), as they read in ``help()``.
In reStructuredText such a block is a block quote, where ``|f|`` is a
substitution and ``a_i`` a link. Before numpydoc parses a docstring of this
package, :func:`literal_formulas` turns every indented block that follows a
blank line and a paragraph into a literal block (shown as written), and
:func:`literal_attribute_types` quotes the fitted-attribute names in types
(``ndarray of shape (n_features_in_,)``). The docstrings themselves stay
plain text.
"""

import re

_LIST_OR_DIRECTIVE = re.compile(r"^\s*([-*+] |\d+[.)] |\.\. |>>>)")
_FIELD = re.compile(r"^(\s*[\w*][\w*, ]*) : (.+)$")


def _indent(line):
    return len(line) - len(line.lstrip())


def _is_formula_block(lines, k):
    """Whether ``lines[k]`` starts an indented plain-text block (a formula)."""
    line = lines[k]
    if not line.strip() or lines[k - 1].strip() or _LIST_OR_DIRECTIVE.match(line):
        return False
    j = k - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or lines[j].rstrip().endswith("::"):
        return False
    start = j
    while start > 0 and lines[start - 1].strip():
        start -= 1
    first = lines[start]
    # the text of a list item is indented past its marker
    text_indent = _indent(first)
    marker = _LIST_OR_DIRECTIVE.match(first)
    if marker:
        if first.lstrip().startswith(".. "):
            return False  # a directive's content
        text_indent += len(marker.group(1))
    if start == j and _FIELD.match(first):
        return False  # "name : type", then its description
    return _indent(line) > max(text_indent, _indent(lines[j]))


def literal_formulas(lines):
    """Make every indented block after a blank line a literal block.

    A block counts when its first line is indented past the text of the
    paragraph before the blank line, that paragraph does not end with ``::``
    (nor is a directive), and the block is not a list, a directive or a
    doctest. A line ``::`` (a paragraph that reStructuredText drops) is
    inserted before the block. Modifies ``lines`` in place.
    """
    k = 1
    while k < len(lines):
        if _is_formula_block(lines, k):
            j = k - 1
            while not lines[j].strip():
                j -= 1
            lines[k:k] = [" " * _indent(lines[j]) + "::", ""]
            k += 2
        k += 1
    return lines


def literal_attribute_types(lines):
    """Quote names ending in ``_`` in the type of ``name : type`` lines."""
    for k, line in enumerate(lines):
        match = _FIELD.match(line)
        if match:
            kind = re.sub(
                r"(?<![`\w])([A-Za-z]\w*_)(?=[,)\s]|$)", r"``\1``", match.group(2)
            )
            lines[k] = f"{match.group(1)} : {kind}"
    return lines


def process_docstring(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or name
    if not str(module).startswith("sklearn_meanfield"):
        return
    literal_formulas(lines)
    literal_attribute_types(lines)


def setup(app):
    # before numpydoc (priority 500) turns the sections into fields
    app.connect("autodoc-process-docstring", process_docstring, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
