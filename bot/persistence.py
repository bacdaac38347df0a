"""python-telegram-bot's persistence in casebot's own database: conversations (a half-done /new,
a pending "what was done?") and each person's and chat's data survive a restart.

The inbox marks an update handled only after ``Application.update_persistence()`` has written
what the update changed here, so a crash never leaves a conversation behind its updates: the
inbox collects those writes (``collecting``) and commits them with the update's "done" in one
transaction (one commit an update, not one for each person's or chat's data and one more). Bot data
(the running services) is not persisted; nor is callback data (casebot's buttons carry ids).
Values are pickled, as python-telegram-bot's own ``PicklePersistence`` does: they are casebot's
own objects (drafts, offers, checked import rows) read back only by casebot.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from bot.db import Database

log = logging.getLogger(__name__)
Data = dict[Any, Any]
Write = tuple[str, tuple[Any, ...]]


@dataclass
class Writes:
    """Writes collected instead of sent (``DatabasePersistence.collecting``)."""

    statements: list[Write] = field(default_factory=list)
    stored: set[tuple[str, int]] = field(default_factory=set)  # the data rows they write


# Set by ``collecting``: the writes of this task (and of the tasks it starts: PTB gathers the
# update_* calls) wait there instead of going to the database one by one.
_collected: ContextVar[Writes | None] = ContextVar("casebot_persistence_writes", default=None)


class DatabasePersistence(BasePersistence[Data, Data, Data]):
    def __init__(self) -> None:
        # update_interval: the inbox writes after every update; the periodic run only catches
        # what jobs change (a conversation's timeout).
        super().__init__(store_data=PersistenceInput(bot_data=False, callback_data=False),
                         update_interval=60)
        self._db: Database | None = None
        # What each stored row holds (all of them are read at start): most updates change
        # nobody's data, and writing it unchanged would cost a commit per update.
        self._stored: dict[tuple[str, int], bytes] = {}

    def attach(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("DatabasePersistence used before attach(db)")
        return self._db

    @contextmanager
    def collecting(self) -> Iterator[Writes]:
        """The writes made inside the block are not sent: they are returned, for the caller to
        commit in its own transaction. Writes made elsewhere meanwhile (PTB's periodic run) go
        to the database as usual."""
        writes = Writes()
        token = _collected.set(writes)
        try:
            yield writes
        finally:
            _collected.reset(token)

    def uncommitted(self, writes: Writes) -> None:
        """The caller could not commit ``writes``: what their data rows hold is not known any
        more, so the next change of them is written (or deleted) whatever it is."""
        for key in writes.stored:
            self._stored[key] = b""  # matches no pickle; present, so an empty dict deletes

    async def _write(self, sql: str, params: tuple[Any, ...], stored: tuple[str, int] | None = None) -> None:
        collected = _collected.get()
        if collected is None:
            await self.db.write(sql, params)
            return
        collected.statements.append((sql, params))
        if stored is not None:
            collected.stored.add(stored)

    # --- conversations ---------------------------------------------------------------------

    async def get_conversations(self, name: str) -> ConversationDict:
        rows = await self.db.all("SELECT key, state FROM conversations WHERE name = ?", (name,))
        return {tuple(json.loads(r[0])): json.loads(r[1]) for r in rows}

    async def update_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
        encoded = json.dumps(list(key))
        if new_state is None:
            await self._write("DELETE FROM conversations WHERE name = ? AND key = ?", (name, encoded))
        else:
            await self._write("INSERT INTO conversations(name, key, state) VALUES(?,?,?)"
                              " ON CONFLICT(name, key) DO UPDATE SET state = excluded.state",
                              (name, encoded, json.dumps(new_state)))

    # --- a person's and a chat's data --------------------------------------------------------

    async def _load(self, kind: str) -> dict[int, Data]:
        out: dict[int, Data] = {}
        for row in await self.db.all("SELECT id, data FROM conversation_data WHERE kind = ?", (kind,)):
            try:
                out[int(row[0])] = pickle.loads(row[1])
                self._stored[(kind, int(row[0]))] = bytes(row[1])
            except Exception as exc:  # written by another version: start that one afresh
                log.warning("%s data %d could not be read back (%s): dropped", kind, row[0],
                            type(exc).__name__)
        return out

    async def _store(self, kind: str, key: int, data: Data) -> None:
        if not data:
            if self._stored.pop((kind, key), None) is not None:
                await self._write("DELETE FROM conversation_data WHERE kind = ? AND id = ?",
                                  (kind, key), (kind, key))
            return
        try:
            blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            log.warning("%s data %d could not be stored (%s)", kind, key, type(exc).__name__)
            return
        if self._stored.get((kind, key)) == blob:
            return
        self._stored[(kind, key)] = blob
        await self._write("INSERT INTO conversation_data(kind, id, data) VALUES(?,?,?)"
                          " ON CONFLICT(kind, id) DO UPDATE SET data = excluded.data", (kind, key, blob),
                          (kind, key))

    async def get_user_data(self) -> dict[int, Data]:
        return await self._load("user")

    async def get_chat_data(self) -> dict[int, Data]:
        return await self._load("chat")

    async def update_user_data(self, user_id: int, data: Data) -> None:
        await self._store("user", user_id, data)

    async def update_chat_data(self, chat_id: int, data: Data) -> None:
        await self._store("chat", chat_id, data)

    async def drop_user_data(self, user_id: int) -> None:
        await self._store("user", user_id, {})

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._store("chat", chat_id, {})

    async def refresh_user_data(self, user_id: int, user_data: Data) -> None:
        pass  # this process is the only writer: what it holds is current

    async def refresh_chat_data(self, chat_id: int, chat_data: Data) -> None:
        pass

    # --- not persisted -----------------------------------------------------------------------

    async def get_bot_data(self) -> Data:
        return {}

    async def update_bot_data(self, data: Data) -> None:
        pass

    async def refresh_bot_data(self, bot_data: Data) -> None:
        pass

    async def get_callback_data(self) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        pass

    async def flush(self) -> None:
        pass  # every write above is committed when it returns (or by the inbox, with its update)
