"""Settings for bench/pages.py: the project's own settings plus one bare view to compare with.

Everything else (middleware, templates, database engine, static files) is the same as the
forum's, so the bare view measures the server and Django's floor on this machine.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.pages_urls"
MIDDLEWARE = ["bench.pages_urls.ColdPages", *MIDDLEWARE]  # noqa: F405
