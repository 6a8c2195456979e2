"""A run folder: one writing process at a time, and no leftovers of killed writes.

Two trainings writing into one folder overwrite each other's checkpoints and logs. A
:class:`RunLock` claims a folder with ``folder/.medgan.lock``: a file created atomically
(``O_CREAT | O_EXCL``, so exactly one process succeeds) holding JSON
``{"pid", "host", "started", "token"}``. A second process is refused with a
:class:`~medgan.errors.CheckpointError` naming the folder and the holder. A lock whose
holder is gone (same host, pid no longer alive) is stale: it is logged and taken over.
Within one process the lock is re-entrant, so a run resumed in the same folder by the
same process (``fit()`` called again) keeps working.

Atomic writes (:func:`medgan.checkpoint.save_atomic`, the metric log) go through hidden
temporary files ``.{name}.{pid}.XXXXXXXX.tmp``; a writer killed mid-write leaves one
behind. :func:`remove_orphans` deletes those whose writer is dead when a run starts.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from medgan.errors import CheckpointError

log = logging.getLogger(__name__)

LOCK_NAME = ".medgan.lock"
#: a lock file that cannot be parsed (its writer died between creating and filling it)
#: counts as stale after this many seconds
_UNREADABLE_STALE_S = 10.0
#: temporary files without a pid in their name (older medgan) are orphans after this age
_ORPHAN_MIN_AGE_S = 60.0
_TMP = re.compile(r"^\..+?\.(?:(\d+)\.)?[a-z0-9_]{8}\.tmp$")  # save_atomic / mkstemp
_LINK = re.compile(r"^\..+\.(\d+)\.link$")  # link_atomic

# Locks are held per process (like fcntl locks): this table lets several callbacks of one
# process share a folder's lock, counted, and lets atexit release what is still held.
_HELD: dict[str, list[Any]] = {}  # resolved folder -> [token, count]
_GUARD = threading.Lock()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (assumed alive when we cannot tell)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by another user
        return True
    return True


def _read(path: Path) -> tuple[str, dict[str, Any] | None]:
    """The lock file's text and its parsed content (None when unparseable)."""
    text = path.read_text()
    try:
        info = json.loads(text)
    except ValueError:
        return text, None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return text, None
    return text, info


