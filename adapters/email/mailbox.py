"""``EmailSender`` into a local mailbox file: the default when no mail service is
configured, so that an email task really delivers somewhere a user can read.

The file is an mbox (Python's ``mailbox``; ``mutt -f``, ``mail -f`` and Thunderbird
read it too): ``./data/mailbox`` beside the SQLite file, a temporary one in memory mode
(its path is logged at start). Read it with::

    python -c "import mailbox; [print(m['To'], m['Subject']) for m in mailbox.mbox('data/mailbox')]"
"""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import os
import threading
from email.message import EmailMessage

from adapters.email.mime import mime_message
from domain.email import Email, EmailNotSentYet, SentEmail


class MailboxEmailSender:
    """Appends each message to the mbox at ``path`` (its directory created if
    missing), under the mbox's own lock (a ``.lock`` file and ``fcntl``), so processes
    sharing the file do not interleave."""

    def __init__(self, path: str, *, sender: str = "taskq@localhost") -> None:
        self.path = path
        self._sender = sender
        self._lock = threading.Lock()
        self._box: mailbox.mbox | None = None

    async def send(self, email: Email) -> SentEmail:
        message = mime_message(email, self._sender)
        try:
            await asyncio.to_thread(self._append, message)
        except OSError as exc:  # a full disk, a lost permission: may pass
            raise EmailNotSentYet(f"cannot write the mailbox {self.path}: {exc}") from None
        return SentEmail(message_id=str(message["Message-ID"]), accepted=email.to)

    def __getstate__(self) -> dict[str, str]:
        """What a child process needs (an isolated email task): the file, not the lock
        or the open mailbox."""
        return {"path": self.path, "sender": self._sender}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["path"], sender=state["sender"])  # type: ignore[misc]

    def close(self) -> None:
        with self._lock:
            if self._box is not None:
                self._box.close()
                self._box = None

    def _append(self, message: EmailMessage) -> None:
        with self._lock:
            # Kept open: ``mbox`` reads the whole file once, on its first add; later
            # adds append at the end of the file, whoever else wrote to it meanwhile.
            if self._box is None:
                directory = os.path.dirname(self.path)
                if directory:
                    os.makedirs(directory, exist_ok=True)
                self._box = mailbox.mbox(self.path, create=True)
            box = self._box
            try:
                box.lock()
                try:
                    box.add(message)
                    box.flush()
                finally:
                    box.unlock()
            except OSError:
                self._box = None  # opened afresh next time
                with contextlib.suppress(OSError):
                    box.close()
                raise
