"""HTML tables of the report, shared by its sections (``report``, ``significance``)."""

from __future__ import annotations

import html

from exman.formatting import text


def _is_text(value) -> bool:
    return isinstance(value, str) or value is None


def table_html(df, columns, row_class=None, status_column="status", missing="–") -> str:
    """An HTML table of ``df[columns]`` that scrolls sideways inside the page; every cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    shown = df[columns]
    shown.attrs = {}  # else pandas deep-copies them into every column itertuples takes
    for i, row in enumerate(shown.itertuples(index=False, name=None)):
        cells = []
        for col, value in zip(columns, row):
            cls = "s" if _is_text(value) else ""
            if col == status_column and isinstance(value, str):
                cls += f" status-{html.escape(value)}"
            shown = text(value, missing="")
            if not shown:
                cls, shown = cls + " na", missing
            cells.append(f'<td class="{cls.strip()}">{html.escape(shown)}</td>')
        extra = f' class="{row_class(i)}"' if row_class and row_class(i) else ""
        body.append(f"<tr{extra}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
