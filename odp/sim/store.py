"""The simulator's state store: a simulated host in an SQLite database, loaded piece by piece.

The command line keeps the simulated host between invocations (see
:mod:`odp.sim.state` for what is kept).  A JSON document rewritten whole
made every command cost as much as the flow table is large; this store keeps
each object in a row of its own, so that a command reads and writes only
what it touches:

* ``meta``: key/value pairs: the format and store version, the ``host``
  record (devices, neighbours, counters for new ifindexes and pids), and room
  for more (the kernel version a state emulates, ...);
* ``datapaths``: one record per datapath (vports, meters, counters);
* ``masks`` and ``flows``: one row per flow, indexed by datapath, mask and
  masked key (the flow table's own lookup) and by UFID, with the flow's
  record (the JSON of :func:`odp.sim.state.flow_to_json`);
* ``upcalls``: the queued upcalls of ``odp datapath listen``.

Records are JSON objects, so a new field is a new key, not a new schema.

A command opens the store in one transaction (``BEGIN IMMEDIATE`` when it
may write, so writers run one after the other and none loses another's
update; a plain read transaction otherwise, which needs no write access at
all).  The datapaths' flow tables (:class:`StoredFlowTable`) look flows up
in the database as the simulator asks for them, so ``packet inject`` reads
the few flows its packet meets and ``flow add`` the few with its key; at the
end the records of what changed are written back and the transaction
commits (or rolls back on an error: a failed command changes nothing).  A
process killed mid-command leaves SQLite's journal, which the next opener
rolls back.

The path must be a regular file (a symbolic link to one is followed, never
replaced); a missing file is created (atomically: a complete empty store is
linked into place) by a command that writes, and is an empty host for one
that only reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from odp.errors import OdpError
from odp.records import Upcall
from odp.sim.datapath import SimDatapath
from odp.sim.flow_table import FlowTable, SimFlow
from odp.sim.network import Host
from odp.sim.state import (
    FORMAT,
    MAX_QUEUED_UPCALLS,
    VERSION,
    QueuedUpcall,
    SimState,
    StateError,
    datapath_from_json,
    datapath_to_json,
    flow_from_json,
    flow_to_json,
    host_from_json,
    host_to_json,
    new_host,
    state_from_text,
    state_to_json,
    upcall_from_json,
    upcall_to_json,
)

__all__ = [
    "BUSY_TIMEOUT",
    "SQLITE_HEADER",
    "STORE_VERSION",
    "StoredFlowTable",
    "StoredState",
    "export_store",
    "is_store",
    "load_host",
    "load_state",
    "load_store",
    "open_state",
    "replace_store",
]

#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: The ``store_version`` meta value; a store of another version is refused.
STORE_VERSION = 1
#: Seconds a command waits for another one's write transaction to end.
BUSY_TIMEOUT = 120.0

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE datapaths (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE masks (seq INTEGER PRIMARY KEY AUTOINCREMENT, dp TEXT NOT NULL, mask TEXT NOT NULL, UNIQUE (dp, mask));
CREATE TABLE flows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dp TEXT NOT NULL,
    mask TEXT NOT NULL,
    masked_key TEXT NOT NULL,
    ufid TEXT,
    record TEXT NOT NULL
);
CREATE UNIQUE INDEX flows_by_key ON flows (dp, mask, masked_key);
CREATE INDEX flows_in_order ON flows (dp, mask, id);
CREATE INDEX flows_by_ufid ON flows (dp, ufid) WHERE ufid IS NOT NULL;
CREATE TABLE upcalls (id INTEGER PRIMARY KEY AUTOINCREMENT, dp TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX upcalls_by_dp ON upcalls (dp, id);
"""


def _hex(value: int) -> str:
    return format(value, "x")


def _dumps(record: object) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


# ---------------------------------------------------------------------------
# Flow tables backed by the database
# ---------------------------------------------------------------------------


