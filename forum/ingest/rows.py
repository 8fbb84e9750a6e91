"""Writing a batch's new rows: `COPY` on PostgreSQL, `bulk_create` elsewhere.

A batch of 1,000 ledger rows inserts a few thousand rows (events, threads, posts, tag index
rows, rejections). Through `bulk_create` most of that time was Python: Django preparing every
value of every field and psycopg quoting them into one long SQL text. `COPY ... FROM STDIN`
sends the values as rows that psycopg's C adapters encode, and the ids come from one
`nextval` call per table beforehand, so related rows (a post's event, thread and parent) can
name them without `RETURNING`. The objects end up as `bulk_create` leaves them: saved, with
their primary key and their foreign key ids set.

The `any` lookup (`field__any=[...]`) is `IN` sent as one array on PostgreSQL, for the
batch's reads of a thousand ids at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Field, ForeignKey, ForeignObject, JSONField, Model
from django.db.models.lookups import In
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from forum.models import Post, Thread

Getter = Callable[[Model], Any]


def rows_insert(
    model: type[Model], objs: Sequence[Model], *, ignore_conflicts: bool = False
) -> None:
    """Insert `objs` (unsaved instances of `model`) and give each its primary key.

    `ignore_conflicts`: rows that break a unique constraint are skipped, and (as with
    `bulk_create`) no object gets its primary key."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    if ignore_conflicts:
        _insert_skipping_conflicts(model, objs)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        for obj, pk in zip(objs, ids, strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = connection.alias
        fields = list(meta.concrete_fields)
        getters = [_getter(f) for f in fields]
        columns = ", ".join(quote(f.column) for f in fields)
        # The psycopg cursor under Django's wrapper: COPY is psycopg's own API, so its errors
        # are turned into Django's here (IntegrityError, OperationalError: what callers catch).
        copy_sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
        with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
            for obj in objs:
                copy.write_row([get(obj) for get in getters])


def _insert_skipping_conflicts(model: type[Model], objs: Sequence[Model]) -> None:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    getters = [_getter(f) for f in fields]
    _unnest_insert(model, fields, [[get(obj) for obj in objs] for get in getters])


def _unnest_insert(model: type[Model], fields: Sequence[Field], columns: list[list[Any]]) -> None:
    """INSERT ... SELECT FROM unnest(one array per column) ... ON CONFLICT DO NOTHING."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({names}) "
        f"SELECT * FROM unnest({_arrays(fields, columns)}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)


def _arrays(fields: Sequence[Field], columns: list[list[Any]]) -> str:
    """The placeholders of one array parameter per column, cast to the column's type (JSON
    values become their text, in place)."""
    for values, f in zip(columns, fields, strict=True):
        if isinstance(f, JSONField):  # arrays of json text, cast below
            values[:] = [None if v is None else json.dumps(v.obj) for v in values]
    return ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)


def rows_update(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` (names) of saved `objs` back to their rows.

    On PostgreSQL one UPDATE ... FROM unnest(one array per column): `bulk_update` writes a
    CASE per row and field, which Django builds and psycopg quotes on the client, and it cost
    a batch more than all of its inserts."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    targets = [meta.get_field(name) for name in fields]
    columns = [[obj.pk for obj in objs]] + [[_getter(f)(obj) for obj in objs] for f in targets]
    names = ["id", *(f"c{i}" for i in range(len(targets)))]
    table = quote(meta.db_table)
    sets = ", ".join(f"{quote(f.column)} = v.c{i}" for i, f in enumerate(targets))
    sql = (
        f"UPDATE {table} SET {sets} FROM unnest({_arrays([meta.pk, *targets], columns)}) "
        f"AS v({', '.join(names)}) WHERE {table}.{quote(meta.pk.column)} = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)


def values_insert(
    model: type[Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """Insert plain rows (values in the order of `fields`, by attname) that nobody needs as
    objects afterwards: no model instance is made for them on PostgreSQL.

    `ignore_conflicts`: rows that break a unique constraint are skipped."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(fields, row, strict=True))) for row in rows],
            ignore_conflicts=ignore_conflicts,
        )
        return
    meta = model._meta
    if ignore_conflicts:
        by_attname = {f.attname: f for f in meta.concrete_fields}
        columns = [[row[i] for row in rows] for i in range(len(fields))]
        _unnest_insert(model, [by_attname[name] for name in fields], columns)
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    copy_sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(copy_sql) as copy,
    ):
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True, slots=True)
class NoteRow:
    """An inbox row (`Notification`) to insert with its batch: a plain record, because a model
    instance per row cost the sequencer more than the row's insert. The thread and post are
    the batch's objects: their ids are read when the batch writes (new ones have none yet)."""

    recipient: str
    reason: str
    ref: str
    thread: Thread
    post: Post | None
    created_at: datetime
    actor: str = ""
    amount_msat: int = 0

    FIELDS: ClassVar[tuple[str, ...]] = (
        "recipient", "reason", "ref", "actor", "thread_id", "post_id", "amount_msat", "created_at"
    )  # fmt: skip

    def values(self) -> tuple[Any, ...]:
        """The row in the order of `FIELDS`."""
        post_id = self.post.pk if self.post is not None else None
        return (
            self.recipient, self.reason, self.ref, self.actor, self.thread.pk, post_id,
            self.amount_msat, self.created_at,
        )  # fmt: skip


def _getter(field: Field) -> Getter:
    attname = field.attname
    if isinstance(field, ForeignKey):
        # As `bulk_create` does: a related object saved after it was assigned gives its id now.
        def related(obj: Model) -> Any:
            value = obj.__dict__.get(attname)
            if value is None:
                target = field.get_cached_value(obj, None)
                if target is not None:
                    # Straight into __dict__: the descriptor would drop the cached object.
                    value = obj.__dict__[attname] = target.pk
            return value

        return related
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, add=True)
    if isinstance(field, JSONField):
        return lambda obj: None if obj.__dict__[attname] is None else Jsonb(obj.__dict__[attname])
    if field.get_internal_type() in ("CharField", "TextField", "SlugField"):
        # Choices are `str` enums: their value, never their name.
        return lambda obj: None if obj.__dict__[attname] is None else str(obj.__dict__[attname])
    return lambda obj: obj.__dict__[attname]


class AnyOf(In):
    """`field__any=[...]`: `IN`, sent on PostgreSQL as `= ANY(%s)` with one array parameter.

    A batch asks for a thousand ids at a time; `IN (%s, %s, ...)` made psycopg split and
    quote a statement of a thousand placeholders on the client for every such query."""

    lookup_name = "any"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if not self.rhs_is_direct_value():
            return self.as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [value for value in self.rhs if value is not None]
        if not values:
            raise EmptyResultSet
        return f"{lhs} = ANY(%s)", [*lhs_params, values]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations keep lookups of their own
