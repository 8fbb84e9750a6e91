"""SQLite: the search triggers again (migration 0009), and the FTS table refilled.

On SQLite, Django adds a NOT NULL column (or one with a default) by rebuilding the table
(create a new one, copy, drop the old, rename), and dropping a table drops its triggers:
0012 (`Thread.hot`) and 0015 (the edit fields) rebuilt `forum_thread` and `forum_post`, so
new posts stopped reaching the search index. A later migration that rebuilds either table
must end the same way (tests/forum/web/test_search.py fails on SQLite otherwise).
PostgreSQL adds columns in place and keeps its generated columns: nothing to do there.
"""

from django.db import migrations


def _search_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    from importlib import import_module

    search = import_module("forum.migrations.0009_search_index")
    for sql in search._SQLITE_BACKWARD:
        if "DROP TABLE" not in sql:
            schema_editor.execute(sql)
    schema_editor.execute("DELETE FROM forum_search_fts")
    for sql in search._SQLITE_FORWARD:
        if "CREATE VIRTUAL TABLE" not in sql:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0016_tipforward_address"),
    ]

    operations = [migrations.RunPython(_search_triggers, migrations.RunPython.noop)]
