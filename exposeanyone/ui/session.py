"""Sessions of the app, without Gradio: who may see which profiles and files.

A **local** app (``python app.py`` on one's own machine) has one user: every session shares the profiles
folder on disk. A **shared** deployment (a Hugging Face Space, detected by ``SPACE_ID``, or any server
started with ``EXPOSEANYONE_SHARED=1``) has strangers as users: each session gets its own profile store
inside its own scratch folder, which is deleted when the tab closes (or a day after it was last used), so
no visitor can list, read, replace or delete another's profiles. A visitor keeps a profile by downloading
its archive and uploading it again later (checked member by member, like any upload).

Scratch folders are named by a keyed hash of the session (a secret drawn when the server starts), so only
the server can name them, also in a ZeroGPU worker forked from it, and they lie outside the server's
allowed paths: a file in one is reachable only through the unguessable copy Gradio hands to its session.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from ..core.errors import InputError, LimitError
from ..core.progress import ProgressFn
from ..profiles import ProfileStore

SHARED_ENV = "EXPOSEANYONE_SHARED"
"""``1`` makes the app a shared deployment, ``0`` a local one; unset, a Hugging Face Space (``SPACE_ID``) is shared."""
MAX_SESSION_PROFILES = 20
"""Profiles one session may hold on a shared deployment (a few KB each; the limit keeps a script from filling the disk)."""
SESSION_PROFILES = "this session's profiles"
"""How messages name a session's profile store (never its path)."""
READY_PERSON = "the app's ready example person"
"""What a name shown read-only to every session is, in the sentence that refuses to replace it."""
REPLACE_HOW = "tick 'Replace'"
"""What the app's visitor does to overwrite a profile (ends the refusal sentence)."""


def shared_deployment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the app serves strangers: ``EXPOSEANYONE_SHARED`` (1/0) when set, else on a Hugging Face Space."""
    environ = os.environ if environ is None else environ
    flag = environ.get(SHARED_ENV, "").strip().lower()
    if flag in {"1", "true", "yes", "on"}:
        return True
    if flag in {"0", "false", "no", "off"}:
        return False
    return bool(environ.get("SPACE_ID"))


class Cancelled(InputError):
    """The user pressed Cancel."""


def cancellable(progress: ProgressFn, flag: threading.Event | None) -> ProgressFn:
    """``progress`` that raises :class:`Cancelled` at the next report once ``flag`` is set.

    Work is stopped at its next progress report (a frame batch or a few training steps), because a
    thread cannot be interrupted from outside.
    """
    def report(fraction: float, message: str) -> None:
        if flag is not None and flag.is_set():
            raise Cancelled("Enrollment was cancelled; nothing was saved.")
        progress(fraction, message)

    return report


class CancelFlags:
    """One cancel flag per browser session, so Cancel stops that session's enrollment only.

    :meth:`start` creates the flag when the user clicks Enroll, before the work leaves the queue, so
    that Cancel can also stop an enrollment still waiting for the CPU; the worker picks the flag up
    with :meth:`flag` and stops at its first progress report if it is already raised.
    """

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        """A fresh flag for a new enrollment (an unraised one already waiting is kept)."""
        with self._lock:
            flag = self._flags.get(session)
            if flag is None or flag.is_set():
                flag = self._flags[session] = threading.Event()
        return flag

    def flag(self, session: str) -> threading.Event:
        """The flag of the session's enrollment, raised already if it was cancelled while queued."""
        with self._lock:
            return self._flags.setdefault(session, threading.Event())

    def cancel(self, session: str) -> bool:
        """Raise the session's flag; False when nothing was running or waiting."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, session: str) -> None:
        with self._lock:
            self._flags.pop(session, None)


class SessionFiles:
    """A scratch folder per session for the files offered for download (and, on a shared deployment, the
    session's profiles), removed when the session ends or a day after its last use.

    A folder's name is a keyed hash of the session (see the module's notes), never the session itself. A
    session that has ended gets no folder again: work still queued for it (an annotated copy after the tab
    was closed) would otherwise leave files behind that nobody can download.
    """

    def __init__(self, root: str | Path | None = None, max_age_s: float = 24 * 3600) -> None:
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / "exposeanyone-app"
        self.max_age_s = max_age_s
        self._secret = secrets.token_bytes(32)
        self._ended: dict[str, float] = {}

    def path(self, session: str | None) -> Path:
        """Where the session's folder is (or would be); nothing is created."""
        key = _session_key(session) or "anonymous"
        return self.root / hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()[:32]

    def folder(self, session: str | None) -> Path:
        key = _session_key(session) or "anonymous"
        if key in self._ended:
            raise InputError("This session has ended (the page was closed); its files are gone.")
        folder = self.path(session)
        if not folder.is_dir():
            self.prune()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            os.utime(folder)  # in use: not pruned while the session lives
        return folder

    def remove(self, session: str | None) -> None:
        key = _session_key(session)
        if key:
            self._ended[key] = time.time()
            self.discard_if_ended(key)

    def discard_if_ended(self, session: str | None) -> bool:
        """Remove the session's folder if the session has ended: when it ends, and again if work that began
        before (a long annotation) wrote into it afterwards. True when it had ended."""
        key = _session_key(session)
        if key not in self._ended:
            return False
        shutil.rmtree(self.path(key), ignore_errors=True)
        return True

    def prune(self) -> None:
        """Remove the folders of sessions that ended without saying so (closed laptops, API clients)."""
        if not self.root.is_dir():
            return
        cutoff = time.time() - self.max_age_s
        self._ended = {key: ended for key, ended in self._ended.items() if ended >= cutoff}
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


class ProfileStores:
    """Which profile store a session uses: the one on disk (local app) or its own (shared deployment), with
    the ready example person (``ready``, read-only, shown to everyone) beside it, whose name no one can take."""

    def __init__(self, store: ProfileStore, files: SessionFiles, shared: bool,
                 max_profiles: int = MAX_SESSION_PROFILES, ready: ProfileStore | None = None) -> None:
        self.ready = ready
        self.ready_names = ready.names() if ready is not None else []
        self.store = store.reserving(self.ready_names, READY_PERSON) if self.ready_names else store
        self.files, self.shared, self.max_profiles = files, shared, max_profiles

    def for_session(self, session: str | None) -> ProfileStore:
        """The store the session enrolls into and installs into."""
        if not self.shared:
            return self.store
        if not _session_key(session):
            raise InputError("This request belongs to no session, so it has no profiles; reload the page.")
        return ProfileStore(self.files.folder(session) / "profiles", where=SESSION_PROFILES,
                            reserved=self.ready_names, reserved_as=READY_PERSON)

    def holding(self, session: str | None, name: str | None) -> ProfileStore:
        """The store to read the profile ``name`` from: the ready person's, else the session's."""
        if self.ready is not None and name in self.ready_names:
            return self.ready
        return self.for_session(session)

    def names(self, session: str | None) -> list[str]:
        """The profiles the session may pick: the ready person first, then its own (none once it has ended)."""
        try:
            own = self.for_session(session).names()
        except InputError:
            own = []
        return self.ready_names + [name for name in own if name not in self.ready_names]

    def check_room(self, store: ProfileStore, name: str | None) -> None:
        """Refuse a new profile (``name`` None: not known yet) in a session that holds the most a shared
        deployment allows, before any work."""
        if self.shared and len(store.names()) >= self.max_profiles and not (name and store.exists(name)):
            raise LimitError(f"This session holds {self.max_profiles} profiles, the most a shared deployment "
                             "keeps per visitor; replace one of them or reload the page to start afresh.")


def _session_key(session: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "", session or "")
