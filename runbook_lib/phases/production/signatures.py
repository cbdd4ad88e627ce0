"""prod.logs: the error signatures of real runtimes in a container's log, grouped.

A log is read line by line (``docker logs --timestamps``) and each line is either part of an error
*event* of a known kind, an access-log line (its status counted), a line matching the parameters'
``log_patterns``, or nothing. The kinds:

- ``python``: a traceback (``Traceback (most recent call last):``, its frames, the exception line;
  chained tracebacks are one event);
- ``java``: a Java/Kotlin/Scala exception trace (a header line, then ``at pkg.Class.method(File.java:N)``
  frames, ``Caused by:``, ``... N more``);
- ``node``: a Node.js error with its ``at fn (file.js:L:C)`` frames, an unhandled promise rejection;
- ``dotnet``: a .NET exception with its ``at Ns.Type.Method() in file.cs:line N`` frames;
- ``go``: ``panic:``, ``fatal error:`` (the process dies: critical) and ``http: panic serving`` (recovered);
- ``ruby``: ``file.rb:N:in 'method': message (Class)`` and a Rails ``FATAL -- : Class (message)``;
- ``server_error`` / ``server_crit``: nginx or Apache error-log lines at ``[error]`` (medium) or at
  ``[crit]``/``[alert]``/``[emerg]`` (high);
- ``pattern``: a line (outside every event) matching ``production.log_patterns``;
- and, from the access-log lines (``"GET /path HTTP/1.1" 500``), the fraction answered 5xx (high; medium
  when the burst ended, :data:`RECOVERED_AFTER` answers without a 5xx having followed the last one).

Events are grouped by *signature* (the kind, the exception class and where it was thrown, or the message
with its numbers and ids blanked) with a count, the first and last time and one sample. A trace of a client
that went away mid-response (BrokenPipeError, ConnectionResetError, EPIPE...) is kept at severity low: noted,
never a finding. Every sample and
signature passes through ``redact`` (the run's redactor) and :func:`scrub_credentials` first: a log line is
never stored as it was read.
"""
from __future__ import annotations

import re
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
#: Access lines answered without a 5xx after the last one that make a 5xx burst "recovered" (medium: WARN): a
#: service that answered 500 while its database was still starting, then served normally.
RECOVERED_AFTER = 10
#: ... or, with at least one answer since, a burst whose last 5xx came this soon after the window's first line.
STARTUP_GRACE_S = 60
KINDS: dict[str, tuple[str, str]] = {  # kind: (what it is, severity)
    "python": ("Python traceback", "high"),
    "java": ("Java/Kotlin exception trace", "high"),
    "node": ("Node.js error", "high"),
    "dotnet": (".NET exception", "high"),
    "go": ("Go panic or fatal error", "high"),
    "ruby": ("Ruby exception", "high"),
    "server_crit": ("nginx/Apache [crit]/[alert]/[emerg]", "high"),
    "server_error": ("nginx/Apache [error]", "medium"),
    "pattern": ("line matching production.log_patterns", "high"),
    "http_5xx": ("5xx responses in the access log", "high"),  # medium once RECOVERED_AFTER answers follow
}
# A client that went away mid-response (a timed-out healthcheck, a closed browser tab): the server's write
# failed, the server is fine. Such a trace is noted (severity low), never a finding.
_CLIENT_GONE = re.compile(r"BrokenPipeError|ConnectionResetError|ConnectionAbortedError|ClientAbortException|"
                          r"\bBroken pipe\b|Connection reset by peer|\bEPIPE\b|\bECONNRESET\b")
MAX_GROUPS = 50
MAX_SAMPLE_LINES = 16
MAX_LINE = 300

_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PY_START = re.compile(r"Traceback \(most recent call last\):")
_PY_CHAIN = re.compile(r"^(During handling of the above exception|The above exception was the direct cause)")
_PY_EXC = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::\s?(.*))?$")
_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')
_JAVA_FRAME = re.compile(r"^\s*at [\w$.<>/@-]+\((?:[\w$-]+\.(?:java|kt|scala|groovy|clj):\d+|Native Method|Unknown Source)\)\s*$")
_NODE_FRAME = re.compile(r"^\s*at (?:async )?(?:\S.* \()?(?:node:[^()]*|[^()\s]*\.\w+):\d+:\d+\)?\s*$")
_DOTNET_FRAME = re.compile(r"^\s*at [\w`<>$|+\[\], ]*\w\.[\w.`<>$|+\[\], ]+\([^)]*\)(?: in .+:line \d+)?\s*$")
_FRAME_KINDS = (("java", _JAVA_FRAME), ("node", _NODE_FRAME), ("dotnet", _DOTNET_FRAME))
_TRACE_MORE = re.compile(r"^\s*(\.\.\. \d+ (?:more|common frames omitted)|Caused by: |Suppressed: |--- End of |---> |"
                         r"at |\[CIRCULAR|\{$|\}$|code: )")
