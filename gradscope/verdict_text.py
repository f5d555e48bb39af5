"""The one plain-text rendering of a verdict, and of a run's verdicts as a block.

Used by the headless summary on stderr, `gradscope view --text`, the lines the
UI leaves on the terminal when it closes, and `gradscope diff --text`. No
Textual, no TensorFlow.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from gradscope.report import Report, headline, plural
from gradscope.verdicts import Verdict

WIDTH = 80
_LABEL_WIDTH = 8  # "WARNING " is the widest severity label
INDENT = " " * (2 + _LABEL_WIDTH)
COLOURS = {"error": "\033[1;31m", "warning": "\033[33m", "info": "\033[36m"}
RESET = "\033[0m"


def wrap(text: str, first: str, rest: str, width: int = WIDTH) -> str:
    # No breaking inside words or at hyphens: check IDs and numbers stay whole.
    return textwrap.fill(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def format_verdict(verdict: Verdict, *, colour: bool = False, width: int = WIDTH) -> str:
    """`  ERROR   check (subject): message` wrapped at `width` columns, then its fix.

    The fix is kept line for line, never re-wrapped: it is often code, and must
    paste as it is.
    """
    label = verdict.severity.upper().ljust(_LABEL_WIDTH)
    text = wrap(f"{verdict.check} ({verdict.subject}): {verdict.message}", "  " + label, INDENT,
                width)
    if colour:
        # Coloured after wrapping: escape codes would count as columns.
        word = verdict.severity.upper()
        coloured = f"{COLOURS.get(verdict.severity, '')}{word}{RESET}"
        text = "  " + coloured + text[2 + len(word):]
    fix_lines = verdict.fix.splitlines()
    if not fix_lines:
        return text
    fix = [f"{INDENT}fix: {fix_lines[0]}"]
    fix.extend(f"{INDENT}     {line}" if line else "" for line in fix_lines[1:])
    return "\n".join([text, *fix])


def verdicts_block(report: Report, *, colour: bool = False, width: int = WIDTH) -> str:
    """The verdicts of a run: a count line, the most likely cause, then every
    verdict with its fix (the headless summary and `view --text`)."""
    ranked = report.ranked_verdicts()
    model = report.model
    target = f"{model.model_name} ({model.param_count:,} params)" if model else "the model"
    lines = [f"gradscope: {plural(len(ranked), 'verdict')} for {target}"]
    top = headline(ranked)
    if top is not None:
        lines.append(wrap(f"[{top.check}] {top.message}", "Most likely cause: ", "  ", width))
    else:
        lines.append(f"gradscope: {report.nothing_found()}.")
    lines.extend(format_verdict(v, colour=colour, width=width) for v in ranked)
    return "\n".join(lines)


def one_line(verdict: Verdict) -> str:
    """`severity check (subject): message`, on one line (lists, diffs)."""
    return f"{verdict.severity} {verdict.check} ({verdict.subject}): {verdict.message}"


def count_others(ranked: Sequence[Verdict]) -> str:
    """'2 other verdicts' after the headline."""
    return plural(max(0, len(ranked) - 1), "other verdict")


def exit_text(report: Report, files: Mapping[str, str] | None = None, *,
              width: int = WIDTH, colour: bool = False) -> str:
    """What stays on the terminal once the UI has closed: the most likely cause
    and its fix, how many other verdicts there are and where to read them, and
    the files written ({option: path}), as memray prints the command to run next."""
    files = dict(files or {})
    ranked = report.ranked_verdicts()
    lines: list[str] = []
    top = headline(ranked)
    if top is not None:
        lines.append(f"gradscope: most likely cause, of {plural(len(ranked), 'verdict')}:")
        lines.append(format_verdict(top, colour=colour, width=width))
        if len(ranked) > 1:
            shown = ", ".join(v.check for v in ranked[1:6]) + (", ..." if len(ranked) > 6 else "")
            lines.append(wrap(f"and {count_others(ranked)}: {shown}", "  ", "    ", width))
    elif report.model is not None:
        lines.append(f"gradscope: {report.nothing_found()}.")
        if ranked:
            lines.append(f"  {plural(len(ranked), 'note')}: " + ", ".join(v.check for v in ranked))
    elif report.finished is not None and report.finished.error:
        lines.append(f"gradscope: the script raised before fit(): {report.finished.error}")
    for flag, path in files.items():
        lines.append(f"  {flag} {path}")
    record = files.get("--record")
    if record is not None and ranked:
        lines.append(f"  every verdict, fix and figure again: gradscope view {record}")
    return "\n".join(lines)
