"""What the record pages need to know about each record kind, so that atedash/records/views.py can serve
list, detail, create, edit, conflict and delete once for every kind.

A kind is a `RecordPages` subclass: its storage.records.RecordKind, its URL parameters, its forms, the
labels of its fields, how a list is filtered and its rows rendered, and what its detail page shows
next to the fields (templates/records/_<name>_related.html). A third kind is one more subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils.safestring import SafeString

import storage
from atedash.core import error_pages
from atedash.core.links import record_url
from atedash.records import listing
from atedash.records.forms import (
    ActorCreateForm,
    ActorEditForm,
    ActorFilterForm,
    ListForm,
    RecordEditForm,
    WorkerCreateForm,
    WorkerEditForm,
    WorkerFilterForm,
    message_value,
    status_value,
)
from storage import keys
from storage.ateapi_pb2 import Actor, Worker
from storage.check import related
from storage.matches import WalkFilter, actor_walk, worker_walk
from storage.persistence import Persistence
from storage.records import ACTORS, WORKERS, Record, RecordKind

if TYPE_CHECKING:
    from atedash.core.app import Application

SUSPENDED = Actor.STATUS_SUSPENDED


def status_name(actor: Actor) -> str:
    """An actor's status by its short name ("RUNNING"), or its number when this schema does not know it."""
    return message_value(actor, "status")


class RecordPages:
    """One record kind as the pages see it (subclasses set the class attributes and the hooks)."""

    do_not_call_in_templates = True  # the class itself is the template variable `pages`

    kind: ClassVar[RecordKind]
    name: ClassVar[str]  # "actor": URL names (actor_detail), element ids (actor-fields), audit actions
    plural: ClassVar[str]
    title: ClassVar[str]
    url_params: ClassVar[tuple[str, ...]]  # the URL's path parameters, in order
    scan_method: ClassVar[str]  # the Persistence method that lists a page of them
    title_id: ClassVar[str]  # element id of the record's name in the page heading
    columns: ClassVar[tuple[str, ...]]  # the list table's headings
    key_columns: ClassVar[int]  # how many columns a corrupt row's key spans
    filter_form: ClassVar[type[ListForm]]
    create_form: ClassVar[type[forms.Form]]
    edit_form: ClassVar[type[RecordEditForm]]
    id_field: ClassVar[str]  # the create form's field that names the record (AlreadyExists goes there)
    create_note: ClassVar[str] = ""  # said when a record was created
    create_intro: ClassVar[str] = ""  # said above the create form
    title_copy: ClassVar[str]  # what the copy button of the page heading's name copies
    # Fields whose value an operator pastes elsewhere: a copy button beside them (static/js/copy.js).
    copyable: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def count_of(cls, stats: Any, values: dict[str, Any]) -> tuple[int, str] | None:
        return None

    # Filters of an incident search (rare matches: a page of the list may show none of them).
    incident_filters: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def incident(cls, values: dict[str, Any]) -> bool:
        return any(values.get(name) for name in cls.incident_filters)

    # Actions that set fields consistently (atedash/records/edit.py INTENTS): one URL each.
    intents: ClassVar[tuple[str, ...]] = ()
    error_columns: ClassVar[int]  # the rest of a corrupt row
    # "Show all matches": the store walk of the list's filters (storage/matches.py, called with
    # filters()), and the bulk actions its matches offer (storage/bulk.py ACTIONS).
    walk: ClassVar[Callable[..., WalkFilter]]
    bulk_actions: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.error_columns = len(cls.columns) - cls.key_columns

    # --- identity ---------------------------------------------------------------------------

    @classmethod
    def args(cls, ident: dict[str, str]) -> list[str]:
        """The URL parameters (as Django passes them) in order."""
        return [ident[name] for name in cls.url_params]

    @classmethod
    def key(cls, args: list[str]) -> str:
        return cls.kind.key_of_parts(*args)

    @classmethod
    def label(cls, key: str | bytes) -> str:
        """The record's name as pages show it: the id, ns/pool/pod, or the escaped key."""
        parts = cls.kind.parts(key)
        return "/".join(parts) if parts is not None else key_text(key)

    @classmethod
    def url_name(cls, page: str) -> str:
        return f"{cls.name}_{page}"

    @classmethod
    def urls(cls, key: str | bytes | None = None) -> dict[str, str]:
        """The kind's page URLs; with ``key``, the record's too (atedash/core/links.py)."""
        out = {page: reverse(cls.url_name(page)) for page in ("list", "create")}
        if key is not None:
            out.update((page, record_url(key, page)) for page in ("detail", "edit", "delete", *cls.intents))
        return out

    @classmethod
    def read(cls, p: Persistence, key: str | bytes) -> Record:
        """The stored record (NotFound: the 404 page; CorruptRecord: the error page)."""
        return p.get_record(cls.kind, key)

    # --- list -------------------------------------------------------------------------------

    @classmethod
    def scan(cls, p: Persistence) -> Callable[..., storage.Page]:
        return getattr(p, cls.scan_method)

    @classmethod
    def filters(cls, values: dict[str, Any]) -> dict[str, Any]:
        """The filter form's values as storage's filters: the paged scan's and the walk's."""
        raise NotImplementedError

    @classmethod
    def filter_params(cls) -> tuple[str, ...]:
        """The list's filters in its URL (the filter form's own fields, in order)."""
        return tuple(name for name in cls.filter_form.base_fields if name not in ListForm.base_fields)

    @classmethod
    def walk_of(cls, values: dict[str, Any]) -> WalkFilter:
        return cls.walk(**cls.filters(values))

    @classmethod
    def rows_html(cls, records: list[Any], unreadable: dict | None = None, *, selectable: bool = False) -> SafeString:
        """The list's rows (atedash/records/listing.py); ``unreadable``: Page.unreadable, flagged on their rows;
        ``selectable``: each with its bulk checkbox (the matches page, for admins)."""
        raise NotImplementedError

    # --- detail, create, delete ---------------------------------------------------------------

    @classmethod
    def field_rows(cls, record: Record) -> list[dict[str, Any]]:
        """The record's fields as the detail page lists them: identity, version, the editable ones."""
        form = cls.edit_form

        def row(name: str) -> dict[str, Any]:
            label = form.base_fields[name].label or name.capitalize()
            value = message_value(record, name)
            return {
                "name": name,
                "label": label,
                "value": value,
                "copy": name in cls.copyable and len(str(value)) <= 4096,
            }

        return [row(name) for name in (*form.IMMUTABLE, "version", *form.EDITABLE)]

    @classmethod
    def related(
        cls, app: Application, p: Persistence, key: str | bytes, record: Any | None, *, walk: bool = False
    ) -> dict[str, Any]:
        """What the detail page shows beside the fields (templates/records/_<name>_related.html), read
        by key; with ``walk``, also the check's findings on the record and its relations, which walk
        the store (up to ATEDASH_RELATED_SEARCH_SECONDS: on a large store the page loads them as a
        second request)."""
        return {}

    @classmethod
    def new_record(cls, data: dict[str, Any]) -> Record:
        raise NotImplementedError

    @classmethod
    def delete_blocked(cls, record: Any) -> str:
        """Why the record cannot be deleted now ("" when it can)."""
        return ""

    @classmethod
    def delete(cls, p: Persistence, key: str) -> None:
        raise NotImplementedError