_EXC_CLASS = re.compile(r"((?:[A-Za-z_$][\w$]*\.)*[A-Z][\w$]*(?:Exception|Error|Throwable|Fault|Failure))\b")
_SINGLE: tuple[tuple[str, re.Pattern[str], str], ...] = (  # kind, regex on the message, severity override
    ("go", re.compile(r"^(panic: .+|fatal error: .+)"), "critical"),
    ("go", re.compile(r"http: (panic serving) [^:]+:\d+: (.+)"), ""),
    ("node", re.compile(r"(\[?UnhandledPromiseRejection(?:Warning)?\b.*|^Uncaught \w+.*)"), ""),
    ("ruby", re.compile(r"^(\S+\.rb:\d+:in [`'].+?'): .* \(([A-Z][\w:]*)\)$"), ""),
    ("ruby", re.compile(r"\bFATAL -- : (?:\[[^\]]*\] )*([A-Z][\w:]*(?:Error|Exception|Invalid|NotFound)) \("), ""),
    ("nginx", re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(error|crit|alert|emerg)\] \d+#\d+: (?:\*\d+ )?(.*)"), ""),
    ("apache", re.compile(r"^\[[^\]]+\] \[(?:[\w-]+:)?(error|crit|alert|emerg)\] (?:\[pid [^\]]*\] )?(?:\[client [^\]]*\] )?(.*)"), ""),
)
_ACCESS = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE) (\S+) HTTP/[\d.]+" (\d{3})\b')
_NORM = ((re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
         (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
         (re.compile(r"\d+"), "<n>"))
_URL_CRED = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@", re.I)
_KV_CRED = re.compile(r"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credential)s?)"
                      r"(\"?'?\s*[:=]\s*\"?'?)([^\s\"',;&}]+)")


def _ts_key(ts: str) -> str:
    """An engine timestamp made comparable as text: its fraction padded to nanoseconds (the engine trims
    trailing zeros: .43488061Z is .434880610Z)."""
    m = re.match(r"^([^.Z+]+)(?:\.(\d+))?(.*)$", ts)
    return f"{m.group(1)}.{(m.group(2) or '').ljust(9, '0')}{m.group(3)}" if m else ts


def scrub_credentials(text: str) -> str:
    """Credential-shaped parts of a log line the run could not know as secrets: a URL's password
    (``postgres://user:[REDACTED]@db``) and the value after a password/secret/token/key name."""
    text = _URL_CRED.sub(lambda m: f"{m.group(1)}{m.group(2)}:[REDACTED]@", text)
    return _KV_CRED.sub(lambda m: m.group(1) + m.group(2) + ("[REDACTED]" if "REDACTED" not in m.group(3) else m.group(3)), text)


def normalize(text: str, limit: int = 160) -> str:
    """A message with its numbers, hex ids and uuids blanked, so one fault logged many times is one signature."""
    for rx, repl in _NORM:
        text = rx.sub(repl, text)
    return text.strip()[:limit]


@dataclass
class _Event:
    kind: str
    at: str | None
    lines: list[str] = field(default_factory=list)
    header: str = ""
    exc: str = ""
    state: str = "frames"
    severity: str = ""
    signature: str = ""


class LogScanner:
    """Feed it log lines (oldest first), then read :meth:`result`. ``redact`` scrubs a sample or a signature
    before it is kept (the run's redactor); :func:`scrub_credentials` is applied after it."""

    def __init__(self, patterns: Iterable[str] = (), redact: Callable[[str], str] | None = None) -> None:
        self.patterns = [re.compile(p, re.IGNORECASE) for p in patterns]
        self._redact = redact or (lambda s: s)
        self.lines_read, self.first_at, self.last_at = 0, None, None
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.access_lines, self.access_5xx = 0, 0
        self.ok_since_5xx = 0  # access lines answered without a 5xx since the last one
        self.last_5xx_at: str | None = None
        self._event: _Event | None = None
        self._pending: tuple[str, str | None] | None = None  # the last plain line: a header if frames follow

    # -- reading --------------------------------------------------------------------------------
    def feed(self, raw: str) -> None:
        m = _TS.match(raw)
        at, msg = (m.group(1), raw[m.end():]) if m else (None, raw)
        if "\x1b[" in msg:
            msg = _ANSI.sub("", msg)  # colours (Werkzeug, rich, pino-pretty): the text is what is matched
        self.lines_read += 1
        if at:
            self.first_at = min(self.first_at or at, at, key=_ts_key)
            self.last_at = max(self.last_at or at, at, key=_ts_key)
        if "\\n" in msg and (_PY_START.search(msg) or "\\n\\tat " in msg or "\\n    at " in msg):
            for part in msg.replace('\\"', '"').replace("\\t", "\t").replace("\\n", "\n").split("\n"):  # a JSON-escaped trace
                self._line(part, at)
        else:
            self._line(msg.rstrip("\r"), at)

    def end_stream(self) -> None:
        """The end of one stream (stdout, then stderr): an open event ends with it. Each stream is read on its
        own because the engine interleaves them: a traceback on stderr is cut by the stdout lines written
        meanwhile when both are read as one."""
        self._close()
        self._flush_pending()

    def _line(self, msg: str, at: str | None) -> None:
        self._access(msg, at)
        if self._event is not None:
            if self._continues(self._event, msg):
                return
            self._close()
        kind = next((k for k, rx in _FRAME_KINDS if rx.match(msg)), None)
        if kind:  # frames: the line before them is the header
            header = self._pending[0] if self._pending else ""
            at0 = self._pending[1] if self._pending else at
            self._pending = None
            if "Unhandled exception." in header or re.search(r"\bSystem\.\w", header):
                kind = "dotnet"
            self._event = _Event(kind, at0 or at, [header, msg] if header else [msg], header=header)
            return
        self._flush_pending()
        hit = _PY_START.search(msg)
        if hit:
            self._event = _Event("python", at, [msg[hit.start():]])
            return
        if self._single(msg, at):
            return
        self._pending = (msg, at)

    def _continues(self, ev: _Event, msg: str) -> bool:
        """Is ``msg`` part of the open event? (Appended when it is.)"""
        if ev.kind == "python":
            ok = True
            if not msg.strip():
                pass  # a blank line, inside a chain or at its end
            elif _PY_CHAIN.match(msg):
                ok, ev.state = ev.state == "exc", "chain"
            elif msg.startswith("Traceback (most recent call last)"):
                ok, ev.state = ev.state == "chain", "frames"  # chained only after the sentence that says so
            elif msg[:1] in (" ", "\t"):
                ok = ev.state == "frames"
            elif ev.state == "frames" and _PY_EXC.match(msg):
                ev.exc, ev.state = msg, "exc"
            else:
                ok = False
        else:
            ok = bool(_TRACE_MORE.match(msg)) or any(rx.match(msg) for _, rx in _FRAME_KINDS)
        if ok and len(ev.lines) < 400:
            ev.lines.append(msg)
        return ok

    def _flush_pending(self) -> None:
        if self._pending is not None:
            msg, at = self._pending
            self._pending = None
            pat = next((p.pattern for p in self.patterns if p.search(msg)), None)
            if pat:
                self._add("pattern", f"matches {pat}: {normalize(msg, 120)}", at, [msg], "")

    def _single(self, msg: str, at: str | None) -> bool:
        for kind, rx, sev in _SINGLE:
            m = rx.search(msg)
            if not m:
                continue
            if kind in ("nginx", "apache"):
                level, text = m.group(1), m.group(2)
                text = re.split(r", (?:client|server|request|upstream|host|referrer): ", text)[0]
                kind = "server_error" if level == "error" else "server_crit"
                self._add(kind, f"[{level}] {normalize(text)}", at, [msg], "")
            elif kind == "go":
                self._add("go", normalize(" ".join(g for g in m.groups() if g)), at, [msg], sev)
            elif kind == "ruby":
                sig = f"{m.group(2)} at {m.group(1)}" if m.lastindex and m.lastindex >= 2 else m.group(1)
                self._add("ruby", normalize(sig), at, [msg], sev)
            else:  # node: an unhandled rejection (named by its reason when it gives one) or an uncaught error
                reason = re.search(r'rejected with the reason "([^"]*)"', msg)
                sig = (f'unhandled promise rejection: "{reason.group(1)}"' if reason else
                       "unhandled promise rejection" if "Unhandled" in m.group(1) else m.group(1))
                self._add(kind, normalize(sig, 120), at, [msg], sev)
            return True
        return False

    def _access(self, msg: str, at: str | None) -> None:
        m = _ACCESS.search(msg)
        if not m:
            return
        self.access_lines += 1
        self.ok_since_5xx += 1
        if m.group(3).startswith("5"):
            self.access_5xx += 1
            self.ok_since_5xx = 0
            self.last_5xx_at = at
            path = normalize(m.group(2).split("?", 1)[0], 80)
            self._add("http_5xx", f"{m.group(3)} {m.group(1)} {path}", at, [msg], "")

    # -- closing and grouping ---------------------------------------------------------------------
    def _close(self) -> None:
        ev, self._event = self._event, None
        if ev is None:
            return
        if ev.kind == "python":
            frames = [f for f in (_PY_FRAME.match(line) for line in ev.lines) if f]
            where = f" at {frames[-1].group(1)}:{frames[-1].group(2)} in {frames[-1].group(3)}" if frames else ""
            exc = _PY_EXC.match(ev.exc).group(1) if ev.exc else "(no exception line)"
            sig = f"{exc}{where}"
        else:
            m = _EXC_CLASS.search(ev.header) or (re.match(r"^\s*(\w*Error)\b", ev.header))
            first = next((line.strip()[3:] for line in ev.lines if line.strip().startswith("at ")), "")
            sig = f"{m.group(1) if m else '(no header line)'} at {normalize(first, 120)}"
        gone = _CLIENT_GONE.search(ev.exc if ev.kind == "python" else ev.header)
        self._add(ev.kind, sig, ev.at, ev.lines, "low" if gone else ev.severity)

    def _within_startup(self, at: str | None) -> bool:
        """Whether ``at`` is at most :data:`STARTUP_GRACE_S` after the window's first line (the container's
        start, when the window is "since this deploy")."""
        try:
            first, last = (datetime.fromisoformat(_ts_key(t)[:26]) for t in (self.first_at, at))
        except (TypeError, ValueError):
            return False
        return (last - first).total_seconds() <= STARTUP_GRACE_S

    def _add(self, kind: str, signature: str, at: str | None, lines: list[str], severity: str) -> None:
        signature = scrub_credentials(self._redact(signature))
        g = self.groups.get((kind, signature))
        if g is None:
            if len(self.groups) >= MAX_GROUPS:
                g = self.groups.setdefault(("other", "(more signatures than the evidence keeps)"), {
                    "kind": "other", "what": "further signatures", "severity": "high",
                    "signature": "(more signatures than the evidence keeps)", "count": 0, "first_at": at,
                    "last_at": at, "sample": []})
            else:
                sample = lines if len(lines) <= MAX_SAMPLE_LINES else lines[:4] + ["..."] + lines[-(MAX_SAMPLE_LINES - 5):]
                g = self.groups[(kind, signature)] = {
                    "kind": kind, "what": KINDS[kind][0], "severity": severity or KINDS[kind][1],
                    "signature": signature, "count": 0, "first_at": at, "last_at": at,
                    "sample": [scrub_credentials(self._redact(line[:MAX_LINE])) for line in sample]}
        g["count"] += 1
        if at:
            g["first_at"] = min(g["first_at"] or at, at, key=_ts_key)
            g["last_at"] = max(g["last_at"] or at, at, key=_ts_key)

    def result(self, max_5xx_fraction: float = 0.01) -> dict[str, Any]:
        """What was read: lines, first/last time, the groups (most severe and most frequent first), the access
        lines and their 5xx fraction. 5xx groups are kept only when that fraction is over ``max_5xx_fraction``."""
        self._close()
        self._flush_pending()
        frac = self.access_5xx / self.access_lines if self.access_lines else None
        over = frac is not None and frac > max_5xx_fraction
        groups = [g for g in self.groups.values() if g["kind"] != "http_5xx" or over]
        recovered = over and (self.ok_since_5xx >= RECOVERED_AFTER or (
            self.ok_since_5xx >= 1 and self._within_startup(self.last_5xx_at)))
        if recovered:  # a burst that ended (a dependency still starting): worth a WARN, not a blocker
            for g in groups:
                if g["kind"] == "http_5xx":
                    g["severity"] = "medium"
                    g["what"] = (f"5xx responses in the access log, then {self.ok_since_5xx} answered without one"
                                 + (f" (all within {STARTUP_GRACE_S} s of the window's first line: start-up)"
                                    if self.ok_since_5xx < RECOVERED_AFTER else ""))
        groups.sort(key=lambda g: (-SEVERITY_RANK.get(g["severity"], 0), -g["count"], g["signature"]))
        return {"lines_read": self.lines_read, "first_line_at": self.first_at, "last_line_at": self.last_at,
                "event_count": sum(g["count"] for g in groups), "groups": groups,
                "access_log": {"lines": self.access_lines, "5xx": self.access_5xx,
                               "fraction_5xx": None if frac is None else round(frac, 4),
                               "max_fraction_5xx": max_5xx_fraction}}


def scan_signatures(lines: Iterable[str] | list[Iterable[str]], patterns: Iterable[str] = (),
                    redact: Callable[[str], str] | None = None, max_5xx_fraction: float = 0.01,
                    streams: bool = False) -> dict[str, Any]:
    """Scan log lines for the error signatures of real runtimes (see the module's docstring). ``streams``:
    ``lines`` is a list of streams (stdout's lines, stderr's), each read on its own."""
    scanner = LogScanner(patterns, redact)
    for stream in (lines if streams else [lines]):
        for line in stream:
            scanner.feed(line)
        scanner.end_stream()
    return scanner.result(max_5xx_fraction)