class RunLock:
    """An exclusive claim on ``folder`` by this process (``folder/.medgan.lock``).

    Args:
        folder: the run folder (created if missing).

    ``acquire()`` and ``release()`` pair up; use it as a context manager or call both.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._key: str | None = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now (acquired and not yet released)."""
        return self._key is not None

    def acquire(self) -> RunLock:
        """Take the lock, or raise CheckpointError naming the process that holds it."""
        with _GUARD:
            if self._key is not None:
                return self
            self.folder.mkdir(parents=True, exist_ok=True)
            key = str(self.folder.resolve())
            held = _HELD.get(key)
            if held is not None and self._file_token() == held[0]:
                held[1] += 1
                self._key = key
                return self
            _HELD.pop(key, None)  # our entry, but the file is gone or replaced
            token = self._create()
            _HELD[key] = [token, 1]
            self._key = key
            return self

    def release(self) -> None:
        """Give the lock up; the file is deleted when this process's last holder lets go."""
        with _GUARD:
            key, self._key = self._key, None
            held = _HELD.get(key) if key else None
            if held is None:
                return
            held[1] -= 1
            if held[1] <= 0:
                del _HELD[key]
                _unlink_if_token(Path(key) / LOCK_NAME, held[0])

    # ------------------------------------------------------------------ internals

    def _file_token(self) -> str | None:
        try:
            return (_read(self.path)[1] or {}).get("token")
        except OSError:
            return None

    def _create(self) -> str:
        me, host = os.getpid(), socket.gethostname()
        for _ in range(50):
            token = uuid.uuid4().hex
            info = {
                "pid": me,
                "host": host,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "token": token,
            }
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing(me, host)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
                f.flush()
                os.fsync(f.fileno())
            return token
        raise CheckpointError(
            f"run folder {self.folder}: could not take the lock {self.path} (it keeps "
            "reappearing); is another run starting in this folder?"
        )

    def _handle_existing(self, me: int, host: str) -> None:
        """Return to retry when the existing lock is gone or stale (then removed); raise
        when a live process holds it."""
        try:
            text, info = _read(self.path)
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return  # released meanwhile: retry
        if info is None:
            if age < _UNREADABLE_STALE_S:
                time.sleep(0.05)  # being written by a process that just created it
                return
            log.warning("run folder %s: unreadable lock %s taken over", self.folder, self.path)
        elif info.get("host") == host and info["pid"] == me:
            log.debug("run folder %s: lock left by this process taken back", self.folder)
        elif info.get("host") == host and not _pid_alive(info["pid"]):
            log.warning(
                "run folder %s: stale lock of pid %s (no longer running, started %s) taken over",
                self.folder,
                info["pid"],
                info.get("started", "?"),
            )
        else:
            raise CheckpointError(
                f"run folder {self.folder} is in use by another training: pid {info['pid']} "
                f"on host {info.get('host', '?')}, started {info.get('started', '?')} (lock "
                f"file {self.path}). Two runs writing into one folder overwrite each other's "
                "checkpoints: choose another output folder or wait for that run to end. If "
                f"that process is no medgan run (pids are reused), delete {self.path}"
            )
        self._remove_if_unchanged(text)

    def _remove_if_unchanged(self, seen: str) -> None:
        """Delete the lock file if it still holds ``seen``; a guard file makes check and
        delete one step, so two processes taking over the same stale lock cannot delete
        the new lock of the one that came first."""
        guard = self.path.with_name(LOCK_NAME + ".takeover")
        try:
            gfd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a guard left by a process killed in this tiny window
                if time.time() - guard.stat().st_mtime > _UNREADABLE_STALE_S:
                    guard.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
            return
        try:
            if self.path.read_text() == seen:
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(gfd)
            guard.unlink(missing_ok=True)


def _unlink_if_token(path: Path, token: str) -> None:
    try:
        info = _read(path)[1]
    except OSError:
        return
    if info is not None and info.get("token") == token:
        path.unlink(missing_ok=True)


if hasattr(os, "register_at_fork"):  # a forked child (a DataLoader worker) holds no locks
    os.register_at_fork(after_in_child=_HELD.clear)


@atexit.register
def _release_all() -> None:
    """A process that ends with locks still held (an exception ended its run) frees them."""
    with _GUARD:
        for key, (token, _) in list(_HELD.items()):
            _unlink_if_token(Path(key) / LOCK_NAME, token)
        _HELD.clear()


def remove_orphans(folder: str | Path) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes in ``folder`` (not its
    subfolders): names ``.{name}.{pid}.XXXXXXXX.tmp`` or ``.{name}.{pid}.link`` whose
    process ``pid`` is dead, and ``.{name}.XXXXXXXX.tmp`` (older medgan, no pid) older
    than a minute. Call it while holding the folder's :class:`RunLock`. Returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        m = _TMP.match(p.name) or _LINK.match(p.name)
        if m is None or not p.is_file():
            continue
        try:
            if m.group(1) is not None:
                pid = int(m.group(1))
                if pid == os.getpid() or _pid_alive(pid):
                    continue  # its writer may still be writing
            elif time.time() - p.stat().st_mtime < _ORPHAN_MIN_AGE_S:
                continue
            p.unlink()
        except FileNotFoundError:
            continue
        removed.append(p)
    if removed:
        log.info(
            "removed %d temporary file(s) left by interrupted writes in %s: %s",
            len(removed),
            folder,
            ", ".join(p.name for p in removed),
        )
    return removed


def claim(lock: RunLock) -> None:
    """Acquire ``lock`` and clear its folder of orphaned temporary files."""
    lock.acquire()
    remove_orphans(lock.folder)
