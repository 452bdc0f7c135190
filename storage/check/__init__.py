"""Cross-checks of actors, workers and locks, and the repairs that mend what they find.

The ate store cannot update an actor and its worker in one atomic step (they live in different hash
slots), so a crash between the two writes leaves them disagreeing. ``run_check`` walks the whole store
page by page (``scan_locks``, and ``storage.scanning.scan_page`` with loaders that also judge each record
as the ate server would: batched reads per node, no round trip per record) and reports:

========================  ===========================================================================
kind                      meaning
========================  ===========================================================================
``orphan_worker``         a worker assigned to an actor that does not exist
``leaked_worker``         a worker assigned to an actor that points at a different pod (or at none,
                          or that is SUSPENDED)
``actor_without_worker``  a RUNNING/RESUMING actor whose ateom pod has no worker record (or that
                          names no pod at all)
``actor_worker_free``     a RUNNING/RESUMING actor whose worker is free
``actor_worker_elsewhere`` a RUNNING/RESUMING actor whose worker is assigned to another actor
``duplicate_claim``       two or more workers claiming the same actor
``suspended_with_pod``    a SUSPENDED actor that still names an ateom pod
``orphan_lock``           a ``lock:actor:<id>`` lock for an actor that does not exist
``lock_without_expiry``   a lock key with no TTL
``stale_lock``            a ``lock:actor:<id>`` lock held longer than ``stale_lock_s`` (default 600 s)
                          on a SUSPENDED/RUNNING actor or a missing one (storage/check/lockage.py)
``server_unreadable``     a record atedash reads but the ate Go server does not (storage.server_readable:
                          its key or its value); never repaired here
``corrupt_record``        a record that does not decode (reported, never repaired here); the message
                          says whether the ate server reads it
========================  ===========================================================================

Matching an actor to its worker: the actor names ``ateom_pod_namespace``/``ateom_pod_name``; workers
are keyed ``worker:<namespace>:<pool>:<pod>``. The pool is not known from the actor, so the worker is
the one whose (namespace, pod) equals the actor's; when several pools hold that pod name, the worker
whose ``ip`` equals the actor's ``ateom_pod_ip`` wins, and if that is still ambiguous, the one that
claims the actor.

Records the ate server cannot read. Each is reported exactly once: as ``corrupt_record`` when atedash
cannot decode it either, else as ``server_unreadable`` (the server's error, in its words, and what it
breaks); ``CheckReport.unreadable_by_server`` counts both. A record the server cannot read is still
checked as atedash reads it, but no repair rewrites it (the finding says so instead): only an
operator's raw edit does.

Repairs. Every finding carries a :class:`Repair` except unreadable records and the few cases a person must
decide (two running actors naming one pod; two pools' workers with the actor's pod name and no IP to tell
them apart: ``note`` says why). Findings about the same record share one repair object, and different
repairs never touch the same record, so applying each distinct repair of a report once
(``repairs``/``apply_all``) leaves a store that checks clean (unless it changed meanwhile).
``describe()`` gives the exact field changes; ``apply(persistence)`` re-reads the record, re-checks that
the finding still holds (otherwise :class:`RepairNotApplicable`, "no longer applies"), then writes with
the version that the check saw (``VersionConflict`` propagates when the record changed between the
re-read and the write). Locks have no version: a lock is released only when its holder token is still the
one the check saw (``release_lock`` is atomic on the token).

Memory bound. Actors are streamed and never kept: only the page in hand is in memory. What is kept is
O(W + L + F): a compact index of the W workers (by (namespace, pod), and by claimed actor id for
assigned workers), the L ``lock:actor:*`` locks, and the F findings. Per-worker state is a small
slotted entry of (mostly interned) strings, about 400 bytes per worker (peak 18 MiB with 40k workers,
166 MiB with 400k). W and L are bounded by the cluster's pods and in-flight operations, not by the
number of actors, which is the large dimension (100k-1M).

Records that change while the check runs may yield findings that no longer hold by the time they are
read; the repairs re-check before writing, so such a finding can never cause a wrong write.

Modules: ``kinds`` (names and titles), ``checker`` (the :class:`Checker`, one method per phase),
``findings`` (one function per finding kind and its repair), ``repairs`` (the repairs), ``entries``
(what the check keeps between phases), ``loading`` (the judged reads), ``report`` (findings, report).
"""

from storage.check.checker import PAGE_SIZE, Checker, check_records, run_check
from storage.check.kinds import (
    ACTIVE,
    ACTOR_WITHOUT_WORKER,
    ACTOR_WORKER_ELSEWHERE,
    ACTOR_WORKER_FREE,
    CLAIM_FIELDS,
    CORRUPT_RECORD,
    DUPLICATE_CLAIM,
    KIND_TITLES,
    KINDS,
    LEAKED_WORKER,
    LOCK_WITHOUT_EXPIRY,
    ORPHAN_LOCK,
    ORPHAN_WORKER,
    POD_FIELDS,
    SERVER_UNREADABLE,
    STALE_LOCK,
    SUSPENDED_WITH_POD,
    status_name,
)
from storage.check.repairs import (
    AssignWorker,
    ClearActorPod,
    FieldChange,
    FreeWorker,
    ReleaseLock,
    Repair,
    RepairNotApplicable,
    SuspendActor,
)
from storage.check.report import CheckReport, Finding, apply_all, repairs

__all__ = [
    "ACTIVE",
    "ACTOR_WITHOUT_WORKER",
    "ACTOR_WORKER_ELSEWHERE",
    "ACTOR_WORKER_FREE",
    "CLAIM_FIELDS",
    "CORRUPT_RECORD",
    "DUPLICATE_CLAIM",
    "KINDS",
    "KIND_TITLES",
    "LEAKED_WORKER",
    "LOCK_WITHOUT_EXPIRY",
    "ORPHAN_LOCK",
    "ORPHAN_WORKER",
    "PAGE_SIZE",
    "POD_FIELDS",
    "SERVER_UNREADABLE",
    "STALE_LOCK",
    "SUSPENDED_WITH_POD",
    "AssignWorker",
    "CheckReport",
    "Checker",
    "ClearActorPod",
    "FieldChange",
    "Finding",
    "FreeWorker",
    "ReleaseLock",
    "Repair",
    "RepairNotApplicable",
    "SuspendActor",
    "apply_all",
    "check_records",
    "repairs",
    "run_check",
    "status_name",
]
