"""Everything the service keeps in Redis; no code outside this package reads or writes that data.

- ``keys``        every key and channel name, under ``REDIS_KEY_PREFIX``
- ``connection``  the client factory, its timeouts and the one retry policy
- ``jobs``        ``JobStore``: job records, chunk facts, owner/status indexes, counters
- ``job_scripts`` the Lua scripts behind every job state change
- ``events``      reading the change events the job writes publish
- ``accounts``    ``AccountStore``: users, API tokens, revoked access tokens
- ``guards``      idempotency keys and rate-limit counters of the HTTP edge
"""
