"""Delimited-text tables shared by the text readers: decoding, row splitting, numbers, regular time grids.

Every error is a `FileFormatError` that names the file, the line and the column, says what was found and how to
fix it. The readers pass the format-specific part of the fix (``fix=``); the rest of the wording is common, so one
problem reads the same in every format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from fusionlab.exceptions import FileFormatError, UnitError
from fusionlab.units import to_si

__all__ = [
    "GRID_REL_TOL",
    "TimeGrid",
    "check_increasing_time",
    "collect_rows",
    "column_decimals",
    "delimiter_name",
    "drop_trailing_delimiters",
    "fit_time_column",
    "read_text_lines",
    "regular_grid",
    "split_cells",
    "time_unit_factor",
    "to_float_array",
]

GRID_REL_TOL = 1e-6
"""Regular-grid tolerance relative to the sample period (see `regular_grid`)."""
_NUL_SCAN_BYTES = 65536
_DELIMITER_NAMES = {"\t": "tabs", ",": "commas", ";": "semicolons", " ": "single spaces", None: "white space"}


# ================================================================================================ text
def read_text_lines(p: Path, *, binary_hint: str, fallback_encoding: str = "cp1252") -> list[str]:
    """Return the lines of a text export; binary, undecodable-as-text or blank files raise `FileFormatError`.

    Parameters
    ----------
    p
        The file.
    binary_hint
        How to fix a binary file, for the error raised when the file holds NUL bytes (``"export it to text in
        MT Manager (File > Export)"``).
    fallback_encoding
        Used, with undecodable bytes replaced, when the file is not UTF-8 (``"cp1252"``: the exporting software
        runs on Windows; ``"utf-8-sig"``: keep UTF-8 and replace the bad bytes).

    Returns
    -------
    list of str
        The lines without their line ends (a UTF-8 byte-order mark is removed).

    Raises
    ------
    FileFormatError
        NUL bytes in the first 64 KiB (a binary file), or only blank lines.
    """
    raw = p.read_bytes()
    if b"\x00" in raw[:_NUL_SCAN_BYTES]:
        raise FileFormatError(p, f"the file contains NUL bytes, so it is binary, not a text export; {binary_hint}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode(fallback_encoding, errors="replace")
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise FileFormatError(p, "the file holds only blank lines; re-export the data")
    return lines


def delimiter_name(delimiter: str | None) -> str:
    """Plural name of a delimiter for messages (``"\\t"`` -> ``"tabs"``, None -> ``"white space"``)."""
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def split_cells(line: str, delimiter: str | None, *, quotes: bool = False,
                drop_trailing_empty: bool = False) -> list[str]:
    """Split one row into cells stripped of white space.

    Parameters
    ----------
    line
        The row.
    delimiter
        The field separator; None splits on runs of white space.
    quotes
        Remove double quotes around cells (spreadsheet CSV).
    drop_trailing_empty
        Drop every empty cell at the end of the row (trailing delimiters), before quotes are removed.

    Returns
    -------
    list of str
        The cells.
    """
    cells = [c.strip() for c in line.split(delimiter)]
    if drop_trailing_empty:
        while cells and cells[-1] == "":
            cells.pop()
    if quotes:
        cells = [c.strip('"').strip() for c in cells]
    return cells


def drop_trailing_delimiters(cells: list[str], n_cols: int) -> list[str]:
    """Cut ``cells`` to ``n_cols`` when every cell past ``n_cols`` is empty (trailing delimiters); in place."""
    if len(cells) > n_cols and not any(cells[n_cols:]):
        del cells[n_cols:]
    return cells


def collect_rows(p: Path, lines: Sequence[str], start: int, n_cols: int, delimiter: str | None, header_line: int, *,
                 comment_prefixes: tuple[str, ...] = (), quotes: bool = False, keep_empty_rows: bool = False,
                 trailing_delimiters: bool = True, header_name: str = "column-name row",
                 fix: str = "Re-export it, or delete the incomplete row") -> tuple[list[list[str]], list[int]]:
    """Split the data rows of ``lines[start:]``; a row whose cell count differs from the header raises.

    Parameters
    ----------
    p
        The file (for messages).
    lines
        Every line of the file.
    start
        0-based index of the first data line.
    n_cols
        Number of columns the header names.
    delimiter
        The field separator; None splits on runs of white space. With ``" "`` (one space per field) a leading
        space before the first field is ignored.
    header_line
        0-based index of the header row the columns are counted in (for messages).
    comment_prefixes
        Lines starting with one of these (after white space) are skipped.
    quotes
        Remove double quotes around cells.
    keep_empty_rows
        A line holding only delimiters and white space is a row of empty cells (a missing sample) rather than a
        blank line; blank lines are always skipped.
    trailing_delimiters
        Accept empty cells past the last column (trailing delimiters, as OpenSim writes) and drop them.
    header_name
        What the header row is called in messages.
    fix
        How to correct a row of the wrong length (the end of the message).

    Returns
    -------
    rows, line_numbers
        The cells of each data row and its 1-based line number.

    Raises
    ------
    FileFormatError
        A row with more or fewer cells than ``n_cols``; no data row at all.
    """
    rows: list[list[str]] = []
    numbers: list[int] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if not line.strip() and not (keep_empty_rows and delimiter is not None and delimiter in line):
            continue
        if comment_prefixes and line.lstrip().startswith(comment_prefixes):
            continue
        cells = split_cells(line, delimiter, quotes=quotes)
        if delimiter == " " and cells and cells[0] == "" and len(cells) > n_cols:
            del cells[0]  # a leading space
        if trailing_delimiters:
            drop_trailing_delimiters(cells, n_cols)
        if len(cells) != n_cols:
            raise FileFormatError(p, f"line {i + 1} has {len(cells)} values but the {header_name} (line "
                                     f"{header_line + 1}) names {n_cols} columns, separated by "
                                     f"{delimiter_name(delimiter)}; the file is truncated or was edited by hand. {fix}")
        rows.append(cells)
        numbers.append(i + 1)
    if not rows:
        raise FileFormatError(p, f"no data rows after the {header_name} (line {header_line + 1}); the export is "
                                 "empty or was cut after its header. Re-export the data")
    return rows, numbers


def to_float_array(p: Path, rows: list[list[str]], line_numbers: Sequence[int], names: Sequence[str], *,
                   allow_empty: bool, fix: str = "") -> tuple[NDArray[np.float64], int]:
    """Convert rows of cells to a float array; a non-numeric or infinite cell raises with its location.

    Parameters
    ----------
    p
        The file (for messages).
    rows
        Cells of each row, all rows as long as ``names``. With ``allow_empty`` the empty cells are replaced by
        ``"nan"`` in place.
    line_numbers
        1-based line number of each row.
    names
        Column names (for messages).
    allow_empty
        Read empty cells as NaN (missing samples); otherwise an empty cell raises.
    fix
        How to correct a bad value (the end of the message).

    Returns
    -------
    values, n_empty
        ``(n_rows, n_cols)`` float64 (NaN allowed) and the number of empty cells read as NaN (0 unless
        ``allow_empty``).

    Raises
    ------
    FileFormatError
        A cell that is not a number, or an infinite value.
    """
    n_empty = 0
    if allow_empty:
        for row in rows:
            for j, cell in enumerate(row):
                if cell == "":
                    row[j] = "nan"
                    n_empty += 1
    tail = f" {fix}" if fix else ""
    try:
        arr = np.array(rows, dtype=np.float64) if rows else np.empty((0, len(names)))
    except ValueError:
        for row, ln in zip(rows, line_numbers, strict=True):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    shown = cell if cell else "(empty)"
                    raise FileFormatError(p, f"line {ln}: every data value must be a number; found {shown!r} in "
                                             f"column {names[j]!r}.{tail}") from None
        raise  # pragma: no cover - np.array and float() disagree
    if np.isinf(arr).any():
        i, j = np.argwhere(np.isinf(arr))[0]
        gap = "an empty cell or NaN" if allow_empty else "NaN"
        raise FileFormatError(p, f"line {line_numbers[i]}: value {rows[i][j]!r} in column {names[j]!r} is infinite; "
                                 f"values must be finite numbers ({gap} for a missing sample).{tail}")
    return arr, n_empty


# ================================================================================================ time columns
def column_decimals(cells: Sequence[str]) -> int | None:
    """Largest number of decimals written in ``cells``; None when a value uses exponent notation."""
    most = 0
    for c in cells:
        if "e" in c or "E" in c:
            return None
        if "." in c:
            most = max(most, len(c) - c.index(".") - 1)
    return most


def regular_grid(t: NDArray[np.float64], *, declared_hz: float | None = None, quantum_s: float | None = None,
                 anchor: Literal["first", "centre"] = "first") -> tuple[float | None, float, float]:
    """Decide whether times lie on a regular grid ``start + i / rate``.

    Parameters
    ----------
    t
        ``(n,)`` strictly increasing times, s.
    declared_hz
        A rate stated by the file or the caller; when given only this rate is tried.
    quantum_s
        Resolution the times were written with (``10**-decimals`` s), or None when unknown.
    anchor
        ``"first"``: the grid passes through the first time whenever that fits, and is centred on the times
        otherwise. ``"centre"``: the grid always starts where the largest residual is smallest (the first time
        when the two differ by float rounding only).

    Returns
    -------
    rate_hz, start_s, max_residual_s
        ``rate_hz`` is None when no rate fits. The grid is ``start_s + i / rate_hz``; ``max_residual_s`` is the
        largest distance of a time from the grid, for the rate returned (or the best candidate).

    Notes
    -----
    A rate fits when every time lies within ``max(1e-6 / rate, quantum_s / 2)`` (plus float rounding) of the grid:
    exact to 1e-6 of a period (`GRID_REL_TOL`), or exact up to the rounding of the times as written. Candidates
    are the rate estimated from the first and last times, rounded to 0, 1, 2 and 3 decimals, then unrounded.
    """
    n = t.size
    if n < 2:
        return declared_hz, float(t[0]) if n else 0.0, 0.0
    est = (n - 1) / float(t[-1] - t[0])
    candidates = [declared_hz] if declared_hz else list(dict.fromkeys([*(round(est, d) for d in range(4)), est]))
    idx = np.arange(n, dtype=np.float64)
    tiny = 64 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(t))))
    best = math.inf
    for rate in candidates:
        if rate is None or not rate > 0:
            continue
        period = 1.0 / rate
        tol = GRID_REL_TOL * period
        if quantum_s is not None and quantum_s < period:
            tol = max(tol, quantum_s / 2.0)
        tol += tiny
        resid = t - (t[0] + idx * period)
        if anchor == "first":
            worst = float(np.max(np.abs(resid)))
            if worst <= tol:
                return float(rate), float(t[0]), worst
        shift = 0.5 * (float(resid.max()) + float(resid.min()))  # grid start that minimises the largest residual
        worst_shifted = float(np.max(np.abs(resid - shift)))
        if worst_shifted <= tol:
            return float(rate), float(t[0]) if abs(shift) <= tiny else float(t[0] + shift), worst_shifted
        best = min(best, worst_shifted)
    return None, float(t[0]), best


def time_unit_factor(p: Path, unit: str, column: str) -> float:
    """Factor turning the time column's ``unit`` into s; a unit that is not a time raises `FileFormatError`."""
    try:
        conv = to_si(unit)
    except UnitError:
        conv = None
    if conv is None or conv.si_unit != "s":
        raise FileFormatError(p, f"the time column {column!r} has unit {unit!r}, which is not a time unit; use s, ms "
                                 "or us")
    return conv.factor


def check_increasing_time(p: Path, t: NDArray[np.float64], line_numbers: Sequence[int], name: str) -> None:
    """Raise `FileFormatError` at the first empty (NaN) time or the first time that does not increase."""
    if np.isnan(t).any():
        i = int(np.flatnonzero(np.isnan(t))[0])
        raise FileFormatError(p, f"line {line_numbers[i]}: the time column {name!r} is empty or NaN; every row needs "
                                 "a time. Re-export the data or delete the row")
    steps = np.diff(t)
    if steps.size and not np.all(steps > 0):
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise FileFormatError(p, f"time must increase from row to row; line {line_numbers[i]} has time "
                                 f"{t[i]:.6g} s after {t[i - 1]:.6g} s ({int(np.sum(steps <= 0))} such rows). Remove "
                                 "duplicated or reordered rows")


@dataclass(frozen=True)
class TimeGrid:
    """Result of `fit_time_column`.

    Attributes
    ----------
    rate_hz
        The rate of the regular grid the times lie on, None when they are irregular.
    start_s
        Time of the first sample on that grid (the first time when irregular), s.
    max_residual_s
        Largest distance of a time from the grid (or from the best candidate grid when irregular), s.
    decimals
        Decimals the time cells were written with, None for exponent notation.
    quantum_s
        Resolution of the written times, s (None with exponent notation).
    """

    rate_hz: float | None
    start_s: float
    max_residual_s: float
    decimals: int | None
    quantum_s: float | None


def fit_time_column(p: Path, t: NDArray[np.float64], cells: Sequence[str], line_numbers: Sequence[int], name: str, *,
                    declared_hz: float | None, declared_what: str, unit_factor: float = 1.0,
                    anchor: Literal["first", "centre"] = "first") -> TimeGrid:
    """Check a time column and find the regular grid it lies on, allowing for the rounding of the written times.

    Parameters
    ----------
    p
        The file (for messages).
    t
        ``(n,)`` times, s.
    cells
        The time cells as written (their decimals give the rounding), in a unit that is ``unit_factor`` s.
    line_numbers
        1-based line number of each time.
    name
        Name of the time column (for messages).
    declared_hz
        A rate stated by the file or the caller; when given, the times must lie on that grid.
    declared_what
        Where ``declared_hz`` comes from, for messages (``"the header line 'Rate (Hz)'"``).
    unit_factor
        Seconds per unit of ``cells``.
    anchor
        Where the grid starts, see `regular_grid`.

    Returns
    -------
    TimeGrid
        Rate (None when irregular), start, largest residual and the resolution of the written times.

    Raises
    ------
    FileFormatError
        Empty or non-increasing times; times that do not fit ``declared_hz``.
    """
    check_increasing_time(p, t, line_numbers, name)
    decimals = column_decimals(cells)
    quantum = None if decimals is None else unit_factor * 10.0 ** -decimals
    rate, start, resid = regular_grid(t, declared_hz=declared_hz, quantum_s=quantum, anchor=anchor)
    if rate is None and declared_hz is not None:
        est = (t.size - 1) / float(t[-1] - t[0]) if t.size > 1 else math.nan
        raise FileFormatError(p, f"{declared_what} gives {declared_hz:g} Hz but the time column {name!r} does not fit "
                                 f"that rate (about {est:.6g} Hz, up to {resid:.3g} s off the {declared_hz:g} Hz "
                                 "grid). Correct the stated rate, or remove it so the time column is used")
    return TimeGrid(rate_hz=rate, start_s=start, max_residual_s=resid, decimals=decimals, quantum_s=quantum)
