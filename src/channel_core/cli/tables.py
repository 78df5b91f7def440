"""Tables that fit the terminal: columns dropped by priority, never squeezed into unreadable slivers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "fitted_table"]

WRAP_MIN = 12  # a wrapping column never gets narrower than this


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: ``keep`` ranks it (higher stays longer); ``wrap`` lets long values fold."""

    header: str
    keep: int = 0
    wrap: bool = False


def fitted_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> Table:
    """A table of ``rows`` no wider than ``width``: the lowest-``keep`` columns go first, wrapping ones fold.

    Cells are plain text (markup is not interpreted). The title says which columns were left out.
    """
    natural = [max([len(c.header), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))

    def needed(indexes: list[int]) -> int:
        cells = sum(min(natural[i], WRAP_MIN) if columns[i].wrap else natural[i] for i in indexes)
        return cells + 3 * len(indexes) + 1  # a border and a space either side of each cell

    while len(shown) > 1 and needed(shown) > width:
        shown.remove(min(shown, key=lambda i: (columns[i].keep, -i)))
    dropped = [columns[i].header for i in range(len(columns)) if i not in shown]
    caption = f"{title} (not shown at this width: {', '.join(dropped)})" if dropped else title
    full = sum(natural[i] for i in shown) + 3 * len(shown) + 1
    table = Table(title=caption, title_justify="left", box=box.SQUARE, width=min(width, full))
    for i in shown:
        column = columns[i]
        table.add_column(
            column.header,
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            min_width=None if column.wrap else natural[i],
        )
    for row in rows:
        table.add_row(*(Text(row[i]) for i in shown))
    return table