class StoredFlowTable(FlowTable):
    """A datapath's flow table whose flows live in the store, read as lookups need them.

    It behaves as :class:`~odp.sim.flow_table.FlowTable` (same probe order:
    masks in the order they appeared, same statistics, same replace rule);
    changes to the set of flows go to the database at once (inside the
    command's transaction), changes to a loaded flow's statistics or actions
    when the command ends (:meth:`sync`).
    """

    def __init__(self, db: sqlite3.Connection, dp: str, now_mono: int, now_wall: float) -> None:
        super().__init__()
        self._db = db
        self._dp = dp
        self._now = (now_mono, now_wall)
        rows = db.execute("SELECT mask FROM masks WHERE dp = ? ORDER BY seq", (dp,))
        self._mask_list: list[int] = [int(m, 16) for (m,) in rows]
        #: (mask, masked key) -> the flow, or None when the database has none.
        self._known: dict[tuple[int, int], SimFlow | None] = {}
        #: Loaded flows -> (row id, the record as loaded), and row id -> flow.
        self._rows: dict[SimFlow, tuple[int, str]] = {}
        self._by_row: dict[int, SimFlow] = {}

    # reading -------------------------------------------------------------------
    def _load(self, row_id: int, record: str) -> SimFlow:
        flow = self._by_row.get(row_id)
        if flow is not None:
            return flow
        flow = flow_from_json(json.loads(record), *self._now)
        self._rows[flow] = (row_id, record)
        self._by_row[row_id] = flow
        self._known[(flow.sw.mask, flow.sw.masked_key)] = flow
        return flow

    def _get(self, mask: int, masked: int) -> SimFlow | None:
        k = (mask, masked)
        if k in self._known:
            return self._known[k]
        row = self._db.execute(
            "SELECT id, record FROM flows WHERE dp = ? AND mask = ? AND masked_key = ?",
            (self._dp, _hex(mask), _hex(masked)),
        ).fetchone()
        flow = None if row is None else self._load(row[0], row[1])
        self._known[k] = flow
        return flow

    def __len__(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM flows WHERE dp = ?", (self._dp,)).fetchone()
        return int(n)

    @property
    def mask_count(self) -> int:
        return len(self._mask_list)

    def iter_flows(self) -> Iterator[SimFlow]:
        for mask in list(self._mask_list):
            rows = self._db.execute(
                "SELECT id, record FROM flows WHERE dp = ? AND mask = ? ORDER BY id", (self._dp, _hex(mask))
            )
            for row_id, record in rows:
                yield self._load(row_id, record)

    def flows(self) -> list[SimFlow]:
        return list(self.iter_flows())

    def lookup(self, key: int) -> SimFlow | None:
        flow = self._emc.get(key)
        stats = self.stats
        if flow is not None:
            stats.cache_hit += 1
            stats.mask_hit += 1
            return flow
        probes = 0
        for mask in self._mask_list:
            probes += 1
            flow = self._get(mask, key & mask)
            if flow is not None:
                stats.mask_hit += probes
                self._emc[key] = flow
                return flow
        stats.mask_hit += probes
        return None

    def peek(self, key: int) -> SimFlow | None:
        for mask in self._mask_list:
            flow = self._get(mask, key & mask)
            if flow is not None:
                return flow
        return None

    def find_ufid(self, ufid: bytes) -> SimFlow | None:
        row = self._db.execute(
            "SELECT id, record FROM flows WHERE dp = ? AND ufid = ?", (self._dp, ufid.hex())
        ).fetchone()
        return None if row is None else self._load(row[0], row[1])

    def find_exact(self, unmasked_key: int) -> SimFlow | None:
        for mask in self._mask_list:
            flow = self._get(mask, unmasked_key & mask)
            if flow is not None and flow.ufid is None and flow.unmasked_key == unmasked_key:
                return flow
        return None

    def find_masked(self, sw: Any) -> SimFlow | None:
        return self._get(sw.mask, sw.masked_key) if sw.mask in self._mask_list else None

    # writing -------------------------------------------------------------------
    def _record(self, flow: SimFlow) -> str:
        return _dumps(flow_to_json(flow, *self._now))

    def insert(self, flow: SimFlow) -> None:
        mask, masked = flow.sw.mask, flow.sw.masked_key
        if mask not in self._mask_list:
            self._db.execute("INSERT INTO masks (dp, mask) VALUES (?, ?)", (self._dp, _hex(mask)))
            self._mask_list.append(mask)
        old = self._get(mask, masked)
        record = self._record(flow)
        ufid = None if flow.ufid is None else flow.ufid.hex()
        if old is not None:
            # Same mask and masked key: the newest replaces it in its place (FlowTable.insert).
            row_id, _ = self._rows.pop(old)
            del self._by_row[row_id]
            self._db.execute("UPDATE flows SET ufid = ?, record = ? WHERE id = ?", (ufid, record, row_id))
        else:
            cur = self._db.execute(
                "INSERT INTO flows (dp, mask, masked_key, ufid, record) VALUES (?, ?, ?, ?, ?)",
                (self._dp, _hex(mask), _hex(masked), ufid, record),
            )
            assert cur.lastrowid is not None
            row_id = cur.lastrowid
        self._rows[flow] = (row_id, record)
        self._by_row[row_id] = flow
        self._known[(mask, masked)] = flow
        self._emc.clear()

    def remove(self, flow: SimFlow) -> None:
        loaded = self._rows.pop(flow, None)
        if loaded is None:
            return
        self._db.execute("DELETE FROM flows WHERE id = ?", (loaded[0],))
        del self._by_row[loaded[0]]
        self._known[(flow.sw.mask, flow.sw.masked_key)] = None
        mask = _hex(flow.sw.mask)
        if (
            self._db.execute("SELECT 1 FROM flows WHERE dp = ? AND mask = ? LIMIT 1", (self._dp, mask)).fetchone()
            is None
        ):
            self._db.execute("DELETE FROM masks WHERE dp = ? AND mask = ?", (self._dp, mask))
            self._mask_list.remove(flow.sw.mask)
        self._emc.clear()

    def flush(self) -> None:
        self._db.execute("DELETE FROM flows WHERE dp = ?", (self._dp,))
        self._db.execute("DELETE FROM masks WHERE dp = ?", (self._dp,))
        self._mask_list.clear()
        self._known.clear()
        self._rows.clear()
        self._by_row.clear()
        self._emc.clear()

    def sync(self) -> None:
        """Write back the loaded flows whose record changed (statistics, actions)."""
        for flow, (row_id, old) in list(self._rows.items()):
            record = self._record(flow)
            if record != old:
                self._db.execute("UPDATE flows SET record = ? WHERE id = ?", (record, row_id))
                self._rows[flow] = (row_id, record)


# ---------------------------------------------------------------------------
# The state of one command
# ---------------------------------------------------------------------------


class StoredState(SimState):
    """A :class:`~odp.sim.state.SimState` whose flows and queued upcalls stay in the store.

    ``upcalls`` is not used: :meth:`queue_upcall` and :meth:`take_upcalls`
    read and write the database.
    """

    __slots__ = ("_db", "_loaded")

    def __init__(self, host: Host, db: sqlite3.Connection, loaded: dict[str, tuple[SimDatapath, str]]) -> None:
        super().__init__(host)
        self._db = db
        #: datapath name -> (the object loaded, its record as loaded)
        self._loaded = loaded

    def queue_upcall(self, dp_name: str, upcall: Upcall, when: float | None = None) -> None:
        q = QueuedUpcall(time.time() if when is None else when, upcall)
        self._db.execute("INSERT INTO upcalls (dp, record) VALUES (?, ?)", (dp_name, _dumps(upcall_to_json(q))))
        self._db.execute(
            "DELETE FROM upcalls WHERE dp = ? AND id NOT IN (SELECT id FROM upcalls WHERE dp = ? ORDER BY id DESC"
            " LIMIT ?)",
            (dp_name, dp_name, MAX_QUEUED_UPCALLS),
        )

    def take_upcalls(self, dp_name: str, count: int | None = None) -> list[QueuedUpcall]:
        d = self.host.datapaths[dp_name]
        rows = self._db.execute(
            "SELECT id, record FROM upcalls WHERE dp = ? ORDER BY id LIMIT ?", (dp_name, -1 if count is None else count)
        ).fetchall()
        self._db.executemany("DELETE FROM upcalls WHERE id = ?", [(r[0],) for r in rows])
        return [upcall_from_json(json.loads(r[1]), d.ifindex) for r in rows]

    def queue_vport_event(self, event: dict[str, Any]) -> None:
        events = list(self.meta("vport_events") or [])
        events.append(event)
        self.set_meta("vport_events", events[-MAX_QUEUED_UPCALLS:])

    def take_vport_events(self, dp_name: str | None = None, count: int | None = None) -> list[dict[str, Any]]:
        events = list(self.meta("vport_events") or [])
        taken = [e for e in events if dp_name is None or e.get("datapath") == dp_name][:count]
        self.set_meta("vport_events", [e for e in events if not any(e is t for t in taken)])
        return taken

    def meta(self, key: str) -> Any:
        """The JSON value stored under ``key`` in the meta table (None if absent)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def save(self) -> None:
        """Write back what the command changed (the caller commits)."""
        host, db = self.host, self._db
        now_mono, now_wall = host.clock(), time.time()
        self.set_meta("host", host_to_json(host))
        for name, (d, _) in self._loaded.items():
            if host.datapaths.get(name) is not d:  # deleted (or deleted and created anew)
                for table in ("datapaths", "flows", "masks", "upcalls"):
                    db.execute(f"DELETE FROM {table} WHERE {'name' if table == 'datapaths' else 'dp'} = ?", (name,))
        for name, d in host.datapaths.items():
            record = _dumps(datapath_to_json(d, now_mono, now_wall))
            loaded = self._loaded.get(name)
            if loaded is None or loaded[0] is not d:
                db.execute("INSERT OR REPLACE INTO datapaths (name, record) VALUES (?, ?)", (name, record))
                _write_flows(db, name, d.table.flows(), now_mono, now_wall)
                continue
            if record != loaded[1]:
                db.execute("UPDATE datapaths SET record = ? WHERE name = ?", (record, name))
            if isinstance(d.table, StoredFlowTable):
                d.table.sync()


def _write_flows(db: sqlite3.Connection, dp: str, flows: list[SimFlow], now_mono: int, now_wall: float) -> None:
    masks: list[int] = []
    for f in flows:
        if f.sw.mask not in masks:
            masks.append(f.sw.mask)
    db.executemany("INSERT OR IGNORE INTO masks (dp, mask) VALUES (?, ?)", [(dp, _hex(m)) for m in masks])
    db.executemany(
        "INSERT INTO flows (dp, mask, masked_key, ufid, record) VALUES (?, ?, ?, ?, ?)",
        [
            (dp, _hex(f.sw.mask), _hex(f.sw.masked_key), None if f.ufid is None else f.ufid.hex(),
             _dumps(flow_to_json(f, now_mono, now_wall)))
            for f in flows
        ],
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------


def is_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an SQLite file (False if it does not exist or holds something else)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


_FILE_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _check_existing(p: Path) -> bool:
    """Whether the store exists; StateError when ``p`` is anything but an SQLite store (or nothing)."""
    try:
        st = os.stat(p)  # follows a symbolic link: its target is the store
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateError(f"{p}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise StateError(f"{p}: {kind}, not a state file (give --state the path of a file)")
    if st.st_size == 0:
        raise StateError(f"{p}: an empty file, not an odp state (remove it to start with an empty host)")
    try:
        with open(p, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StateError(f"{p}: {exc.strerror}") from None
    if head != SQLITE_HEADER:
        if head.lstrip()[:1] == b"{":
            raise StateError(
                f"{p}: a JSON state (the export format), not a state database: 'odp state import {p}'"
                " loads it into a --state database"
            )
        raise StateError(f"{p}: not an odp state database")
    return True


def _connect(p: Path, *, read_only: bool) -> sqlite3.Connection:
    uri = f"file:{quote(str(p.absolute()))}" + ("?mode=ro" if read_only else "?mode=rw")
    db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT, check_same_thread=False)
    return db


def _create(path: Path) -> None:
    """Create an empty store at ``path`` unless one appears there meanwhile (never a half-made file).

    A symbolic link to a missing file gets its target created, and stays a link.
    """
    p = Path(os.path.realpath(path))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".new", dir=p.parent)
    except OSError as exc:
        raise StateError(f"{p}: cannot create the state: {exc.strerror}") from None
    os.close(fd)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            rows = [("format", FORMAT), ("store_version", STORE_VERSION), ("host", host_to_json(new_host()))]
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows])
        finally:
            db.close()
        with contextlib.suppress(FileExistsError):  # another command created it first: use theirs
            os.link(tmp, p)
    except OSError as exc:
        raise StateError(f"{p}: cannot create the state: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _check_meta(db: sqlite3.Connection, p: Path) -> None:
    try:
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('format', 'store_version')").fetchall())
    except sqlite3.OperationalError:
        raise StateError(f"{p}: an SQLite database, but not an odp state") from None
    if meta.get("format") != json.dumps(FORMAT):
        raise StateError(f"{p}: an SQLite database, but not an odp state")
    if meta.get("store_version") != json.dumps(STORE_VERSION):
        raise StateError(f"{p}: state store version {meta.get('store_version')} is not supported ({STORE_VERSION})")


def _load(db: sqlite3.Connection, *, full: bool) -> StoredState:
    row = db.execute("SELECT value FROM meta WHERE key = 'host'").fetchone()
    if row is None:
        raise StateError("no host record")
    host = host_from_json(json.loads(row[0]))
    now_mono, now_wall = host.clock(), time.time()
    loaded: dict[str, tuple[SimDatapath, str]] = {}
    for name, record in db.execute("SELECT name, record FROM datapaths ORDER BY rowid").fetchall():
        d = datapath_from_json(host, json.loads(record), now_mono, now_wall)
        stored = StoredFlowTable(db, name, now_mono, now_wall)
        stored.stats = d.table.stats
        if full:  # every flow in memory (export, tests): a plain table
            for f in stored.iter_flows():
                d.table.insert(f)
        else:
            d.table = stored
        host.datapaths[name] = d
        loaded[name] = (d, _dumps(datapath_to_json(d, now_mono, now_wall)))
    state = StoredState(host, db, loaded)
    if full:
        for name, d in host.datapaths.items():
            rows = db.execute("SELECT record FROM upcalls WHERE dp = ? ORDER BY id", (name,))
            queued = [upcall_from_json(json.loads(r), d.ifindex) for (r,) in rows]
            if queued:
                state.upcalls[name] = queued
    return state


@contextlib.contextmanager
def _errors(p: Path) -> Iterator[None]:
    """SQLite's and the records' errors as one StateError naming the file."""
    try:
        yield
    except StateError as exc:
        text = str(exc)
        raise StateError(text if text.startswith(str(p)) else f"{p}: {text}") from None
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            text = f"busy: another command held the state for over {BUSY_TIMEOUT:.0f} s"
        elif "readonly" in text or "read-only" in text:
            text = "read-only (this command changes the state: it needs write access to the file and its directory)"
        raise StateError(f"{p}: {text}") from None
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{p}: not a readable odp state ({exc})") from None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, OdpError):
            raise StateError(f"{p}: inconsistent state: {exc}") from None
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise StateError(f"{p}: inconsistent state: {detail}") from None


@contextlib.contextmanager
def open_state(path: str | os.PathLike[str], *, write: bool = True) -> Iterator[SimState]:
    """The state at ``path`` for one command: committed if the block ends normally, else rolled back.

    ``write=False`` opens the file read-only and never changes it (a missing
    file is an empty host, and is not created).
    """
    p = Path(path)
    with _errors(p):
        exists = _check_existing(p)
        if exists or write:
            if not exists:
                _create(p)
                _check_existing(p)
            db = _connect(p, read_only=not write)
    if not exists and not write:
        yield SimState(new_host())
        return
    try:
        with _errors(p):
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            _check_meta(db, p)
            state = _load(db, full=False)
        ok = False
        try:
            yield state
            ok = True
        except sqlite3.Error as exc:  # the flow tables read and write while the command runs
            raise StateError(f"{p}: {exc}") from None
        finally:
            with _errors(p):
                if ok and write:
                    state.save()
                    db.execute("COMMIT")
                else:
                    db.execute("ROLLBACK")
    finally:
        db.close()


def load_store(path: str | os.PathLike[str]) -> SimState:
    """Everything in the store at ``path``, in memory (flows in plain tables): for export and tests."""
    p = Path(path)
    with _errors(p):
        if not _check_existing(p):
            return SimState(new_host())
        db = _connect(p, read_only=True)
        try:
            db.execute("BEGIN")
            _check_meta(db, p)
            state = _load(db, full=True)
            return SimState(state.host, state.upcalls)
        finally:
            db.close()


def replace_store(path: str | os.PathLike[str], state: SimState) -> None:
    """Make the store at ``path`` hold ``state`` (and nothing else), in one transaction."""
    p = Path(path)
    with _errors(p):
        if not _check_existing(p):
            _create(p)
        db = _connect(p, read_only=False)
        try:
            db.execute("BEGIN IMMEDIATE")
            _check_meta(db, p)
            for table in ("datapaths", "flows", "masks", "upcalls"):
                db.execute(f"DELETE FROM {table}")
            stored = StoredState(state.host, db, {})
            stored.save()
            for name, queued in state.upcalls.items():
                for q in queued:
                    stored.queue_upcall(name, q.upcall, q.time)
            db.execute("COMMIT")
        finally:
            db.close()


def export_store(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The store at ``path`` as the JSON document of :func:`odp.sim.state.state_to_json` (read-only).

    The records are copied as stored, without rebuilding a flow, so that an
    export costs what the file is large, not what the simulator takes to load it.
    """
    p = Path(path)
    with _errors(p):
        if not _check_existing(p):
            return state_to_json(SimState(new_host()))
        db = _connect(p, read_only=True)
        try:
            db.execute("BEGIN")
            _check_meta(db, p)
            (host,) = db.execute("SELECT value FROM meta WHERE key = 'host'").fetchone()
            datapaths = []
            for name, record in db.execute("SELECT name, record FROM datapaths ORDER BY rowid").fetchall():
                dd = json.loads(record)
                flows = db.execute(
                    "SELECT f.record FROM flows f JOIN masks m ON m.dp = f.dp AND m.mask = f.mask"
                    " WHERE f.dp = ? ORDER BY m.seq, f.id",
                    (name,),
                )
                dd["flows"] = [json.loads(r) for (r,) in flows]
                ups = db.execute("SELECT record FROM upcalls WHERE dp = ? ORDER BY id", (name,))
                dd["upcalls"] = [json.loads(r) for (r,) in ups]
                datapaths.append(dd)
            return {"format": FORMAT, "version": VERSION, "host": json.loads(host), "datapaths": datapaths}
        finally:
            db.close()


def load_state(path: str | os.PathLike[str]) -> SimState:
    """The state saved at ``path``: a state database (this module) or a JSON document (the export format).

    A missing file is a fresh host (:func:`new_host`); an empty one is an error.
    """
    p = Path(path)
    if is_store(p):
        return load_store(p)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return SimState(new_host())
    except OSError as exc:
        raise StateError(f"{p}: {exc.strerror}") from None
    return state_from_text(data, str(p))


def load_host(path: str | os.PathLike[str]) -> Host:
    """The host saved at ``path`` (a fresh one if there is no file)."""
    return load_state(path).host
