"""The `kindbot` command line. Each subcommand is a small function; wiring is at the bottom."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.app import App, configure_logging, known_actions, open_app
from bot.config import Settings
from bot.engine.catalog import DialogsInvalid, validate_tree
from bot.failures import Problem, explain
from bot.safety import validate_safety
from storage.crypto import Cipher, MalformedKeyError, new_key, pending_key_file
from storage.db import Database
from storage.files import write_private
from storage.models import utcnow
from storage.personal import dump_person, erase_person, find_users
from storage.rotation import KeyState, RotationReport, key_state, rotate_database

log = logging.getLogger("kindbot")
CHANNELS = ("console", "telegram")


def _settings() -> Settings:
    """The settings; invalid ones raise ValidationError, which `main` prints as one line."""
    return Settings()


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to kindbot in the terminal."""
    from bot.console import chat

    settings = _settings()
    if not sys.stdin.isatty():
        # a script's lines are separate messages with no timing: none is joined or held back
        settings = settings.model_copy(update={"split_seconds": 0, "quiet_seconds": 0})

    async def run() -> None:
        async with open_app(settings) as app:
            await chat(app.engine, args.user, Path(args.files))

    asyncio.run(run())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the Telegram bot: long polling, or a webhook server when WEBHOOK_URL is set."""
    from bot.telegram.application import serve

    asyncio.run(serve(_settings()))  # a StartupProblem is printed as one line by `main`
    return 0


def cmd_dialogs_check(args: argparse.Namespace) -> int:
    """Validate every dialog, crisis pattern and helpline file; list errors with file:line."""
    settings = _settings()
    root = Path(args.dir) if args.dir else settings.dialogs_dir
    errors, catalog = validate_tree(root, default=settings.default_locale, actions=known_actions())
    errors += validate_safety(root, default=settings.default_locale)
    for error in errors:
        print(error)
    if errors or catalog is None:
        print(f"{len(errors)} error(s) in {root}", file=sys.stderr)
        return 1
    count = sum(len(locale.dialogs) for locale in catalog.locales.values())
    print(f"ok: {count} dialog(s) in {len(catalog.locales)} locale(s)")
    return 0


def cmd_dialogs_graph(args: argparse.Namespace) -> int:
    """Print a Mermaid diagram of one dialog, from the machine the bot runs."""
    settings = _settings()
    root = Path(args.dir) if args.dir else settings.dialogs_dir
    errors, catalog = validate_tree(root, default=settings.default_locale, actions=known_actions())
    if catalog is None:
        for error in errors:
            print(error, file=sys.stderr)
        return 1
    machine = catalog.dialog(args.name, args.locale)
    if machine is None:
        print(f"no dialog named {args.name!r}", file=sys.stderr)
        return 1
    print(machine.mermaid(), end="")
    return 0


def cmd_helplines(args: argparse.Namespace) -> int:
    """List every country's crisis contacts: verified or not, unconfirmed lines, sources."""
    import datetime as dt

    from bot.safety.helplines import Helpline, load_helplines

    settings = _settings()
    helplines, errors = load_helplines(Path(args.dir) if args.dir else settings.dialogs_dir)
    if helplines is None:
        for error in errors:
            print(error, file=sys.stderr)
        return 1

    def reach(line: Helpline) -> str:
        ways = [line.phone or "", f"text {line.text.number}" if line.text else ""]
        return " / ".join(w for w in ways if w) or line.website or "-"

    today = dt.date.today()
    unverified = stale = unconfirmed = sources = 0
    for country in [*helplines.countries.values(), helplines.international]:
        if country.verified and country.verified_on is not None:
            age = (today - country.verified_on).days
            stale += age > args.max_age
            status = f"verified by {country.verified_by} on {country.verified_on} ({age} days ago)"
        else:
            unverified += 1
            status = "UNVERIFIED"
        count = country.source_count()
        sources += count
        print(f"{country.code:<13} {country.name} - {status} - {count} source(s)")
        if country.emergency:
            mark = " UNCONFIRMED" if country.emergency_unconfirmed else ""
            detail = f"{len(country.emergency_sources)} source(s)"
            print(f"    emergency {country.emergency} [{detail}]{mark}")
        for regional in country.emergency_by_region:
            mark = " UNCONFIRMED" if regional.unconfirmed else ""
            detail = f"{len(regional.sources)} source(s)"
            print(f"    emergency {regional.number} ({regional.region}) [{detail}]{mark}")
        for line in country.helplines:
            unconfirmed += line.unconfirmed
            mark = " UNCONFIRMED" if line.unconfirmed else ""
            topics = f" (for {', '.join(line.topics)})" if line.topics else ""
            print(
                f"    {line.name}: {reach(line)}{topics} - {line.hours} "
                f"[{len(line.sources)} source(s)]{mark}"
            )
    total = len(helplines.countries) + 1
    print(
        f"{total} file(s): {unverified} unverified, {unconfirmed} unconfirmed line(s), "
        f"{sources} source(s)"
    )
    failed = 0
    if args.require_verified and unverified:
        print(f"{unverified} file(s) not verified by a person yet", file=sys.stderr)
        failed = 1
    if stale:
        print(f"{stale} file(s) not verified for over {args.max_age} days", file=sys.stderr)
        failed = 1
    return failed


async def _find_person(app: App, args: argparse.Namespace) -> int | None:
    """The internal id of `--user` (on `--channel`, or the one channel they are known on)."""
    async with app.db.session() as session:
        users = await find_users(session, external_id=args.user, channel=args.channel)
    if not users:
        print(
            f"kindbot: no user {args.user!r}" + (f" on {args.channel}" if args.channel else ""),
            file=sys.stderr,
        )
        return None
    if len(users) > 1:
        channels = ", ".join(u.channel for u in users)
        print(
            f"kindbot: {args.user!r} is known on {channels}; pick one with --channel",
            file=sys.stderr,
        )
        return None
    return users[0].id


def cmd_export(args: argparse.Namespace) -> int:
    """Write everything stored about one person (JSON, or their entries as CSV)."""
    from bot.export import about, export_document, to_csv, to_json

    settings = _settings()

    async def run() -> bytes | None:
        async with open_app(settings) as app:
            user_id = await _find_person(app, args)
            if user_id is None:
                return None
            async with app.db.session() as session:
                person = await dump_person(session, user_id=user_id, cipher=app.db.cipher)
            locale = person["user"].get("locale") or app.catalog.default
            document = export_document(person, now=utcnow(), about=about(app.catalog, locale))
            if args.format == "csv":
                return to_csv(document, app.catalog, settings.default_timezone)
            return to_json(document)

    data = asyncio.run(run())
    if data is None:
        return 1
    if args.out and args.out != "-":
        mode = write_private(Path(args.out), data)  # an existing file is made 0600 first
        print(
            f"wrote {args.out} (mode {mode:04o}; it is not encrypted: keep it private)",
            file=sys.stderr,
        )
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete every row about one person, in every table."""
    settings = _settings()

    async def run() -> int:
        async with open_app(settings) as app:
            user_id = await _find_person(app, args)
            if user_id is None:
                return 1
            if not args.yes:
                if not sys.stdin.isatty():
                    print(
                        "kindbot: refusing without --yes (standard input is not a terminal)",
                        file=sys.stderr,
                    )
                    return 1
                question = f"Delete everything about {args.user!r}? Type yes: "
                answer = await asyncio.to_thread(input, question)
                if answer.strip().lower() != "yes":
                    print("nothing deleted")
                    return 1
            async with app.db.session() as session, session.begin():
                counts = await erase_person(session, user_id=user_id)
            detail = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()) if n)
            print(f"deleted {sum(counts.values())} row(s) ({detail})")
            return 0

    return asyncio.run(run())


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database's schema to this version's (back it up first; stop kindbot)."""
    from storage import schema
    from storage.crypto import load_or_create_key
    from storage.db import open_readonly

    settings = _settings()
    url = settings.resolved_database_url()

    async def run() -> tuple[str | None, str | None]:
        before = None
        reader = await open_readonly(url)
        if reader is not None:
            try:
                before = await schema.revision(reader)
            finally:
                await reader.dispose()
        key = load_or_create_key(settings.encryption_key, settings.key_file)
        db = await Database.open(url, Cipher.from_string(key), upgrade="always")
        try:
            return before, await schema.revision(db.engine)
        finally:
            await db.close()

    before, after = asyncio.run(run())
    if before == after:
        print(f"kindbot: the database schema is current (revision {after})")
    elif not before:
        print(f"kindbot: created the database schema (revision {after})")
    else:
        print(f"kindbot: migrated the database schema from revision {before} to {after}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check settings, database, key, files, dialogs and helplines; change nothing."""
    from bot.doctor import examine

    findings = asyncio.run(examine(_settings()))
    for finding in findings:
        print(finding.line())
    return 0 if all(f.ok for f in findings) else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    """Print a new encryption key."""
    print(new_key())
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """Re-encrypt everything under a new key (stop kindbot first)."""
    settings = _settings()
    from_env = bool(settings.encryption_key)
    key_file = settings.key_file
    pending = pending_key_file(key_file)
    if from_env and not args.new_key:
        print(
            "kindbot: ENCRYPTION_KEY is set, so give the new key with --new-key "
            "(make one with `kindbot keygen`, store it safely first; `--new-key -` reads it "
            "from standard input)",
            file=sys.stderr,
        )
        return 2
    if not from_env and pending.exists():
        return _resume_rotation(settings)
    if not from_env and not key_file.exists():
        print(
            f"kindbot: no key to rotate (no ENCRYPTION_KEY and no {key_file})",
            file=sys.stderr,
        )
        return 1
    new = args.new_key or new_key()
    if new == "-":
        new = sys.stdin.readline().strip()
    try:
        Cipher([new])  # a malformed new key fails here, before anything changes
    except MalformedKeyError:
        raise Problem(
            "--new-key is not a valid key (32 url-safe base64 bytes): make one with "
            "`kindbot keygen`"
        ) from None
    old = _keys(settings.encryption_key or key_file.read_text(encoding="ascii"))
    if not from_env:
        # The new key is on disk before the database changes: an interruption between
        # the commit and the rename below leaves it in `<key file>.new`, never lost.
        write_private(pending, (new + "\n").encode("ascii"), exclusive=True)

    started = False

    async def run() -> RotationReport:
        nonlocal started
        db = await Database.open(settings.resolved_database_url(), Cipher(old), upgrade="if-new")
        try:
            started = True
            return await rotate_database(db, old=old, new=new)
        finally:
            await db.close()

    try:
        report = asyncio.run(run())
    except BaseException:
        if not from_env and not started:
            pending.unlink(missing_ok=True)  # the database was never touched
        elif not from_env:
            _settle_failed_rotation(settings, old=old, new=new)
        raise
    print(f"re-encrypted {report.values} value(s) in {len(report.tables)} table(s)")
    if from_env:
        print(
            "Now set ENCRYPTION_KEY to the new key (the old one no longer reads this "
            "database) and start kindbot again."
        )
    else:
        _finish_rotation(settings)
    return 0


def _keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def _finish_rotation(settings: Settings) -> None:
    """The database is under the pending key: make it the key file."""
    os.replace(pending_key_file(settings.key_file), settings.key_file)
    print(
        f"{settings.key_file} now holds the new key. Back it up: without it, stored "
        "entries cannot be read."
    )


def _state(settings: Settings, *, current: list[str], pending: list[str]) -> KeyState:
    url = settings.resolved_database_url()
    return asyncio.run(key_state(url, current=current, pending=pending))


def _settle_failed_rotation(settings: Settings, *, old: list[str], new: str) -> None:
    """After a failed rotation, keep the pending key only while it may be the one needed.

    The key check moves to the new key in the rotation's own transaction: if the new key
    reads it, the rotation committed (finish it); if not, the new key encrypted nothing
    (remove it); if the database cannot be asked, keep it for `kindbot rotate-key`.
    """
    pending = pending_key_file(settings.key_file)
    try:
        state = _state(settings, current=old, pending=[new])
    except Exception:
        print(
            f"kindbot: the rotation failed and {pending} is kept: run `kindbot rotate-key` "
            "again once the database can be reached (it finishes or explains)",
            file=sys.stderr,
        )
        return
    if state is KeyState.PENDING:
        print("the rotation was committed before it failed; finishing it", file=sys.stderr)
        _finish_rotation(settings)
    else:
        pending.unlink(missing_ok=True)


def _resume_rotation(settings: Settings) -> int:
    """`kindbot rotate-key` found `<key file>.new`: finish that rotation, or say what to do."""
    key_file = settings.key_file
    pending = pending_key_file(key_file)
    current = _keys(key_file.read_text(encoding="ascii")) if key_file.exists() else []
    state = _state(settings, current=current, pending=_keys(pending.read_text(encoding="ascii")))
    if state is KeyState.PENDING:
        print(f"finishing an interrupted rotation: {pending} reads the database")
        _finish_rotation(settings)
        return 0
    if state is KeyState.NEITHER:
        raise Problem(
            f"neither {key_file} nor {pending} reads this database: put the key it was "
            "written with back into the key file (from your backup), or set ENCRYPTION_KEY"
        )
    print(
        f"kindbot: {pending} exists: an earlier rotation was interrupted before it changed "
        f"the database ({key_file} still reads it; {pending} encrypted nothing). Remove "
        f"{pending}, then run `kindbot rotate-key` again.",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    # `--debug` before or after the subcommand; SUPPRESS keeps a subcommand's absent flag
    # from overwriting the one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on a failure, show the full error (traceback) after its one-line explanation",
    )
    parser = argparse.ArgumentParser(prog="kindbot", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", parents=[common], help=cmd_chat.__doc__)
    chat.add_argument("--user", default="local", help="who you are in the database")
    chat.add_argument("--files", default=".", help="where charts and exports are saved")
    chat.set_defaults(func=cmd_chat)

    run = sub.add_parser("run", parents=[common], help=cmd_run.__doc__)
    run.set_defaults(func=cmd_run)

    export = sub.add_parser("export", parents=[common], help=cmd_export.__doc__)
    export.add_argument("--user", required=True, help="the person's id on their channel")
    export.add_argument("--channel", choices=CHANNELS, help="needed if known on several")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", help="file to write (mode 0600; default: standard output)")
    export.set_defaults(func=cmd_export)

    forget = sub.add_parser("forget", parents=[common], help=cmd_forget.__doc__)
    forget.add_argument("--user", required=True, help="the person's id on their channel")
    forget.add_argument("--channel", choices=CHANNELS, help="needed if known on several")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    forget.set_defaults(func=cmd_forget)

    migrate = sub.add_parser("migrate", parents=[common], help=cmd_migrate.__doc__)
    migrate.set_defaults(func=cmd_migrate)

    doctor = sub.add_parser("doctor", parents=[common], help=cmd_doctor.__doc__)
    doctor.set_defaults(func=cmd_doctor)

    keygen = sub.add_parser("keygen", parents=[common], help=cmd_keygen.__doc__)
    keygen.set_defaults(func=cmd_keygen)

    rotate = sub.add_parser("rotate-key", parents=[common], help=cmd_rotate_key.__doc__)
    rotate.add_argument(
        "--new-key",
        help="the new key ('-' reads it from standard input); required when ENCRYPTION_KEY "
        "is set, else generated and written to the key file",
    )
    rotate.set_defaults(func=cmd_rotate_key)

    dialogs = sub.add_parser("dialogs", parents=[common], help="check or draw dialog files")
    dialogs_sub = dialogs.add_subparsers(dest="dialogs_command", required=True)
    check = dialogs_sub.add_parser("check", parents=[common], help=cmd_dialogs_check.__doc__)
    check.add_argument("--dir", help="dialogs folder (default: DIALOGS_DIR)")
    check.set_defaults(func=cmd_dialogs_check)
    graph = dialogs_sub.add_parser("graph", parents=[common], help=cmd_dialogs_graph.__doc__)
    graph.add_argument("name")
    graph.add_argument("--locale", default=None)
    graph.add_argument("--dir", help="dialogs folder (default: DIALOGS_DIR)")
    graph.set_defaults(func=cmd_dialogs_graph)

    safety = sub.add_parser("safety", parents=[common], help="the crisis screen's semantic model")
    safety_sub = safety.add_subparsers(dest="safety_command", required=True)
    build = safety_sub.add_parser("build", parents=[common], help=cmd_safety_build.__doc__)
    build.add_argument("--check", action="store_true", help="compare, do not write (for CI)")
    build.add_argument("--examples", help="examples folder (default: the shipped one)")
    build.add_argument(
        "--thresholds-only",
        action="store_true",
        help="keep the shipped vectors (examples unchanged) and set the thresholds again",
    )
    build.set_defaults(func=cmd_safety_build)

    helplines = sub.add_parser("helplines", parents=[common], help=cmd_helplines.__doc__)
    helplines.add_argument("--dir", help="dialogs folder (default: DIALOGS_DIR)")
    helplines.add_argument(
        "--max-age",
        type=int,
        default=365,
        help="exit 1 if a verified file was verified longer ago (days; default 365)",
    )
    helplines.add_argument(
        "--require-verified",
        action="store_true",
        help="exit 1 while any file is unverified (use before a deployment)",
    )
    helplines.set_defaults(func=cmd_helplines)
    return parser


def cmd_safety_build(args: argparse.Namespace) -> int:
    """Rebuild the crisis screen's semantic model file from its examples (--check: compare)."""
    import numpy as np

    from bot.safety import semantic

    folder = Path(args.examples) if args.examples else semantic.EXAMPLES
    try:
        examples = semantic.load_examples(folder)
        pieces = semantic.long_sentences(folder)
        embedder = semantic.E5Embedder()
    except (semantic.ExamplesInvalid, semantic.ModelUnavailable) as exc:
        print(f"kindbot: {exc}", file=sys.stderr)
        return 1
    path = folder / semantic.MODEL_FILE
    piece_vectors: np.ndarray | None
    if args.thresholds_only:  # same examples, same vectors: only the thresholds again
        semantic.load_model(path, examples, embedder.name, pieces)  # refuses a stale file
        vectors = semantic.stored_vectors(path)
        piece_vectors = semantic.stored_pieces(path)
    else:
        vectors = semantic.embed_examples(examples, embedder)
        vectors = vectors.astype(np.float16).astype(np.float32)
        piece_vectors = embedder.embed(pieces).astype(np.float16).astype(np.float32)
    if args.check:
        # The stored vectors are the examples' (within the model's run-to-run noise), and the
        # shipped thresholds are what dev gives on those stored vectors.
        try:
            moved = semantic.threshold_drift(path, examples, embedder.name, pieces)
            stored_pieces = semantic.stored_pieces(path)
        except semantic.ModelUnavailable as exc:
            print(f"kindbot: {exc}", file=sys.stderr)
            return 1
        drift = float(np.abs(semantic.stored_vectors(path) - vectors).max())
        if (stored_pieces is None) != (piece_vectors is None or not pieces):
            drift = float("inf")
        elif stored_pieces is not None and piece_vectors is not None:
            drift = max(drift, float(np.abs(stored_pieces - piece_vectors).max()))
        if drift > 0.01 or moved > 1e-4:
            print(
                f"kindbot: {path.name} does not match its examples (vectors differ by up to "
                f"{drift:.4f}, thresholds by {moved:.4f}): run `kindbot safety build`",
                file=sys.stderr,
            )
            return 1
        print(f"{path.name} matches its {len(examples)} examples and {embedder.name}")
        return 0
    model = semantic.build(examples, vectors, embedder.name, pieces, piece_vectors)
    semantic.save(path, model, vectors, piece_vectors)
    splits = {s: sum(1 for e in examples if e.split == s) for s in ("train", "dev", "test")}
    print(
        f"wrote {path} from {len(examples)} examples ({splits}); "
        f"crisis at p >= {model.crisis_at:.3f}, gentle check at p >= {model.check_at:.3f}"
    )
    if model.pieces is not None:
        print(
            f"long messages' sentences: {len(pieces)} everyday sentences added as safe; "
            f"a sentence at p >= {model.pieces.check_at:.3f} counts"
        )
    return 0


# Options whose value may begin with "-": a key is url-safe base64, so one in 64 starts with
# "-", which argparse would read as another option ("expected one argument").
_VALUES_MAY_START_WITH_DASH = ("--new-key",)


def _glued(argv: Sequence[str]) -> list[str]:
    """`--new-key -abc…` as `--new-key=-abc…`, which argparse reads as the value it is."""
    out: list[str] = []
    words = list(argv)
    while words:
        word = words.pop(0)
        if word in _VALUES_MAY_START_WITH_DASH and words and words[0].startswith("-"):
            word = f"{word}={words.pop(0)}"
        out.append(word)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a failure a person can fix is one line on stderr and exit 2."""
    args = build_parser().parse_args(_glued(sys.argv[1:] if argv is None else argv))
    settings: Settings | None = None
    try:
        settings = _settings()
        configure_logging(settings.log_level, settings.log_format)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except DialogsInvalid as exc:
        print("kindbot: the dialog files have errors:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = explain(exc, settings)
        if line is None:
            raise  # a bug, not a setting: the whole traceback
        print(f"kindbot: {line}", file=sys.stderr)
        if _debugging(args, settings):
            traceback.print_exception(exc, file=sys.stderr)
        return 2


def _debugging(args: argparse.Namespace, settings: Settings | None) -> bool:
    level = settings.log_level if settings else os.environ.get("LOG_LEVEL", "")
    return bool(getattr(args, "debug", False)) or level.upper() == "DEBUG"


if __name__ == "__main__":
    sys.exit(main())
