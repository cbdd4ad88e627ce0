"""Redaction: no secret value ever reaches an output file, a log line or the report.

The run learns every secret value it can (the compose project's file secrets on the host, and
whatever a check reads from a secrets mount) and every string that is stored or shown passes through
:meth:`Redactor.scrub` first. A secret is replaced by ``[REDACTED sha256:<first 8 hex>]`` so two
records can still be compared ("same secret", "different secret") without revealing it. Its base64
forms are scrubbed too, and so are bearer tokens and JWTs, which are credentials whatever their source.
"""
from __future__ import annotations

import base64
import math
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

# Only values that could identify a secret are learned (matched and replaced): replacing "1", "yes" or
# the project's own name everywhere would shred the evidence and raise false leaks. A value is identifying
# when it is at least MIN_SECRET_LEN characters, carries at least MIN_SECRET_BITS bits of Shannon entropy
# (per-character entropy x length) and is not a common password; :func:`weakness` says why not. A weak
# secret is itself a finding (`secrets.weak_value`).
MIN_SECRET_LEN = 8
MIN_SECRET_BITS = 30.0
# Redaction is wider than matching: every secret value of at least this length is replaced in every output,
# weak or not (a weak secret is still a secret: it must not reach a report). Names, keys and record ids are
# never rewritten (Redactor.scrub names=False / keep), which is what keeps a weak value from mangling them.
MIN_REDACT_LEN = 6
COMMON_PASSWORDS = frozenset({
    "password", "passw0rd", "changeme", "change_me", "changeit", "secret", "admin", "administrator", "root",
    "toor", "letmein", "welcome", "qwerty", "qwertyuiop", "123456", "12345678", "123456789", "1234567890",
    "default", "example", "test", "testing", "guest", "postgres", "mysql", "redis", "minio", "minioadmin",
    "rabbitmq", "mongo", "mongodb", "user", "pass", "master", "super", "superuser", "dragon", "monkey",
    "iloveyou", "trustno1", "sunshine", "football", "baseball", "password1", "abc123", "secretpassword",
    "mysecretpassword", "supersecret", "topsecret", "true", "false", "yes", "no", "none", "null",
})

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})")


def entropy_bits(value: str) -> float:
    """Shannon entropy of the characters of ``value`` times its length (bits)."""
    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) * n


def weakness(value: str, names: Iterable[str] = ()) -> str | None:
    """Why ``value`` cannot identify a secret (too short, a common password, too little entropy, one of
    ``names``: the project's own service, project or image names), or None when it can."""
    v = value.strip()
    low = v.lower()
    if len(v) < MIN_SECRET_LEN:
        return f"shorter than {MIN_SECRET_LEN} characters ({len(v)})"
    if low in COMMON_PASSWORDS or low.rstrip("0123456789!._-") in COMMON_PASSWORDS:
        return "a common password"
    if any(low == n.lower() or (len(n) >= len(v) and low in n.lower()) for n in names if n):
        return "the project's own name (a service, project or image name)"
    if entropy_bits(v) < MIN_SECRET_BITS:
        return f"too little entropy ({entropy_bits(v):.0f} bits, at least {MIN_SECRET_BITS:.0f} needed)"
    return None


def identifying(value: str, names: Iterable[str] = ()) -> bool:
    return weakness(value, names) is None


def marker(value: str) -> str:
    """The replacement text for a secret value."""
    import hashlib  # on first use: loading OpenSSL's hashes is a few ms of every `runbook lint` start

    return f"[REDACTED sha256:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}]"


class Redactor:
    """Replaces known secret values (and credential-shaped strings) in strings and nested data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._marks: dict[str, str] = {}
        # scrub_text's answers: evidence repeats the same strings across containers (keys, states, paths), and a
        # phase scrubs ~100,000 of them; forgotten whenever a value is learned
        self._done: dict[str, str] = {}
        self.learn(values)

    def __len__(self) -> int:
        return len(self._values)

    def learn(self, values: Iterable[str]) -> None:
        """Add secret values (raw text; surrounding whitespace is also tried stripped). Every value of at
        least MIN_REDACT_LEN characters is learned, weak or not; leak *matching* is narrower (see
        :func:`identifying`, used by the rules)."""
        added = False
        for v in values:
            if not isinstance(v, str):
                continue
            for form in {v, v.strip()}:
                if len(form) < MIN_REDACT_LEN or form in self._values:
                    continue
                self._values.add(form)
                self._marks[form] = marker(form)
                raw = form.encode()
                for enc in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
                    for e in {enc, enc.rstrip("=")}:
                        if len(e) >= MIN_SECRET_LEN and e not in self._values:
                            self._values.add(e)
                            self._marks[e] = self._marks[form]
                added = True
        if added:
            self._done = {}
            # Longest first so a value that contains another is replaced whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def learn_files(self, paths: Iterable[Path]) -> list[Path]:
        """Learn the content of secret files; returns the files that could not be read."""
        unreadable: list[Path] = []
        for p in paths:
            try:
                self.learn([Path(p).read_text(encoding="utf-8", errors="surrogateescape")])
            except OSError:
                unreadable.append(Path(p))
        return unreadable

    _DONE_MAX = 200_000  # strings remembered (a few MB at most)

    def scrub_text(self, text: str) -> str:
        if not text:
            return text
        done = self._done.get(text)
        if done is None:
            done = self._scrub_text(text)
            if len(self._done) < self._DONE_MAX:
                self._done[text] = done
        return done

    def _scrub_text(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._marks[m.group(0)], text)
        text = _JWT_RE.sub(lambda m: marker(m.group(0)), text)
        text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {marker(m.group(2))}" if "REDACTED" not in m.group(2) else m.group(0), text)
        return text

    def scrub_known(self, text: str) -> str:
        """Replace only the learned secret values (and their base64 forms), not the credential-shaped patterns:
        what can be applied to a whole file (JSON, HTML, YAML text) without mistaking its layout for a credential."""
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._marks[m.group(0)], text)

    def scrub(self, obj: Any, *, names: bool = True, keep: Iterable[str] = ()) -> Any:
        """Scrub every string in ``obj`` (dicts, lists, tuples, dataclasses as dicts; keys too unless ``names`` is
        False). Returns a new object of plain data. ``names=False``: dict keys are names (services, variables, secrets) and are left alone;
        so are the values of the top-level keys in ``keep`` (a record's id and target)."""
        if isinstance(obj, str):
            return self.scrub_text(obj)
        if isinstance(obj, dict):
            kept = set(keep)
            return {(self.scrub(k) if names else k): (v if k in kept else self.scrub(v, names=names))
                    for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.scrub(v, names=names) for v in obj)
        if isinstance(obj, bytes):
            return self.scrub_text(obj.decode("utf-8", "replace"))
        if is_dataclass(obj) and not isinstance(obj, type):  # as plain data, like dataclasses.asdict
            return self.scrub(asdict(obj), names=names)
        return obj

    def contains_secret(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where :meth:`scrub_text` could change ``text``: the spans matched by each of its patterns (a known
        secret value or its base64 form, a JWT, a bearer or basic credential), searched in ``text`` as it is.
        A text with no span is returned unchanged by :meth:`scrub_text` (a replacement never creates a
        match of the later patterns: the marker starts with "[")."""
        if not text:
            return []
        out = []
        for rx in (self._pattern, _JWT_RE, _BEARER_RE):
            if rx is not None:
                out += [m.span() for m in rx.finditer(text)]
        return out
