"""``.. benchmark-results:: path``: a Markdown file of benchmark results as
reStructuredText, at build time.

``benchmarks/run.py`` writes ``benchmarks/RESULTS.md`` (headings, bullet
lists, pipe tables, inline code). The directive converts that file when the
docs are built, so the performance page always shows the latest run and is
never copied by hand. :func:`markdown_to_rst` needs no Sphinx (it is tested
on its own); the directive is registered by :func:`setup`.
"""

import re
from pathlib import Path

_CODE = re.compile(r"`([^`]+)`")
_SPECIAL = re.compile(r"([\\*_|`\[\]<>])")
_ENUM_START = re.compile(r"^(\d+)\.(\s)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*]\s+(.*)$")
_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")

#: underline characters of the sections below the page title ("=")
_UNDERLINES = {1: "-", 2: "-", 3: "~", 4: "^", 5: '"', 6: "'"}


def _escape(text):
    return _SPECIAL.sub(r"\\\1", text)


def inline(text):
    """Markdown inline text to reStructuredText: code spans become literals,
    every other character that reStructuredText would read as markup is
    escaped (``*``, ``_``, ``|``, backquotes, ...)."""
    out, pos = [], 0
    for match in _CODE.finditer(text):
        before = _escape(text[pos : match.start()])
        code = match.group(1).strip()
        # a literal must start and end at a word boundary: "\ " is an empty
        # separator
        if before and before[-1].isalnum():
            before += "\\ "
        out.append(before)
        out.append(f"``{code}``")
        pos = match.end()
        if pos < len(text) and text[pos].isalnum():
            out.append("\\ ")
    out.append(_escape(text[pos:]))
    result = "".join(out).strip()
    # "1. step ..." would start an enumerated list, "- x" a bullet list
    result = _ENUM_START.sub(r"\1\\.\2", result)
    if result[:1] in {"-", "+", "#"}:
        result = "\\" + result
    return result


def _cells(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]


def _table(rows):
    header, body = rows[0], rows[1:]
    width = len(header)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *body]:
        row = (row + [""] * width)[:width]
        for k, cell in enumerate(row):
            text = inline(cell) or "\\ "
            out.append(("   * - " if k == 0 else "     - ") + text)
    out.append("")
    return out


def markdown_to_rst(text, *, skip_title=True):
    """The reStructuredText of a Markdown document of headings, paragraphs,
    (nested) bullet lists and pipe tables, as ``benchmarks/run.py`` writes.

    With ``skip_title``, the first level-1 heading is dropped (the page that
    includes the document has its own title).
    """
    lines = text.splitlines()
    out = []
    i = 0
    title_skipped = not skip_title
    previous_level = None
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            if previous_level is not None:
                out.append("")
                previous_level = None
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level, title = len(heading.group(1)), inline(heading.group(2))
            previous_level = None
            i += 1
            if level == 1 and not title_skipped:
                title_skipped = True
                continue
            out.extend(["", title, _UNDERLINES[level] * len(title), ""])
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines):
            if _SEPARATOR.match(lines[i + 1].strip()):
                rows = [_cells(line)]
                i += 2
                while i < len(lines) and lines[i].lstrip().startswith("|"):
                    rows.append(_cells(lines[i]))
                    i += 1
                out.extend(["", *_table(rows)])
                previous_level = None
                continue
        bullet = _BULLET.match(line)
        if bullet:
            level = len(bullet.group(1).expandtabs()) // 2
            if previous_level is None or level != previous_level:
                out.append("")
            out.append("  " * level + "- " + inline(bullet.group(2)))
            previous_level = level
            i += 1
            continue
        # a paragraph line, or the continuation of a bullet
        indent = "  " * (previous_level + 1) if previous_level is not None else ""
        if previous_level is None and out and out[-1] != "":
            out.append("")
        out.append(indent + inline(line.strip()))
        if previous_level is None:
            # paragraph lines run on until a blank line
            i += 1
            while (
                i < len(lines)
                and lines[i].strip()
                and not (
                    _HEADING.match(lines[i])
                    or _BULLET.match(lines[i])
                    or lines[i].lstrip().startswith("|")
                )
            ):
                out.append(inline(lines[i].strip()))
                i += 1
            out.append("")
            continue
        i += 1
    return "\n".join(out).strip("\n") + "\n"


def setup(app):
    from docutils.parsers.rst import Directive, directives

    class BenchmarkResults(Directive):
        """Insert a Markdown file (path relative to the source directory)."""

        required_arguments = 1
        has_content = False

        def run(self):
            env = self.state.document.settings.env
            rel, path = env.relfn2path(directives.path(self.arguments[0]))
            env.note_dependency(rel)
            rst = markdown_to_rst(Path(path).read_text(encoding="utf-8"))
            self.state_machine.insert_input(rst.splitlines(), str(path))
            return []

    app.add_directive("benchmark-results", BenchmarkResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
