"""The engine: one input event for one person in, a list of outputs out.

Per event: run the features' preparers (outside any transaction), lock the person's
conversation row, restore their frames into a `Turn`, route the event (screens first, then
the command, choice or answer; `routing.py`), save, commit. The turn, the flow and the
parsing of input live in their own modules; this one holds the transaction around them,
the redelivery and outbox rules, and the features' registration.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from bot.engine import habits
from bot.engine.catalog import Catalog
from bot.engine.events import Event, Later, Message, Output, Reminder, UserRef
from bot.engine.feature import Fallback, Feature, Preparer, Producer
from bot.engine.outbox import Outbox, Reply
from bot.engine.routing import Router
from bot.engine.turn import Turn
from storage import outbox as outbox_store
from storage import repo
from storage.db import Database, Step
from storage.models import User, utcnow

log = logging.getLogger(__name__)


class Engine(Router):
    """Runs dialogs for people; adapters call `handle` or `reply`."""

    def __init__(
        self,
        catalog: Catalog,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_text_chars: int = 1000,
        split_seconds: float = 0.0,
        quiet_seconds: float = 0.0,
    ) -> None:
        super().__init__(
            catalog,
            max_text_chars=max_text_chars,
            split_seconds=split_seconds,
            quiet_seconds=quiet_seconds,
        )
        self.db = db
        self.clock = clock
        # run in order before every event's step; see Preparer and Fallback
        self.preparers: dict[str, Preparer] = {}
        self.fallbacks: list[Fallback] = []
        # what makes each kind of `Later` output, after the step has committed
        self.producers: dict[str, Producer] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.outbox = Outbox(db)

    def install(self, features: Sequence[Feature]) -> None:
        """Register `features` in the order given: their screens, interceptors and fallbacks
        run in that order (screens before every interceptor). A name two features claim
        (an action, a command, a preparer, a producer, a reminder kind, a dialog's params,
        the location handler) is refused, so no feature silently replaces another's."""
        for feature in features:
            for table, added in (
                (self.actions, feature.actions),
                (self.commands, feature.commands),
                (self.preparers, feature.preparers),
                (self.producers, feature.producers),
                (self.reminders, feature.reminders),
                (self.dialog_params, {k: dict(v) for k, v in feature.dialog_params.items()}),
            ):
                _add(table, added, feature.name)
            if feature.location is not None:
                if self.on_location is not None:
                    raise ValueError(f"{feature.name}: a second location handler")
                self.on_location = feature.location
            self.screens.extend(feature.screens)
            self.interceptors.extend(feature.interceptors)
            self.command_guards.extend(feature.command_guards)
            self.fallbacks.extend(feature.fallbacks)
            self.gives_way.update(feature.gives_way)

    # -- public --------------------------------------------------------------------------
    async def handle(self, ref: UserRef, event: Event, *, seq: int | None = None) -> list[Output]:
        """Process one event for one person, strictly after their previous one; its outputs.

        `seq` identifies the event at its source (a Telegram update id). An event whose seq
        this person's conversation has already handled — a redelivery after a crash, which
        at-least-once delivery allows — is not processed again: no outputs, no state change.
        The check and the record of the seq are in the same transaction as the step itself.
        Nothing is kept for sending later: adapters that can lose a reply use `reply`.
        """
        return (await self._respond(ref, event, seq, keep=False)).outputs

    async def reply(self, ref: UserRef, event: Event, *, seq: int | None = None) -> Reply:
        """`handle`, with the outputs kept in the outbox in the step's own transaction.

        The adapter sends `reply.pending` and reports to `self.outbox` as it goes. A
        redelivered event (its seq already handled) gets back whatever of its reply is still
        unsent, so it is answered once, whether or not the crash came before the send.
        """
        return await self._respond(ref, event, seq, keep=True)

    async def produce(self, ref: UserRef, outputs: Sequence[Output]) -> list[Output]:
        """`outputs` with every `Later` replaced by what its producer makes.

        Called by adapters after the step has committed (no lock, no transaction held). A
        producer that fails is logged (never its content) and answered with a short apology,
        so the rest of the reply still goes out.
        """
        made: list[Output] = []
        for output in outputs:
            if not isinstance(output, Later):
                made.append(output)
                continue
            producer = self.producers.get(output.kind)
            try:
                if producer is None:
                    raise LookupError(f"no producer for {output.kind!r}")
                made.extend(await producer(ref, output.data))
            except Exception as exc:
                _log_failure(f"could not make {output.kind}", exc)
                made.append(
                    Message(self.catalog.locale(ref.locale).message("something_went_wrong"))
                )
        return made

    # -- internals -----------------------------------------------------------------------
    async def _respond(self, ref: UserRef, event: Event, seq: int | None, keep: bool) -> Reply:
        async with self.person_lock(ref.key):
            prepared = {name: await prepare(ref, event) for name, prepare in self.preparers.items()}
            for attempt in range(5):
                try:
                    return await self._handle_once(ref, event, seq, prepared, keep)
                except DBAPIError as exc:
                    if attempt == 4 or not _retryable(exc):
                        _log_failure("database error", exc)
                        break
                    await asyncio.sleep(0.05 * (2**attempt))
                except Exception as exc:
                    _log_failure("error while handling an event", exc)
                    break
            for fallback in self.fallbacks:
                outputs = fallback(ref, event, prepared)
                if outputs:
                    return Reply(outputs)
        locale = self.catalog.locale(ref.locale)
        return Reply([Message(locale.message("something_went_wrong"))])

    @asynccontextmanager
    async def person_lock(self, key: str) -> AsyncIterator[None]:
        """This process's lock on one person (`UserRef.key`): their steps, and anything sent
        to them out of turn (a reply left over from a crash), one at a time."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _handle_once(
        self, ref: UserRef, event: Event, seq: int | None, prepared: dict[str, Any], keep: bool
    ) -> Reply:
        """One step in one transaction: load (and lock) the rows, dispatch, save, commit.

        Three statements on the way for most steps (load, save, commit), run with Core on
        one connection; an ORM session is opened only if the step's own work asks for
        `turn.session` (entries, actions), in the same transaction. The outputs are
        returned only once the state that produced them is committed.
        """
        async with self.db.step() as unit:
            lock = self.db.is_postgres
            cipher = self.db.cipher
            found = await repo.load_person_core(
                unit,
                channel=ref.channel,
                external_id=ref.external_id,
                cipher=cipher,
                lock=lock,
            )
            if found is None and not await self._may_create(unit, ref, event, seq):
                return Reply()
            if found is None:  # first contact: rows are created through the session
                found = await repo.load_person(
                    unit.session,
                    channel=ref.channel,
                    external_id=ref.external_id,
                    locale=ref.locale,
                    cipher=cipher,
                    lock=lock,
                )
            user, row, state = found
            unit.keep(user)
            if seq is not None and seq in row.seen_seqs:
                log.info("an event already handled was delivered again")
                return await self._unsent(unit, user, seq) if keep else Reply()
            locale = self.catalog.locale(user.locale or ref.locale)
            turn = Turn(self, cipher, unit, user, row, state, locale, self.clock(), ref, prepared)
            turn.seq = seq
            await self.dispatch(turn, event)
            habits.after_step(turn)
            reply = Reply(turn.outputs)
            if not turn.erased:
                assert user.id is not None
                if unit.session_opened:
                    await unit.flush()  # entries, and the user's changed fields (kept)
                else:
                    await repo.save_user_changes(unit, user)
                await repo.save_conversation(
                    unit,
                    user_id=user.id,
                    state=turn.state_json(),
                    step=turn.step,
                    seen_seqs=row.seen_seqs if seq is None else [*row.seen_seqs, seq],
                    cipher=cipher,
                )
                if keep and turn.outputs:
                    reply.outbox_id = await outbox_store.add(
                        unit,
                        user_id=user.id,
                        seq=seq,
                        payload_enc=self.outbox.seal(turn.outputs),
                        now=turn.now,
                        lease=self.outbox.lease,
                        owner=self.outbox.owner,
                    )
            await unit.commit()
            return reply

    async def _may_create(self, unit: Step, ref: UserRef, event: Event, seq: int | None) -> bool:
        """Whether an event for someone without a conversation may create their rows. A
        reminder never creates a person (one for an unknown person was set by someone just
        forgotten); nor does a late copy of an update sent before the person's /forget
        (see storage.outbox.bury)."""
        if isinstance(event, Reminder):
            return await repo.user_exists(unit, channel=ref.channel, external_id=ref.external_id)
        if seq is None:
            return True
        return not await outbox_store.buried(
            unit, channel=ref.channel, external_id=ref.external_id, seq=seq
        )

    async def _unsent(self, unit: Step, user: User, seq: int) -> Reply:
        """What is left of the reply to a redelivered event, now held by this sender; an
        empty reply if it was all sent, or if a live sender still holds it."""
        assert user.id is not None
        stored = await outbox_store.for_seq(unit, user_id=user.id, seq=seq)
        if stored is None:
            return Reply()
        if not await self.outbox.take(unit, stored, self.clock(), force=False):
            return Reply()
        await unit.commit()
        return Reply(self.outbox.open(stored.payload_enc), stored.id, stored.sent)


def _retryable(exc: DBAPIError) -> bool:
    text = type(exc.orig).__name__ + str(exc.orig)
    return any(
        s in text for s in ("locked", "busy", "Deadlock", "Serialization", "could not serialize")
    )


def _log_failure(what: str, exc: BaseException) -> None:
    """Log where it failed, never the message (it may quote what a person wrote)."""
    frames = "".join(
        f"  {f.filename}:{f.lineno} in {f.name}\n" for f in traceback.extract_tb(exc.__traceback__)
    )
    log.error("%s: %s\n%s", what, type(exc).__name__, frames)


def _add(table: dict[str, Any], added: Mapping[str, Any], feature: str) -> None:
    """`added` into `table`, refusing a name already taken."""
    taken = table.keys() & added.keys()
    if taken:
        raise ValueError(f"{feature}: already registered by another feature: {sorted(taken)}")
    table.update(added)
