"""PostgreSQL: keep the search GIN indexes' pending lists short (256 kB).

A GIN index with `fastupdate` (the default) puts new entries in an unsorted pending list that
every search scans in full until VACUUM (or a list over `gin_pending_list_limit`, 4 MB by
default) merges it into the index. Measured on 100,000 posts just written: 428 pending pages in
`forum_thread_search_gin`, and the planner reading the whole thread table instead (a rare word
took 11-18 ms; 0.3-0.8 ms once merged). A 256 kB limit makes the inserting batch merge the list
every ~32 pages, so a search never scans more than that, whatever autovacuum is doing.
"""

from django.db import migrations

_INDEXES = ("forum_thread_search_gin", "forum_post_search_gin")


def _limit(value: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for index in _INDEXES:
            if value:
                schema_editor.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {value})")
            else:
                schema_editor.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")

    return run


class Migration(migrations.Migration):
    dependencies = [("forum", "0020_kinds_ref_indexes")]

    operations = [migrations.RunPython(_limit("256"), _limit(""))]
