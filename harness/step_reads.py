"""What a trial reads around each step: rows, column-owned sequences, foreign keys.

The data checks compare these before and after every step. Read one at a time they cost a dozen
round trips a step; here they go together (:meth:`RowReader.read` runs the others in its first
round trip), and what was read after one step serves as what is there before the next, until
the harness itself writes in between:

* a fill or a seed inserts rows (and draws from sequences, also for inserts refused);
* an isolation check draws from sequences (its inserts are rolled back, ``nextval`` is not);
* a migration step changes anything.

After the harness's own writes only the sequences' values are read again, not which column
owns each (at 400 revisions the owners' joins were the one read that grew with the history).

Only the trial's own connection and its runner's touch a scratch database, so nothing else can
change it between two reads.
"""

from __future__ import annotations

import dataclasses
from typing import Collection, Mapping

import psycopg

from .checkpoints import Resumable
from .invariants import data, sequences
from .invariants.row_reader import RowReader, read_pipelined


@dataclasses.dataclass(frozen=True)
class Reading:
    """The database at one moment, as the data checks see it."""

    rows: data.RowsSnapshot
    sequences: Mapping[sequences.ColumnName, sequences.Sequence]
    foreign_keys: tuple[data.ForeignKey, ...] | None
    """None when not asked for."""


class StepReads(Resumable):
    """The reads of one scratch database, reused while the harness has not written to it."""

    def __init__(self, conn: psycopg.Connection, exclude: Collection[data.TableName], *,
                 logged: bool = False) -> None:
        """``logged``: the database has the harness's change log (see :class:`RowReader`)."""
        self._conn = conn
        self._reader = RowReader(exclude, logged=logged)
        self._last: Reading | None = None
        """The last reading, while it is current."""
        self._rows: data.RowsSnapshot | None = None
        """The rows last read, while they are current."""
        self._owned: sequences.Owned | None = None
        """The column-owned sequences last read, while no migration step ran since: the
        harness's own writes move their values, never who owns them."""
        self._touched: set[data.TableName] = set()
        self._rows_only = False
        """Whether only the harness's inserts wrote since the last read of the rows."""
        self._exhausted = False
        """Whether a sequence's next value once lay past bigint's range: read as numeric since."""

    def now(self, *, foreign_keys: bool = False) -> Reading:
        """Rows and sequences now, with the foreign keys if asked for."""
        last = self._last
        if last is not None and (last.foreign_keys is not None or not foreign_keys):
            return last
        try:
            return self._read(foreign_keys)
        except psycopg.errors.NumericValueOutOfRange:
            if self._exhausted:
                raise
            self._exhausted = True  # nothing was kept of the failed read: it is read again
            return self._read(foreign_keys)

    def _read(self, foreign_keys: bool) -> Reading:
        owned = self._owned
        values = sequences.next_values(self._conn, exhausted=self._exhausted)
        reads = [values] if owned is not None else [sequences.OWNED, values]
        also = [*reads, *([data.FOREIGN_KEYS] if foreign_keys else ())]
        if self._rows is not None:
            found, rows = read_pipelined(self._conn, also), self._rows
        else:
            rows, found = self._reader.read(self._conn, touched=self._touched, also=also,
                                            rows_only=self._rows_only)
            self._touched, self._rows_only = set(), True
        now = sequences.settled(self._conn, found[len(reads) - 1])
        owned = owned.with_values(now) if owned is not None else sequences.Owned.of(found[0], now)
        if owned is None:  # a sequence came or went all the same (a trigger's DDL): read whole
            whole, now = read_pipelined(self._conn, [sequences.OWNED, values])
            owned = sequences.Owned.of(whole, sequences.settled(self._conn, now))
        self._rows, self._owned = rows, owned
        self._last = Reading(rows, owned.sequences, data.foreign_keys_of(found[len(reads)]) if foreign_keys else None)
        return self._last

    def inserted(self, tables: Collection[data.TableName] = ()) -> None:
        """The harness inserted rows (a fill, a seed), in ``tables`` where known: triggers may
        have written elsewhere, and refused inserts drawn from sequences, but no table changed."""
        self._last = self._rows = None
        self._touched.update(tables)

    def migrated(self) -> None:
        """A migration step ran: anything may have changed."""
        self._last = self._rows = self._owned = None
        self._rows_only = False

    def drew(self) -> None:
        """Sequences may have moved, rows did not (an isolation check, rolled back)."""
        self._last = None
