"""Default values shared by the parameters models (:mod:`.sections`) and the pydantic-free defaults `runbook lint`
starts with (:mod:`.defaults`): one definition each, so the two cannot differ."""
from __future__ import annotations

import functools
import os
import re

#: Regular expressions (case-insensitive, searched in a variable's NAME) of names that hold credentials.
DEFAULT_CREDENTIAL_PATTERNS: tuple[str, ...] = (
    r"SECRET", r"PASSWORD", r"PASSWD", r"PASSPHRASE", r"TOKEN", r"API_?KEY", r"PRIVATE_?KEY",
    r"CREDENTIAL", r"ACCESS_?KEY", r"AUTH_?KEY", r"SIGNING_?KEY", r"ENCRYPTION_?KEY", r"(^|_)DSN$",
    r"(^|_)AUTH$", r"(^|_)SALT($|_)", r"(^|_)PASS($|_)",
    # *_PWD, but not PWD itself (the shell's working directory)
    r"_PWD$",
)


@functools.lru_cache(maxsize=16)
def any_of(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex matching any of ``patterns`` (case-insensitive); cached per pattern list."""
    return re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!)", re.IGNORECASE)


def default_pool_size() -> int:
    """Concurrent engine calls by default: twice the CPUs, at most 8 (the engine does the work; more
    threads only queue on its socket)."""
    return max(1, min(8, 2 * (os.cpu_count() or 1)))
