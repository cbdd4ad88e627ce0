"""auth-service's users, kept in PostgreSQL (table ``public.app_users``, made by the post-deploy init step
``db-init`` of the postgres image; auth-service logs in as role ``auth_app``, which may only read and add
rows). Passwords are stored as salted PBKDF2-SHA256 hashes, never as given.

Fails closed: when the database cannot be reached or its schema is missing, no one logs in
(:class:`StoreUnavailable`, answered 503 by the role)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from network import DependencyDown
from pg_client import PgError, Postgres

TABLE = "public.app_users"
#: Kept low on purpose: the demo's containers have half a CPU, and the runbook's drills log in many times.
HASH_ITERATIONS = 20_000
UNDEFINED_TABLE, UNIQUE_VIOLATION = "42P01", "23505"


class StoreUnavailable(Exception):
    """The user store cannot answer (database down, schema missing, login refused): the message says which."""


class UserExists(Exception):
    """A user of that name is already registered."""


def hash_password(password: str, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


class UserStore:
    """Look-up and registration of users; the demo user (its password: the ``demo_user_password`` secret) is
    added on first use when the table has no row for it."""

    def __init__(self, db_password: str, demo_password: str):
        self.db = Postgres(os.environ.get("DATABASE_HOST", "postgres"), int(os.environ.get("DATABASE_PORT", "5432")),
                           os.environ.get("DATABASE_USER", "auth_app"), db_password,
                           os.environ.get("DATABASE_NAME", "secureconnect"))
        self._demo_password = demo_password
        self._demo_present = False

    def state(self) -> str:
        """"up", "down", or what is wrong ("schema missing: table public.app_users"), for /health."""
        try:
            rows = self._run("SELECT to_regclass($1) IS NOT NULL", TABLE)
        except StoreUnavailable as exc:
            return "down" if "cannot be reached" in str(exc) else str(exc)
        return "up" if rows and rows[0][0] == "t" else f"schema missing: table {TABLE}"

    def authenticate(self, username: str, password: str) -> bool:
        """True when ``username`` is registered with ``password``; StoreUnavailable when the store cannot say."""
        if username == "demo" and not self._demo_present:
            self._run(f"INSERT INTO {TABLE} (username, password_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                      "demo", hash_password(self._demo_password))
            self._demo_present = True
        rows = self._run(f"SELECT password_hash FROM {TABLE} WHERE username = $1", username)
        return bool(rows) and rows[0][0] is not None and check_password(password, rows[0][0])

    def register(self, username: str, password: str) -> None:
        try:
            self._run(f"INSERT INTO {TABLE} (username, password_hash) VALUES ($1, $2)", username,
                      hash_password(password))
        except PgError as exc:  # re-raised by _run only for a duplicate
            raise UserExists(username) from exc

    def _run(self, sql: str, *params: str):
        try:
            return self.db.query(sql, *params)
        except DependencyDown as exc:
            raise StoreUnavailable(f"the user database cannot be reached ({exc})") from None
        except PgError as exc:
            if exc.code == UNIQUE_VIOLATION:
                raise
            if exc.code == UNDEFINED_TABLE:
                raise StoreUnavailable(f"schema missing: table {TABLE} (run the init step db-init)") from None
            raise StoreUnavailable(f"the user database refused: {exc}") from None


class DemoUserOnly:
    """The user store without a database: the demo user alone, its password compared with the secret."""

    def __init__(self, demo_password: str):
        self._demo_password = demo_password

    def state(self) -> str:
        return "up"

    def authenticate(self, username: str, password: str) -> bool:
        return username == "demo" and hmac.compare_digest(self._demo_password.encode(), password.encode())

    def register(self, username: str, password: str) -> None:
        raise StoreUnavailable("no user database here (DATABASE_HOST is not set): only the demo user logs in")