def key_text(key: str | bytes) -> str:
    """A key as pages show it: bytes that are not UTF-8 escaped (\\xff)."""
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def pages_for_key(key: str | bytes) -> type[RecordPages] | None:
    """The record kind a key belongs to, by its prefix (None: not an actor or worker key)."""
    text = key_text(key)
    for pages in KINDS.values():
        if text.startswith(pages.kind.prefix):
            return pages
    return None


class ActorPages(RecordPages):
    intents = ("suspend", "run")
    incident_filters = ("q", "pod", "ip", "snapshot")

    @classmethod
    def count_of(cls, stats: Any, values: dict[str, Any]) -> tuple[int, str] | None:
        """(about how many records the list's filters match, what) from the overview's counts; None
        when a filter the counts do not know is set."""
        if any(values.get(name) for name in ("ns", "template", "q", "pod", "ip", "snapshot")):
            return None
        by_status = stats.actors_by_status
        if values.get("status"):
            return by_status.get("STATUS_" + values["status"], 0), f"{values['status']} actors"
        return sum(n for name, n in by_status.items() if name != "CORRUPT"), "actors"

    kind = ACTORS
    name, plural, title, title_id = "actor", "actors", "Actor", "actor-id"
    title_copy = "actor id"
    copyable = frozenset(
        {"actor_id", "ateom_pod_namespace", "ateom_pod_name", "ateom_pod_ip", "last_snapshot", "in_progress_snapshot"}
    )
    url_params = ("actor_id",)
    scan_method = "scan_actors"
    walk = actor_walk
    bulk_actions = ("delete-suspended", "release-locks")
    columns = listing.ACTOR_COLUMNS
    key_columns = 3
    filter_form, create_form, edit_form = ActorFilterForm, ActorCreateForm, ActorEditForm
    id_field = "actor_id"
    create_note = "SUSPENDED, "
    create_intro = "The actor starts SUSPENDED with version 1, as the store's contract says."

    @classmethod
    def filters(cls, values: dict[str, Any]) -> dict[str, Any]:
        pod_namespace, pod_name = ActorFilterForm.pod_filter(values["pod"])
        return {
            "status": status_value(values["status"]) if values["status"] else None,
            "template_namespace": values["ns"] or None,
            "template_name": values["template"] or None,
            "id_contains": values["q"] or None,
            "pod_namespace": pod_namespace,
            "pod_name": pod_name,
            "pod_ip": values["ip"] or None,
            "snapshot_contains": values["snapshot"] or None,
        }

    @classmethod
    def rows_html(cls, records: list[Actor], unreadable: dict | None = None, *, selectable: bool = False) -> SafeString:
        rows = [
            {
                "actor": actor,
                "unreadable": unreadable.get(keys.actor_key(actor.actor_id)) if unreadable else None,
                "status": status_name(actor),
                "pod": _pod(actor),
            }
            for actor in records
        ]
        return listing.actor_rows_html(rows, selectable=selectable)

    @classmethod
    def related(
        cls, app: Application, p: Persistence, key: str | bytes, record: Actor | None, *, walk: bool = False
    ) -> dict[str, Any]:
        """The actor's lock, and the worker its ateom pod names: read by key in the pools the fleet's
        last count saw, never scanned for (a scan of a large store takes seconds); before any count,
        not looked up: the page links to a search instead. ``walk``: the findings (see RecordPages)."""
        lock_key = keys.LOCK_PREFIX + key_text(key)
        out: dict[str, Any] = {"lock": None, "lock_corrupt": None, "lock_key": lock_key}
        try:
            out["lock"] = p.get_lock(lock_key) if isinstance(key, str) else None
        except storage.CorruptRecord as exc:  # something that is not a lock sits at the lock's key
            out["lock_corrupt"] = exc
        if record is not None:
            ns = record.ateom_pod_namespace
            stats = app.stats
            pools = stats.known_pools(ns or None)
            if pools is None:  # never counted: a small store counts in milliseconds, so wait a little
                stats.ensure_fresh()
                stats.wait(timeout=settings.ATEDASH_FIRST_COUNT_WAIT)
                pools = stats.known_pools(ns or None)
            worker = p.worker_in_pools(record.ateom_pod_name, pools) if pools else None
            out["status"] = status_name(record)
            out["worker"] = worker
            out["worker_lookup"] = "unknown" if pools is None else "pools"
            out["worker_points_back"] = worker is not None and worker.actor_id == record.actor_id
            if isinstance(key, str) and walk:
                found = related.actor_findings(p, record, pod_worker=worker, **related_settings())
                out.update(_findings_context(found))
                out["lock"] = found.lock if out["lock_corrupt"] is None else None
            elif out["lock"] is not None:  # its age and staleness without the walk (the actor is read)
                out["lock_state"] = lock_states_of(p, out["lock"])
        return out

    @classmethod
    def new_record(cls, data: dict[str, Any]) -> Actor:
        return Actor(
            actor_id=data["actor_id"],
            actor_template_namespace=data["actor_template_namespace"],
            actor_template_name=data["actor_template_name"],
            status=SUSPENDED,
        )

    @classmethod
    def delete_blocked(cls, record: Actor) -> str:
        if record.status == SUSPENDED:
            return ""
        return f"Only a SUSPENDED actor can be deleted; this one is {status_name(record)}. Suspend it first."

    @classmethod
    def delete(cls, p: Persistence, key: str) -> None:
        p.delete_actor(keys.parse_actor_key(key))  # FailedPrecondition / VersionConflict: the page says why


