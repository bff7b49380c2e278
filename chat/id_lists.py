"""`field__in=` a set of thousands of ids as one query parameter.

Django turns `user_id__in=ids` into one placeholder per id, and prepares each id through the field on
the way (a few microseconds each): the lobby's reads, which ask for every signed-in reader with a
lobby socket in the process (2,000 in the workspace bench), spent more building their SQL than
running it. Past MANY ids, `many(ids)` gives a subquery over one parameter instead: the ids as a JSON
array read by `json_each` on SQLite, an array `unnest`ed on PostgreSQL. Fewer ids stay a plain list.
"""

import json
from collections.abc import Collection

from django.db import connection
from django.db.models.expressions import RawSQL

MANY = 50


def many(ids: Collection[int]) -> Collection[int] | RawSQL:
    """For `field__in=`: the ids themselves, or (past MANY of them) one subquery over one parameter."""
    if len(ids) <= MANY:
        return ids
    values = sorted(int(pk) for pk in ids)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (values,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(values),))
