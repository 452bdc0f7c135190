"""What needs an operator's attention, for the strip at the top of the overview: nodes down, shards
without a replica, slots not covered, records unreadable by ate, consistency findings, counts
that are stale. Each item says what happened and what to do next; none means "Nothing needs
attention". Built from what the overview has already read (no extra store round trip but the
check's cached report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.urls import reverse

from atedash.core import vocabulary
from storage.check.kinds import duration_text

if TYPE_CHECKING:
    from storage import StoreStats
    from storage.check import CheckReport
    from storage.cluster import ClusterOverview

ALL_SLOTS = 16384


@dataclass(frozen=True)
class Item:
    what: str  # what happened (plain words, figures in)
    then: str  # what to do next
    level: str = "bad"  # "bad" (red) or "warn"
    link: str = ""  # where to look
    link_text: str = ""
    id: str = ""


def cluster_items(cluster: ClusterOverview) -> list[Item]:
    items: list[Item] = []
    down = [n for n in cluster.nodes if not n.healthy]
    for node in down:
        items.append(
            Item(
                f"Node {node.address} ({node.role}) is down: {', '.join(node.flags) or 'not connected'}.",
                "Restart it or replace it; the cluster table below shows which shard it served.",
                id="node-down",
            )
        )
    if cluster.mode == "cluster":
        replicas: dict[str, int] = {}
        for node in cluster.nodes:
            if node.role == "replica" and node.healthy and node.primary_id:
                replicas[node.primary_id] = replicas.get(node.primary_id, 0) + 1
        for node in cluster.nodes:
            if node.role == "primary" and node.healthy and node.slots and not replicas.get(node.node_id):
                count = sum(b - a + 1 for a, b in node.slots)
                items.append(
                    Item(
                        f"Shard of primary {node.address} ({count:,} slots) has no replica: losing that node "
                        "loses its records.",
                        "Bring a replica back (restart the failed node, or add one with redis-cli --cluster "
                        "add-node --cluster-slave).",
                        id="no-replica",
                    )
                )
        if cluster.slots_covered < ALL_SLOTS:
            items.append(
                Item(
                    f"{ALL_SLOTS - cluster.slots_covered:,} of {ALL_SLOTS:,} slots are not covered: records "
                    "there can be neither read nor written.",
                    "Bring back the primary that served them, or reassign them (redis-cli --cluster fix).",
                    id="slots-uncovered",
                )
            )
    if cluster.state != "ok" and not items:
        items.append(
            Item(
                f"The cluster's state is {cluster.state}.",
                "Look at the nodes below and at the store's logs.",
                id="cluster-state",
            )
        )
    return items


# The store's key count (DBSIZE of the primaries) may exceed the counted keys by atedash's own keys
# (audit stream, sessions, login counters); past this gap the counts predate a change.
KEYS_GAP = (0.1, 1000)  # (fraction of the keys, plus keys)


def stats_items(
    stats: StoreStats | None, age: float | None, interval: float, running: bool, keys_now: int | None = None
) -> list[Item]:
    items: list[Item] = []
    if stats is None:
        return items
    if stats.unreadable:
        corrupt = f", {stats.corrupt} of them {vocabulary.CORRUPT}" if stats.corrupt else ""
        items.append(
            Item(
                f"{stats.unreadable:,} record{'s' if stats.unreadable != 1 else ''} {vocabulary.UNREADABLE}"
                f"{corrupt}: the ate server's ListActors or ListWorkers fails while they exist.",
                "Open each from the consistency check and mend or delete it in the raw editor.",
                link=reverse("ops_check"),
                link_text="Show them",
                id="unreadable",
            )
        )
    if age is not None and age > interval:
        items.append(
            Item(
                f"The counts below are stale: counted {duration_text(age)} ago, longer than their "
                f"{duration_text(interval)} interval{' (a recount is running)' if running else ''}.",
                "Trust the figures below as of then; they update by themselves once the recount ends.",
                level="warn",
                id="stale-counts",
            )
        )
    elif keys_now is not None and abs(keys_now - stats.keys_scanned) > KEYS_GAP[0] * keys_now + KEYS_GAP[1]:
        items.append(
            Item(
                f"The counts below predate a change: the store holds {keys_now:,} keys now, they counted "
                f"{stats.keys_scanned:,}{' (a recount is running)' if running else ''}.",
                "Recount now (editors), or wait for the next count; until then trust the cluster's key count.",
                level="warn",
                id="stale-counts",
            )
        )
    return items


def check_items(report: CheckReport | None, age: float | None) -> list[Item]:
    if report is None or report.ok:
        return []
    n = report.total_findings  # those cut from the stored report included
    when = f" ({duration_text(age)} ago)" if age is not None else ""
    return [
        Item(
            f"The consistency check{when} has {n:,} finding{'s' if n != 1 else ''}.",
            "Review them and apply the repairs that fit.",
            level="warn",
            link=reverse("ops_check"),
            link_text="Open the check",
            id="check-findings",
        )
    ]
