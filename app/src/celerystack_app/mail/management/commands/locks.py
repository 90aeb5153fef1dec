"""`celerystack-manage locks`: the `only_one` locks in Redis, and freeing one whose holder is gone.

`locks list [--match GLOB]` prints one JSON line: this host's name and every matching lock with
its value, seconds left and holder state as seen from here (`alive`/`dead` for a holder on this
host, `elsewhere` for one on another host, `unknown` for a value that names no holder).
playbooks/locks.yml runs it on every application host, so each holder is judged on its own host.

`locks delete KEY --value VALUE` frees KEY only if it still holds VALUE (as listed): a lock taken
again since it was listed is never freed by mistake. It prints one JSON line; with `--dry-run` it
frees nothing and says whether it would have (the playbook's check mode).
"""

from __future__ import annotations

import json
import socket

from django.core.management.base import BaseCommand

from celerystack_app.mail import locks


class Command(BaseCommand):
    help = "List the only_one locks with their holders, or free one that still holds a value."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="list the locks matching a glob")
        listing.add_argument("--match", default="*", help="glob over the key (no prefix)")
        deleting = actions.add_parser("delete", help="free a lock if it still holds a value")
        deleting.add_argument("key", help="the key, without the prefix")
        deleting.add_argument("--value", required=True, help="the value it was listed with")
        deleting.add_argument("--dry-run", action="store_true", help="say, do not free")

    def handle(self, *args, **options):
        client = locks.lock_client()
        if options["action"] == "list":
            result = {"host": socket.gethostname(), "locks": locks.held(client, options["match"])}
        else:
            key, value = options["key"], options["value"]
            if options["dry_run"]:
                freed = locks.holds(client, key, value)
            else:
                freed = locks.release(client, key, value)
            result = {"key": key, "deleted": freed}
        self.stdout.write(json.dumps(result, sort_keys=True))
