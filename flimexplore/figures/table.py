"""A small formatted table as a Plotly figure (notebooks show tables, not dicts with float noise)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = ["table_figure"]


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table_figure(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    columns: Sequence[str] | None = None,
    *,
    digits: int = 3,
    title: str = "",
    width: int | None = None,
) -> go.Figure:
    """Rows of values as a table, floats rounded to ``digits``.

    Parameters
    ----------
    rows : sequence of dict, or one dict
        One dict per row; a single dict becomes a two-column "name / value" table.
    columns : sequence of str, optional
        Columns to show, in order (default: the keys of the first row).
    digits : int
        Decimals of float cells.
    title : str
    width : int, optional
        Width in pixels; default: the page's width.

    Returns
    -------
    go.Figure
        One ``go.Table`` trace; header and cells in 13 px type.

    Examples
    --------
    >>> fig = table_figure({"n_models": 8, "val_dice_max": 0.812345})
    >>> [list(c) for c in fig.data[0].cells.values]
    [['n_models', 'val_dice_max'], ['8', '0.812']]
    """
    if isinstance(rows, Mapping):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    rows = list(rows)
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    cells = [[_cell(r.get(c), digits) for r in rows] for c in cols]
    fig = go.Figure(go.Table(
        header=dict(values=[f"<b>{c}</b>" for c in cols], fill_color="#e8e8e8", align="left", font=dict(size=13)),
        cells=dict(values=cells, align="left", font=dict(size=13), height=24),
    ))
    fig.update_layout(title=dict(text=title), width=width, height=90 + 26 * len(rows) + (30 if title else 0),
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig
