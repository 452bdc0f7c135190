"""manage.py ate: the operations toolkit on the command line.

    manage.py ate check [--format text|json]            exit status 1 when there are findings, 2 on errors
    manage.py ate export [-o FILE]                      every actor and worker as JSON lines (stdout by default)
    manage.py ate import FILE [--dry-run] [--policy skip|overwrite-if-version] [--format text|json]
                                                        FILE "-" is stdin
    manage.py ate get actors|workers [-o table|json|yaml]
    manage.py ate flush --environment NAME [--scope records|all] [--format text|json]
    manage.py ate reset --environment NAME (--actors-namespace NS | --actors-template NS/NAME |
                        --actors-status STATUS | --workers-pool NS/POOL) [--dry-run] [--format text|json]

The store is the one of the dashboard (ATEDASH_REDIS_URL). Changes (import, flush) are audited like the
pages' (who is cli:<os user>, or ATEDASH_OPERATOR); the audit lines go to stderr with the other logs.

Standard output is the command's output only: with --format json / -o json exactly one JSON document
(export: one JSON document per line), so that `| jq` always works. Text output (tables, yaml, reports)
escapes control characters (a key holding ESC, CR or BEL never reaches the terminal raw).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from google.protobuf import json_format

from atedash.accounts.audit import audit, cli_operator
from atedash.core.app import current_app
from atedash.core.logging_handlers import audit_to_stderr

if TYPE_CHECKING:
    from argparse import ArgumentParser

    from storage.ateapi_pb2 import Actor, Worker
    from storage.backup import ImportEntry, ImportResult

NONE = "<none>"

# C0 controls, DEL and C1 controls (CSI U+009B included): terminals act on them; and the bidi
# overrides and isolates, which reorder what a terminal shows ("Trojan Source").
_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
# The same but newline and tab, for whole lines of text output (fields are escaped on their own).
_CONTROL_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(value: object) -> str:
    """One field of text output: every control character written as an escape (\\x1b, \\r, \\n)."""
    return _CONTROL.sub(_escape_char, str(value))


def printable_text(text: str) -> str:
    """Lines of text output: control characters escaped, the lines' own newlines and tabs kept."""
    return _CONTROL_IN_TEXT.sub(_escape_char, text)


def json_document(doc: object, indent: int | None = 2, ensure_ascii: bool = True) -> str:
    """One JSON document for stdout. json.dumps escapes C0 controls itself; DEL, the C1 controls and
    the bidi controls (which only occur inside strings) become \\u escapes too: the same document."""
    text = json.dumps(doc, indent=indent, ensure_ascii=ensure_ascii)
    return re.sub(f"[\x7f-\x9f{_BIDI}]", lambda m: f"\\u{ord(m.group()):04x}", text)


def _status(actor: Actor) -> str:
    from storage.ateapi_pb2 import Actor

    try:
        return Actor.Status.Name(actor.status).removeprefix("STATUS_")
    except ValueError:
        return str(actor.status)


def actor_row(a: Actor) -> list[str]:
    pod = (
        f"{a.ateom_pod_namespace}/{a.ateom_pod_name}"
        if a.ateom_pod_namespace and a.ateom_pod_name
        else a.ateom_pod_name
    )
    return [
        a.actor_template_namespace,
        a.actor_template_name,
        a.actor_id,
        _status(a),
        pod,
        a.ateom_pod_ip,
        str(a.version),
    ]


def worker_row(w: Worker) -> list[str]:
    return [w.worker_namespace, w.worker_pool, w.worker_pod, w.ip, w.actor_id, str(w.version)]


ACTOR_COLUMNS = ["NAMESPACE", "TEMPLATE", "ID", "STATUS", "ATEOM POD", "ATEOM IP", "VERSION"]
WORKER_COLUMNS = ["NAMESPACE", "POOL", "POD", "IP", "ACTOR", "VERSION"]


def format_table(columns: list[str], rows: Sequence[Sequence[str | None]]) -> str:
    """kubectl's layout: upper-case headers, left-aligned columns, three spaces apart, <none> for empty."""
    cells = [[printable(cell) if cell else NONE for cell in row] for row in rows]  # "" and None
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = []
    for row in [columns] + cells:
        lines.append("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def _allowed(command: str, environment: str, nothing: str) -> None:
    """CommandError unless removals are allowed here and ``environment`` names this one (a reset or
    flush typed for staging never runs in production)."""
    if not settings.ATEDASH_ALLOW_FLUSH:
        raise CommandError(f"{command} is turned off for this environment (set ATEDASH_ALLOW_FLUSH=1 to allow it)")
    if environment != settings.ATEDASH_ENVIRONMENT:
        raise CommandError(
            f"--environment {environment!r} does not match this environment "
            f"({settings.ATEDASH_ENVIRONMENT!r}); {nothing}"
        )


def _import_summary(result: ImportResult, file: str, policy: str, dry_run: bool) -> str:
    """The one-line report of ``manage.py ate import``."""
    verb = "would be" if dry_run else "were"
    return (
        f"{result.records} records in {file}: {result.created} {verb} created, "
        f"{result.overwritten} {verb} overwritten, {result.skipped} {verb} skipped"
        + (f", {result.corrupt} undecodable (not written; --include-corrupt writes them)" if result.corrupt else "")
        + (
            f", {result.unreadable} the ate server cannot read (not written; --allow-unreadable writes them)"
            if result.unreadable
            else ""
        )
        + (
            f", {result.unreadable_written} the ate server cannot read {verb} written"
            if result.unreadable_written
            else ""
        )
        + f" (policy {policy}{', dry run: nothing was written' if dry_run else ''})"
    )


class Command(BaseCommand):
    help = "Operations toolkit: consistency check, export/import, get, flush."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        check = sub.add_parser("check", help="cross-check actors, workers and locks (exit status 1 on findings)")
        check.add_argument("--format", choices=["text", "json"], default="text")
        export = sub.add_parser("export", help="write every actor and worker as JSON lines")
        export.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
        imp = sub.add_parser("import", help="restore a JSON-lines export")
        imp.add_argument("file", help='the export file ("-" for standard input)')
        imp.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
        imp.add_argument(
            "--include-corrupt",
            action="store_true",
            help="also write back records exported as undecodable (only where the key is free; "
            "with --allow-unreadable only, as the ate server cannot read them either)",
        )
        imp.add_argument(
            "--allow-unreadable",
            action="store_true",
            help="also write records the ate server cannot read (unknown fields, binary, ids with ':'...), "
            "to restore a damaged store byte for byte; they are counted, and flagged in the dashboard",
        )
        imp.add_argument(
            "--policy",
            choices=["skip", "overwrite-if-version"],
            default="skip",
            help="for keys that exist: leave them (skip, the default), or overwrite only when the "
            "stored version is the one in the file",
        )
        imp.add_argument("--format", choices=["text", "json"], default="text", help="the report's format")
        get = sub.add_parser("get", help="list actors or workers as kubectl ate get does")
        get.add_argument("kind", choices=["actors", "workers", "actor", "worker"])
        get.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
        flush = sub.add_parser("flush", help="remove the ate records (or everything) from the store")
        flush.add_argument(
            "--environment", required=True, help="the name of this environment (ATEDASH_ENVIRONMENT), typed to confirm"
        )
        flush.add_argument(
            "--scope",
            choices=["records", "all"],
            default="records",
            help="records: actor:*, worker:*, lock:* (default); all: FLUSHALL on every primary",
        )
        flush.add_argument("--format", choices=["text", "json"], default="text", help="the report's format")

        reset = sub.add_parser("reset", help="reset one scope: actors of a namespace, template or status, or a pool")
        reset.add_argument(
            "--environment", required=True, help="the name of this environment (ATEDASH_ENVIRONMENT), typed to confirm"
        )
        which = reset.add_mutually_exclusive_group(required=True)
        which.add_argument("--actors-namespace", metavar="NS")
        which.add_argument("--actors-template", metavar="NS/NAME")
        which.add_argument("--actors-status", metavar="STATUS")
        which.add_argument("--workers-pool", metavar="NS/POOL")
        reset.add_argument("--dry-run", action="store_true", help="walk and report, change nothing")
        reset.add_argument("--format", choices=["text", "json"], default="text")

    def execute(self, *args: Any, **options: Any) -> str | None:
        # stdout is this command's output (a JSON document, a table): audit lines go to stderr.
        with audit_to_stderr():
            return super().execute(*args, **options)

    def say(self, text: str, ending: str = "\n") -> None:
        """A line (or lines) of text output on stdout, control characters escaped."""
        self.stdout.write(printable_text(text), ending=ending)

    def warn(self, text: str) -> None:
        """A line on stderr, control characters escaped."""
        self.stderr.write(printable_text(text))

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        from storage.errors import STORE_ERRORS

        try:
            return getattr(self, "_" + subcommand.replace("-", "_"))(options)
        except STORE_ERRORS as exc:
            # Exit status 2: the command could not do its work (1 is "check found something").
            raise CommandError(
                f"the store {current_app().store.address} is unreachable or refused: {type(exc).__name__}: {exc}",
                returncode=2,
            ) from None

    # ------------------------------------------------------------------------------ check

    def _check(self, options: dict[str, Any]) -> None:
        from storage.check import run_check

        report = run_check(current_app().store.persistence(), stale_lock_s=settings.ATEDASH_STALE_LOCK_SECONDS)
        if options["format"] == "json":
            self.stdout.write(json_document(report.to_dict()))
        else:
            self.say(
                f"checked {report.actors} actors, {report.workers} workers, {report.locks} locks "
                f"({report.keys_scanned} keys) in {report.duration_s:.2f} s: "
                + ("no findings" if report.ok else f"{len(report.findings)} finding(s)")
                + (
                    f"; {report.unreadable_by_server} record(s) the ate server cannot read"
                    if report.unreadable_by_server
                    else ""
                )
            )
            for f in report.findings:
                keys = " ".join(printable(k) for k in f.keys)
                self.say(f"{printable(f.kind)}\t{keys}\t{printable(f.message)}")
                if f.repair is not None:
                    self.say("\trepair: " + f.repair.describe().replace("\n", "\n\t"))
                elif f.note:
                    self.say(f"\tno automatic repair: {printable(f.note)}")
        if not report.ok:
            sys.exit(1)

    # ------------------------------------------------------------------------------ export

    def _export(self, options: dict[str, Any]) -> None:
        from storage.backup import ExportResult, iter_export

        result = ExportResult()
        p = current_app().store.persistence()
        target = options["output"]
        if target == "-":
            out = cast("TextIO", self.stdout._out) if hasattr(self.stdout, "_out") else sys.stdout
            for line in iter_export(p, result=result):
                out.write(line)
            out.flush()
        else:
            # Written beside the target and renamed at the end: a failed export leaves no half file.
            import os
            import tempfile

            directory = os.path.dirname(os.path.abspath(target))
            fd, tmp = tempfile.mkstemp(prefix=".atedash-export-", suffix=".jsonl", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                    for line in iter_export(p, result=result):
                        out.write(line)
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        self.warn(
            f"exported {result.records} records ({result.actors} actors, {result.workers} workers"
            f"{f', {result.corrupt} corrupt' if result.corrupt else ''})" + (f" to {target}" if target != "-" else "")
        )

    # ------------------------------------------------------------------------------ import

    def _import(self, options: dict[str, Any]) -> None:
        from storage.backup import ImportFileError, import_records

        who = cli_operator()
        source = options["file"]
        if source == "-":
            source = options.get("stdin") or sys.stdin
        dry_run, policy = options["dry_run"], options["policy"]

        def on_write(entry: ImportEntry, outcome: str, version_before: int | None) -> None:
            audit(
                who,
                f"import.{outcome}",
                key=entry.key,
                version_before=version_before,
                version_after=entry.version,
                changed_fields={},
                stream=False,
                file=options["file"],
                policy=policy,
                app=current_app(),
            )

        try:
            result = import_records(
                current_app().store.persistence(),
                source,
                policy=policy,
                dry_run=dry_run,
                on_write=on_write,
                include_corrupt=options["include_corrupt"],
                allow_unreadable=options.get("allow_unreadable", False),
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        except FileNotFoundError as exc:
            raise CommandError(f"no such file: {exc.filename}") from None
        as_json = options.get("format") == "json"
        if as_json:
            doc = result.to_dict() | {"file": options["file"]}
            if dry_run:
                doc["details"] = [
                    {"line": line, "key": key, "outcome": outcome, "stored_version": stored, "version": version}
                    for line, key, outcome, stored, version in sorted(d for d in result.details if d[2] != "created")
                ]
            self.stdout.write(json_document(doc))
        else:
            self.say(_import_summary(result, printable(options["file"]), policy, dry_run))
        if dry_run:
            if not as_json:
                self._write_dry_run_details(result)
        else:
            audit(
                who,
                "import",
                key=None,
                file=options["file"],
                policy=policy,
                **{k: v for k, v in result.to_dict().items() if k not in ("policy", "dry_run")},
                app=current_app(),
            )
            current_app().records_changed()

    def _write_dry_run_details(self, result: ImportResult) -> None:
        """What differs from a plain restore into an empty store: overwrites, skips, undecodable lines."""
        notable = sorted(d for d in result.details if d[2] != "created")
        for line, key, outcome, stored, version in notable[:100]:
            self.say(
                f"  line {line}: {printable(key)}: would be {outcome}"
                + (f" (stored version {stored}, file version {version})" if stored is not None else "")
            )
        if len(notable) > 100:
            self.say(f"  ... and {len(notable) - 100} more")

    # ------------------------------------------------------------------------------ get

    def _get(self, options: dict[str, Any]) -> None:
        kind = options["kind"].rstrip("s") + "s"
        p = current_app().store.persistence()
        scan = p.scan_actors if kind == "actors" else p.scan_workers
        records, corrupt, cursor = [], [], None
        while True:
            page = scan(cursor=cursor, limit=1000)
            records.extend(page.records)
            corrupt.extend(page.corrupt)
            cursor = page.next_cursor
            if cursor is None:
                break
        if kind == "actors":
            records.sort(key=lambda a: (a.actor_template_namespace, a.actor_template_name, a.actor_id))
        else:
            records.sort(key=lambda w: (w.worker_namespace, w.worker_pool, w.worker_pod))
        fmt = options["output"]
        if fmt == "table":
            if records:
                columns, row = (ACTOR_COLUMNS, actor_row) if kind == "actors" else (WORKER_COLUMNS, worker_row)
                self.say(format_table(columns, [row(r) for r in records]))
            else:
                self.warn(f"No {kind} found.")
        else:
            doc = {"items": [json_format.MessageToDict(r) for r in records]}
            if fmt == "json":
                self.stdout.write(json_document(doc, indent=4, ensure_ascii=False))
            else:
                import yaml

                # YAML escapes control characters itself, but writes bidi controls raw: a value
                # holding one is dumped again with every non-ASCII character escaped (same data).
                text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
                if _CONTROL_IN_TEXT.search(text):
                    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=False)
                self.stdout.write(text, ending="")
        for entry in corrupt:
            self.warn(f"corrupt record {printable(entry.key)}: {printable(entry.error)} ({printable(entry.preview)})")

    # ------------------------------------------------------------------------------ flush

    def _reset(self, options: dict[str, Any]) -> None:
        from storage.reset import Scope, ScopeError, reset_scope

        _allowed("reset", options["environment"], "nothing changed")
        kind = next(k for k in ("actors_namespace", "actors_template", "actors_status", "workers_pool") if options[k])
        try:
            scope = Scope.parse(kind.replace("_", "-"), options[kind])
        except ScopeError as exc:
            raise CommandError(f"--{kind.replace('_', '-')}: {exc.message}") from None
        operator = cli_operator()

        def on_change(action: str, key: str, details: dict) -> None:
            audit(
                operator,
                action,
                key=key,
                via="reset",
                scope=f"{scope.kind} {scope.value}",
                **details,
                app=current_app(),
            )

        report = reset_scope(current_app().store.persistence(), scope, dry_run=options["dry_run"], on_change=on_change)
        if not options["dry_run"]:
            audit(
                operator,
                "reset",
                key=None,
                scope=f"{scope.kind} {scope.value}",
                counts=report.counts(),
                app=current_app(),
            )
            current_app().records_changed(recount=True)
        if options["format"] == "json":
            self.stdout.write(json_document(report.to_dict()))
            return
        verb = "would " if options["dry_run"] else ""
        counts = report.counts()
        dry = "dry run: " if options["dry_run"] else ""
        self.say(
            f"{dry}reset of {printable(scope.describe())} on {settings.ATEDASH_ENVIRONMENT}: "
            f"{verb}delete {counts['actors_deleted']} actors and {counts['workers_deleted']} workers, "
            f"{verb}free {counts['workers_freed']} workers, {verb}release {counts['locks_released']} locks; "
            f"{counts['skipped']} skipped"
        )
        titles = {
            "actors_by_status": "actors by status",
            "actors_by_namespace": "actors by template namespace",
            "workers_by_pool": "workers by pool",
            "workers_outside_scope": "workers outside the scope's namespace",
        }
        for name, counted in report.breakdown().items():
            if counted:
                shown = ", ".join(f"{printable(k) if k else '(none)'} {n}" for k, n in counted.items())
                self.say(f"{titles[name]}: {shown}")
        for entry in report.to_dict()["skipped"]:
            self.say(f"skipped {printable(entry['key'])}: {printable(entry['why'])}")
        for entry in report.to_dict()["corrupt"]:
            self.say(f"corrupt {printable(entry['key'])}: {printable(entry['error'])}")

    def _flush(self, options: dict[str, Any]) -> None:
        scope = options["scope"]
        _allowed("flush", options["environment"], "nothing removed")
        p = current_app().store.persistence()
        removed = p.clear_ate_records() if scope == "records" else p.debug_clear_all()
        rows: list[dict[str, Any]] = [
            {"node": c.node, "actors": c.actors, "workers": c.workers, "locks": c.locks, "other": c.other}
            for c in removed
        ]
        totals = {k: sum(r[k] for r in rows) for k in ("actors", "workers", "locks", "other")}
        # After the flush, so that the entry survives a FLUSHALL.
        audit(
            cli_operator(),
            "flush",
            key=None,
            scope="ate" if scope == "records" else "all",
            removed=rows,
            removed_total=totals,
            app=current_app(),
        )
        current_app().records_changed()
        if options.get("format") == "json":
            doc = {
                "environment": settings.ATEDASH_ENVIRONMENT,
                "scope": "ate" if scope == "records" else "all",
                "removed": rows,
                "removed_total": totals,
            }
            self.stdout.write(json_document(doc))
            return
        for r in rows:
            self.say(
                f"{r['node']}: removed {r['actors']} actors, {r['workers']} workers, "
                f"{r['locks']} locks, {r['other']} other keys"
            )
        self.say(
            f"flushed {settings.ATEDASH_ENVIRONMENT} ({'ate records' if scope == 'records' else 'everything'}): "
            f"{sum(totals.values())} keys removed"
        )