def _pod(actor: Actor) -> str:
    if actor.ateom_pod_namespace and actor.ateom_pod_name:
        return f"{actor.ateom_pod_namespace}/{actor.ateom_pod_name}"
    return actor.ateom_pod_name


class WorkerPages(RecordPages):
    incident_filters = ("q", "ip")

    @classmethod
    def count_of(cls, stats: Any, values: dict[str, Any]) -> tuple[int, str] | None:
        if values.get("q") or values.get("ip"):
            return None
        ns, pool, assigned = values.get("namespace"), values.get("pool"), values.get("assigned")
        total = 0
        for (wns, wpool), counts in stats.workers_by_pool.items():
            if (ns and wns != ns) or (pool and wpool != pool):
                continue
            total += counts.get(assigned, 0) if assigned in ("free", "assigned") else sum(counts.values())
        what = " ".join(x for x in (assigned if assigned in ("free", "assigned") else "", "workers") if x)
        where = "/".join(x for x in (ns, pool) if x)
        return total, f"{what} in {where}" if where else what

    kind = WORKERS
    name, plural, title, title_id = "worker", "workers", "Worker", "worker-name"
    title_copy = "worker namespace/pool/pod"
    copyable = frozenset({"worker_pod", "ip", "actor_id"})
    url_params = ("namespace", "pool", "pod")
    scan_method = "scan_workers"
    walk = worker_walk
    bulk_actions = ("free-workers",)
    columns = listing.WORKER_COLUMNS
    key_columns = 3
    filter_form, create_form, edit_form = WorkerFilterForm, WorkerCreateForm, WorkerEditForm
    id_field = "worker_pod"

    @classmethod
    def filters(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "namespace": values["namespace"] or None,
            "pool": values["pool"] or None,
            "assigned": {"free": False, "assigned": True}.get(values["assigned"]),
            "id_contains": values["q"] or None,
            "ip": values["ip"] or None,
        }

    @classmethod
    def rows_html(
        cls, records: list[Worker], unreadable: dict | None = None, *, selectable: bool = False
    ) -> SafeString:
        return listing.worker_rows_html(records, unreadable, selectable=selectable)

    @classmethod
    def related(
        cls, app: Application, p: Persistence, key: str | bytes, record: Worker | None, *, walk: bool = False
    ) -> dict[str, Any]:
        """The actor the worker points at, and whether it points back; with ``walk``, the findings of
        the check's rules on the worker and its relations (see RecordPages)."""
        if record is None:
            return {}
        if not record.actor_id:
            if not isinstance(key, str) or not walk:
                return {}
            return _findings_context(related.worker_findings(p, record, **related_settings()))
        actor = actor_error = None
        try:
            actor = p.get_actor(record.actor_id)
        except storage.NotFound:
            actor_error = "no such actor in the store"
        except storage.CorruptRecord as exc:
            actor_error = error_pages.storage_message(exc)
        out = {
            "actor": actor,
            "actor_status": status_name(actor) if actor is not None else None,
            "actor_error": actor_error,
            "actor_points_back": actor is not None
            and actor.ateom_pod_name == record.worker_pod
            and actor.ateom_pod_namespace == record.worker_namespace,
        }
        if isinstance(key, str) and walk:
            out.update(_findings_context(related.worker_findings(p, record, **related_settings())))
        return out

    @classmethod
    def new_record(cls, data: dict[str, Any]) -> Worker:
        return Worker(**data)

    @classmethod
    def delete(cls, p: Persistence, key: str) -> None:
        p.delete_worker(*keys.parse_worker_key(key))  # idempotent, as in the Go server


def lock_states_of(p: Persistence, lock: Any) -> Any:
    """The lock's age and whether it is stale, by the check's rule (two round trips, held locks only)."""
    return p.lock_states([lock], settings.ATEDASH_STALE_LOCK_SECONDS).get(lock.key)


def related_settings() -> related.Limits:
    return {
        "stale_lock_s": settings.ATEDASH_STALE_LOCK_SECONDS,
        "search_s": settings.ATEDASH_RELATED_SEARCH_SECONDS or 1.5,
    }


def _findings_context(found: related.RecordFindings) -> dict[str, Any]:
    """A record page's findings (the check's rules on the record and its relations) and how its
    relations were found; the view adds each finding's repair link (it knows the operator)."""
    return {
        "record_findings": found,
        "claimants": found.claimants,
        "lock_state": found.lock_state,
    }


KINDS: dict[str, type[RecordPages]] = {pages.name: pages for pages in (ActorPages, WorkerPages)}
# By the plural the walks, the bulk form and the URLs use ("actors").
BY_PLURAL: dict[str, type[RecordPages]] = {pages.plural: pages for pages in KINDS.values()}
