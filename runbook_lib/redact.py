"""Redaction: no secret value ever reaches an output file, a log line or the report.

The run learns every secret value it can (the compose project's file secrets on the host, and
whatever a check reads from a secrets mount) and every string that is stored or shown passes through
:meth:`Redactor.scrub` first. A secret is replaced by ``[REDACTED sha256:<first 8 hex>]`` so two
records can still be compared ("same secret", "different secret") without revealing it. Its base64
forms are scrubbed too, and so are bearer tokens and JWTs, which are credentials whatever their source.
"""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any, Iterable

# Shorter values are not learned: replacing "1" or "yes" everywhere would shred the evidence, and a
# secret that short is itself a finding for the security phase.
MIN_SECRET_LEN = 6

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})")


def marker(value: str) -> str:
    """The replacement text for a secret value."""
    return f"[REDACTED sha256:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}]"


class Redactor:
    """Replaces known secret values (and credential-shaped strings) in strings and nested data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._marks: dict[str, str] = {}
        self.learn(values)

    def __len__(self) -> int:
        return len(self._values)

    def learn(self, values: Iterable[str]) -> None:
        """Add secret values (raw text; surrounding whitespace is also tried stripped)."""
        added = False
        for v in values:
            if not isinstance(v, str):
                continue
            for form in {v, v.strip()}:
                if len(form) < MIN_SECRET_LEN or form in self._values:
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

    def scrub_text(self, text: str) -> str:
        if not text:
            return text
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._marks[m.group(0)], text)
        text = _JWT_RE.sub(lambda m: marker(m.group(0)), text)
        text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {marker(m.group(2))}" if "REDACTED" not in m.group(2) else m.group(0), text)
        return text

    def scrub(self, obj: Any) -> Any:
        """Scrub every string in ``obj`` (dicts, lists, tuples; keys too). Returns a new object."""
        if isinstance(obj, str):
            return self.scrub_text(obj)
        if isinstance(obj, dict):
            return {self.scrub(k): self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.scrub(v) for v in obj)
        if isinstance(obj, bytes):
            return self.scrub_text(obj.decode("utf-8", "replace"))
        return obj

    def contains_secret(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(text))
