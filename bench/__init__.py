"""``python -m bench`` (``make bench``): the project against the Celery peer, in one run.

See ``bench/README.md`` for what it measures and how to read the table.
"""
