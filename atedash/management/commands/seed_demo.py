"""manage.py seed_demo: the demo records of `make run` (storage/demo.py), only when the store holds no ate records."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError

from atedash.core.app import current_app
from storage.demo import seed_store
from storage.errors import STORE_ERRORS

if TYPE_CHECKING:
    from argparse import ArgumentParser


class Command(BaseCommand):
    help = "Seed demo actors, workers and locks when the store is empty (use --force to seed anyway)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--actors", type=int, default=300)
        parser.add_argument("--workers", type=int, default=200)
        parser.add_argument("--seed", type=int, default=7, help="random seed (the demo is reproducible)")
        parser.add_argument("--force", action="store_true", help="seed even when the store holds keys")

    def handle(self, *args: Any, actors: int, workers: int, seed: int, force: bool, **options: Any) -> None:
        store = current_app().store
        try:
            p = store.persistence()
            existing = sum(c.actors + c.workers + c.locks for c in p.shard_counts())
            if existing and not force:
                self.stdout.write(f"store {store.address} holds {existing} ate records: not seeding")
                return
            counts = seed_store(p, actors=actors, workers=workers, rng=random.Random(seed))
        except STORE_ERRORS as exc:
            raise CommandError(f"store {store.address} unreachable: {exc}") from exc
        self.stdout.write(
            "seeded {actors} actors, {workers} workers, {locks} locks into {store}".format(
                store=store.address, **counts
            )
        )
