"""A real redis-server on a free loopback port for the tests.

CONTRACT STUB (to be implemented by the foundation work).

Fixture `redis_url` (session scope): `REDIS_URL` when set, else starts `redis-server`
(Debian package) on 127.0.0.1 with a free port and no persistence, and stops it at
the end. Without a redis-server binary the Redis tests skip with a reason saying how
to enable them, except under CI (env CI set), where it is a failure.
Fixture `redis_client` (function scope): a `redis.Redis` on `redis_url`, flushed
before each test.
"""
