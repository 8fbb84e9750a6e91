"""Full-text search indexes over threads and replies (forum.selectors.search).

The posting pipeline writes threads and posts with no search code: the database keeps the
index itself.

- PostgreSQL: a stored generated `tsvector` column on each table (title weighted A, content
  B, the 'english' configuration) with a GIN index. The column is invisible to the Django
  models; the selector reads it by name. Adding a stored column rewrites the table once.
- SQLite (the embedded default): one FTS5 table for both, filled and kept in step by
  triggers. Its rowid encodes the source row: a thread's id x 2, a post's id x 2 + 1.

Other databases get nothing here and the selector falls back to a plain `icontains` search.
"""

from django.db import migrations

_PG_FORWARD = [
    """
    ALTER TABLE forum_thread ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(content, '')), 'B')
    ) STORED
    """,
    "CREATE INDEX forum_thread_search_gin ON forum_thread USING gin (search_vector)",
    """
    ALTER TABLE forum_post ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(content, '')), 'B')
    ) STORED
    """,
    "CREATE INDEX forum_post_search_gin ON forum_post USING gin (search_vector)",
    # Author names are matched through a subquery on the (small) author table.
    "CREATE INDEX forum_author_alias_search_gin ON forum_author "
    "USING gin (to_tsvector('english', alias))",
]
_PG_BACKWARD = [
    "DROP INDEX IF EXISTS forum_author_alias_search_gin",
    "ALTER TABLE forum_post DROP COLUMN IF EXISTS search_vector",
    "ALTER TABLE forum_thread DROP COLUMN IF EXISTS search_vector",
]

_SQLITE_FORWARD = [
    # porter: "replies" finds "reply", as PostgreSQL's english stemmer does.
    "CREATE VIRTUAL TABLE forum_search_fts USING fts5("
    "title, content, tokenize = 'porter unicode61 remove_diacritics 2')",
    """
    CREATE TRIGGER forum_thread_search_ai AFTER INSERT ON forum_thread BEGIN
        INSERT INTO forum_search_fts (rowid, title, content)
        VALUES (new.id * 2, new.title, new.content);
    END
    """,
    """
    CREATE TRIGGER forum_thread_search_ad AFTER DELETE ON forum_thread BEGIN
        DELETE FROM forum_search_fts WHERE rowid = old.id * 2;
    END
    """,
    """
    CREATE TRIGGER forum_thread_search_au AFTER UPDATE OF title, content ON forum_thread BEGIN
        UPDATE forum_search_fts SET title = new.title, content = new.content
        WHERE rowid = new.id * 2;
    END
    """,
    """
    CREATE TRIGGER forum_post_search_ai AFTER INSERT ON forum_post BEGIN
        INSERT INTO forum_search_fts (rowid, title, content)
        VALUES (new.id * 2 + 1, '', new.content);
    END
    """,
    """
    CREATE TRIGGER forum_post_search_ad AFTER DELETE ON forum_post BEGIN
        DELETE FROM forum_search_fts WHERE rowid = old.id * 2 + 1;
    END
    """,
    """
    CREATE TRIGGER forum_post_search_au AFTER UPDATE OF content ON forum_post BEGIN
        UPDATE forum_search_fts SET content = new.content WHERE rowid = new.id * 2 + 1;
    END
    """,
    "INSERT INTO forum_search_fts (rowid, title, content) "
    "SELECT id * 2, title, content FROM forum_thread",
    "INSERT INTO forum_search_fts (rowid, title, content) "
    "SELECT id * 2 + 1, '', content FROM forum_post",
]
_SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS forum_post_search_au",
    "DROP TRIGGER IF EXISTS forum_post_search_ad",
    "DROP TRIGGER IF EXISTS forum_post_search_ai",
    "DROP TRIGGER IF EXISTS forum_thread_search_au",
    "DROP TRIGGER IF EXISTS forum_thread_search_ad",
    "DROP TRIGGER IF EXISTS forum_thread_search_ai",
    "DROP TABLE IF EXISTS forum_search_fts",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("forum", "0008_relay_tags_throttle")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": _PG_FORWARD, "sqlite": _SQLITE_FORWARD}),
            _run({"postgresql": _PG_BACKWARD, "sqlite": _SQLITE_BACKWARD}),
        )
    ]
