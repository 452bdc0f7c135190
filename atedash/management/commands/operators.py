"""manage.py operators add|remove|list: the operators file (ATEDASH_USERS_FILE)."""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from atedash.accounts import sessions
from atedash.accounts.operators import ROLES, UsersFile, UsersFileError
from atedash.core.app import current_app


class Command(BaseCommand):
    help = "Manage dashboard operators in the users file (passwords hashed with Django's hashers)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add an operator (or change one with --replace)")
        add.add_argument("name")
        add.add_argument("--role", choices=ROLES, required=True)
        add.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from stdin (first line); else one is generated and printed",
        )
        add.add_argument("--replace", action="store_true", help="overwrite an existing operator")
        remove = sub.add_parser("remove", help="remove an operator")
        remove.add_argument("name")
        sub.add_parser("list", help="list operators and roles")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        file = current_app().users
        try:
            if action == "add":
                self._add(file, options)
            elif action == "remove":
                file.remove(options["name"])
                self.stdout.write(f"removed {options['name']}")
                self._end_sessions(options["name"])
            else:
                operators = file.load()
                if not operators:
                    self.stdout.write(f"no operators in {settings.ATEDASH_USERS_FILE}")
                for name in sorted(operators):
                    self.stdout.write(f"{name}\t{operators[name]['role']}")
        except UsersFileError as exc:
            raise CommandError(str(exc)) from exc

    def _end_sessions(self, name: str) -> None:
        """Sessions of a removed operator, or of one whose password changed, end anyway (the users
        file no longer matches them); ending them in the store too says so at once, everywhere."""
        try:
            sessions.end_everywhere(name, current_app())
        except Exception as exc:  # noqa: BLE001 - the users-file check alone still ends them
            self.stderr.write(
                f"note: could not mark {name}'s sessions ended in the store ({exc}); "
                "they end anyway, as the users file no longer matches them"
            )
        else:
            self.stdout.write(f"ended every session of {name}")

    def _add(self, file: UsersFile, options: dict[str, Any]) -> None:
        name = options["name"].strip()
        if not name or any(c.isspace() for c in name) or len(name) > 150:
            raise CommandError("operator names are 1-150 characters without spaces")
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if len(password) < 8:
                raise CommandError("the password must have at least 8 characters")
            generated = False
        else:
            password = secrets.token_urlsafe(15)
            generated = True
        file.add(name, options["role"], password, replace=options["replace"])
        self.stdout.write(f"added {name} ({options['role']}) to {settings.ATEDASH_USERS_FILE}")
        if options["replace"]:
            self._end_sessions(name)
        if generated:
            self.stdout.write(f"password: {password}")
