"""HTTP probes for the smoke tests: concurrent requests with bounded timeouts, Prometheus text parsing,
and declarative HTTP scenarios (the end-to-end flow).

Everything goes through httpx's async client, so asking twenty endpoints takes about as long as asking
the slowest one (``benchmarks/bench_probes.py`` measures it). A request that fails is *data*: it comes
back as a :class:`ProbeResult` with ``error`` set, never as an httpx exception. Only problems with the
request *description* (a template naming a value nobody captured, an unknown secret) raise
:class:`TemplateError`.

Bodies are read up to a cap and then dropped, so a 5 MB answer costs at most the cap; evidence keeps a
short excerpt. Sensitive request headers (``Authorization``, cookies, API keys) never enter evidence,
and flow evidence shows request bodies as written in the parameters (``{{ secret:NAME }}``), not as sent.

Templates, in URLs, headers, ``json`` and ``body``::

    {{ token }}                   a value captured by an earlier flow step (``capture: {token: $.token}``)
    {{ run_id }}                  random hex, fixed for one flow run (unique object keys, room names...)
    {{ secret:demo_user_password }}  the compose model's file secret of that name, read at run time

Exception tree::

    RunbookError
    └── ProbeError              a probe could not even be described or started
        └── TemplateError       a template names an unknown value or secret
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from runbook_lib.errors import RunbookError

SENSITIVE_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
# Bytes read from a probe's body before it is dropped (health, drills) and from a flow step's body
# (which may need to be parsed as JSON).
PROBE_BODY_CAP = 64 * 1024
FLOW_BODY_CAP = 1024 * 1024
EXCERPT_CHARS = 300

_TEMPLATE_RE = re.compile(r"\{\{\s*(secret:)?([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_PATH_PART_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


class ProbeError(RunbookError):
    """A probe could not be described or started (not: the endpoint failed, which is data)."""


class TemplateError(ProbeError):
    """A template in a request names a value that was never captured, or an unknown secret."""


# -- templates and JSON paths ------------------------------------------------------------------------
def render(value: Any, variables: dict[str, str], secret: Callable[[str], str] | None = None) -> Any:
    """Fill ``{{ name }}`` and ``{{ secret:NAME }}`` in every string of ``value`` (dicts, lists too).
    A string that is exactly one template takes the variable's value as is (a number stays a number)."""
    if isinstance(value, str):
        def one(m: re.Match) -> Any:
            is_secret, name = m.group(1), m.group(2)
            if is_secret:
                if secret is None:
                    raise TemplateError(f"{{{{ secret:{name} }}}}: secrets are not available here")
                return secret(name)
            if name not in variables:
                known = ", ".join(sorted(variables)) or "none yet"
                raise TemplateError(f"{{{{ {name} }}}} is not a captured value (known: {known})")
            return variables[name]

        whole = _TEMPLATE_RE.fullmatch(value.strip())
        if whole:
            return one(whole)
        return _TEMPLATE_RE.sub(lambda m: str(one(m)), value)
    if isinstance(value, dict):
        return {k: render(v, variables, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables, secret) for v in value]
    return value


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def json_path(data: Any, path: str) -> Any:
    """The value at ``path`` (``$``, ``$.a.b``, ``$.items[0].id``) in parsed JSON, or MISSING."""
    if not path.startswith("$"):
        raise ValueError(f"{path!r}: a JSON path starts with $")
    rest, cur = path[1:], data
    while rest:
        m = _PATH_PART_RE.match(rest)
        if not m:
            raise ValueError(f"{path!r}: cannot parse {rest!r} (use .field and [index])")
        key, idx = m.group(1), m.group(2)
        if key is not None:
            if not isinstance(cur, dict) or key not in cur:
                return MISSING
            cur = cur[key]
        else:
            i = int(idx)
            if not isinstance(cur, list) or i >= len(cur):
                return MISSING
            cur = cur[i]
        rest = rest[m.end():]
    return cur


def safe_headers(headers: dict[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers fit for evidence: sensitive ones replaced by a fixed marker (never the value)."""
    items = headers.items() if isinstance(headers, dict) else headers
    return {k: ("[REDACTED header]" if k.lower() in SENSITIVE_HEADERS else v) for k, v in items}


def excerpt(body: bytes, total: int | None, chars: int = EXCERPT_CHARS) -> str:
    """A short text excerpt of a body, saying how much was left out."""
    text = body.decode("utf-8", "replace")
    size = total if total is not None else len(body)
    if len(text) <= chars and size <= len(body):
        return text
    return text[:chars] + f"… [truncated: {size} bytes in total]"


# -- one request -------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    """What one request saw. ``t`` is seconds since the probe's clock origin (a drill's start);
    ``ok`` is decided by the caller's expectation (status in the accepted set)."""

    name: str
    method: str
    url: str
    status: int | None = None
    latency_s: float = 0.0
    error: str | None = None
    body: bytes = field(default=b"", repr=False)
    body_bytes: int | None = None  # Content-Length, or bytes read when the body was read whole
    truncated: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    t: float = 0.0
    wall: float = 0.0
    ok: bool = False

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.url}"

    def evidence(self, chars: int = EXCERPT_CHARS) -> dict[str, Any]:
        """Status, latency, a few response headers and a truncated body excerpt (to be redacted)."""
        ev: dict[str, Any] = {"request": self.request_line, "status": self.status,
                              "latency_ms": round(self.latency_s * 1000, 1)}
        if self.error:
            ev["error"] = self.error
        if self.attempts > 1:
            ev["attempts"] = self.attempts
        if self.status is not None:
            ev["content_type"] = self.headers.get("content-type", "")
            ev["body_bytes"] = self.body_bytes
            ev["body_excerpt"] = excerpt(self.body, self.body_bytes, chars)
            if self.truncated:
                ev["body_read_bytes"] = len(self.body)
        return ev

    def point(self) -> dict[str, Any]:
        """The compact form drills record for every probe."""
        return {"t": round(self.t, 3), "status": self.status, "latency_ms": round(self.latency_s * 1000, 1),
                "ok": self.ok, **({"error": self.error} if self.error else {})}

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError)."""
        if self.truncated:
            raise ValueError(f"body larger than the {len(self.body)} bytes read")
        return json.loads(self.body.decode("utf-8"))


def _describe(exc: Exception) -> str:
    kind = type(exc).__name__
    msg = str(exc) or kind
    return f"{kind}: {msg}"[:300]


async def _exchange(client: httpx.AsyncClient, res: ProbeResult, method: str, url: str, headers, json_body,
                    content, timeout: float, body_cap: int) -> None:
    async with client.stream(method, url, headers=headers, json=json_body, content=content, timeout=timeout) as resp:
        res.status = resp.status_code
        res.headers = {k.lower(): v for k, v in resp.headers.items()
                       if k.lower() in ("content-type", "content-length", "location")}
        chunks, size = [], 0
        async for chunk in resp.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > body_cap:
                res.truncated = True
                break
        res.body = b"".join(chunks)[:body_cap]
        length = resp.headers.get("content-length")
        res.body_bytes = int(length) if length and length.isdigit() else (None if res.truncated else size)


async def request(client: httpx.AsyncClient, name: str, method: str, url: str, *,
                  headers: dict[str, str] | None = None, json_body: Any = None, content: str | bytes | None = None,
                  timeout: float = 5.0, retries: int = 0, body_cap: int = PROBE_BODY_CAP,
                  origin: float | None = None) -> ProbeResult:
    """Send one request; never raises for network trouble (the result carries ``error``).

    ``retries`` repeats the request after a transport error or timeout (not after an HTTP status): a
    listener that is still starting gets a second chance, a wrong answer does not. The whole request,
    body included, is bounded by ``timeout``; at most ``body_cap`` bytes of the body are read."""
    res = ProbeResult(name=name, method=method, url=url)
    start = time.monotonic()
    res.t = start - (origin if origin is not None else start)
    res.wall = time.time()
    for attempt in range(retries + 1):
        res.attempts = attempt + 1
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(_exchange(client, res, method, url, headers, json_body, content, timeout, body_cap),
                                   timeout)
            res.error = None
            res.latency_s = time.monotonic() - t0
            return res
        except (httpx.HTTPError, asyncio.TimeoutError, OSError) as exc:
            timed_out = isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException))
            res.status, res.error = None, f"timed out after {timeout}s" if timed_out else _describe(exc)
            res.latency_s = time.monotonic() - t0
            if attempt < retries:
                await asyncio.sleep(min(0.2 * (attempt + 1), 1.0))
    return res


def new_client(concurrency: int = 20) -> httpx.AsyncClient:
    """An async client that ignores proxy variables (probes go where the parameters say) and keeps
    at most ``concurrency`` connections."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=True,
                             limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))


def run_sync(make_coro: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from synchronous code, also inside Jupyter (whose kernel already
    runs an event loop: then the coroutine gets its own loop in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="probes") as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


@dataclass
class ProbeTarget:
    """A request to send (already rendered): what probe_all and ProbeLoop take."""

    name: str
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    content: str | None = None
    timeout_s: float = 5.0


def probe_all(targets: Sequence[ProbeTarget], *, retries: int = 0, concurrency: int = 20,
              body_cap: int = PROBE_BODY_CAP) -> list[ProbeResult]:
    """Send every request concurrently (at most ``concurrency`` at a time); results in input order."""

    async def main() -> list[ProbeResult]:
        sem = asyncio.Semaphore(concurrency)
        async with new_client(concurrency) as client:
            async def one(t: ProbeTarget) -> ProbeResult:
                async with sem:
                    return await request(client, t.name, t.method, t.url, headers=t.headers, json_body=t.json_body,
                                         content=t.content, timeout=t.timeout_s, retries=retries, body_cap=body_cap)
            return list(await asyncio.gather(*(one(t) for t in targets)))

    return run_sync(main) if targets else []


# -- Prometheus text exposition ------------------------------------------------------------------------
@dataclass
class MetricsText:
    families: dict[str, str]  # family name -> type
    names: set[str]           # every name a family can be asked for by (family, *_total, sample names)
    samples: int


def parse_metrics(text: str) -> MetricsText:
    """Parse Prometheus text exposition with prometheus_client's parser (raises ValueError when it is
    not valid). A counter ``x_total`` is a family ``x`` to the parser; both names are accepted."""
    families: dict[str, str] = {}
    names: set[str] = set()
    samples = 0
    try:
        for fam in text_string_to_metric_families(text):
            families[fam.name] = fam.type
            names.add(fam.name)
            if fam.type == "counter":
                names.add(fam.name + "_total")
            for s in fam.samples:
                names.add(s.name)
                samples += 1
    except Exception as exc:  # noqa: BLE001 - the parser raises ValueError, TypeError, IndexError...
        raise ValueError(f"not Prometheus text exposition: {type(exc).__name__}: {exc}") from exc
    return MetricsText(families, names, samples)


# -- declarative scenarios -------------------------------------------------------------------------------
@dataclass
class StepResult:
    """One flow step: what was sent (as written, templates unrendered), what came back, the verdict."""

    name: str
    status: str  # PASS, FAIL, ERROR, SKIP
    expected: str
    actual: str
    evidence: dict[str, Any]
    captured: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _expected_text(step) -> str:
    parts = [f"{step.method} answers {'/'.join(map(str, step.expect_status))}"]
    if step.capture:
        parts.append("captures " + ", ".join(f"{k} from {v}" for k, v in step.capture.items()))
    if step.expect_json:
        parts.append(", ".join(f"{k} == {v!r}" for k, v in step.expect_json.items()))
    if step.expect_body is not None:
        parts.append("body equals the expected text")
    return "; ".join(parts)


async def _run_flow(steps, variables: dict[str, Any], secret: Callable[[str], str] | None,
                    chars: int, concurrency: int) -> list[StepResult]:
    out: list[StepResult] = []
    async with new_client(concurrency) as client:
        for i, step in enumerate(steps):
            expected = _expected_text(step)
            if out and out[-1].status != "PASS":
                out.append(StepResult(step.name, "SKIP", expected, f"not run: step {out[-1].name!r} did not pass",
                                      {"request": f"{step.method} {step.url}"}))
                continue
            written = {"request": f"{step.method} {step.url}"}
            if step.headers:
                written["headers"] = safe_headers(step.headers)
            if step.json_body is not None:
                written["json"] = step.json_body
            if step.body is not None:
                written["body"] = step.body if len(step.body) <= chars else step.body[:chars] + "…"
            try:
                url = render(step.url, variables, secret)
                headers = render(step.headers, variables, secret)
                body = render(step.json_body, variables, secret)
                content = render(step.body, variables, secret) if step.body is not None else None
                expect_body = render(step.expect_body, variables, secret) if step.expect_body is not None else None
                expect_json = render(step.expect_json, variables, secret)
            except (TemplateError, RunbookError) as exc:
                out.append(StepResult(step.name, "ERROR", expected, f"cannot build the request: {exc}",
                                      {"step": i + 1, **written}))
                continue
            res = await request(client, step.name, step.method, url, headers=headers, json_body=body,
                                content=str(content) if content is not None else None,
                                timeout=step.timeout_s, body_cap=FLOW_BODY_CAP)
            ev = {"step": i + 1, **written, "sent_to": f"{step.method} {url}", **res.evidence(chars)}
            ev.pop("request", None)
            ev["request"] = written["request"]
            problems: list[str] = []
            captured: dict[str, Any] = {}
            if res.error:
                out.append(StepResult(step.name, "FAIL", expected, f"no answer: {res.error}", ev))
                continue
            if res.status not in step.expect_status:
                problems.append(f"answered {res.status}, expected {'/'.join(map(str, step.expect_status))}")
            needs_json = bool(step.capture or step.expect_json)
            data: Any = MISSING
            if needs_json and not problems:
                try:
                    data = res.json()
                except ValueError as exc:
                    problems.append(f"response is not JSON: {exc}")
            if data is not MISSING:
                for var, path in step.capture.items():
                    val = json_path(data, path)
                    if val is MISSING:
                        problems.append(f"nothing at {path} to capture as {var}")
                    else:
                        captured[var] = val
                for path, want in expect_json.items():
                    got = json_path(data, path)
                    if got is MISSING:
                        problems.append(f"{path} is missing")
                    elif got != want:
                        problems.append(f"{path} is {got!r}, expected {want!r}")
            if expect_body is not None and not problems:
                text = res.body.decode("utf-8", "replace")
                if res.truncated or text != str(expect_body):
                    problems.append("the body differs from what was expected")
                    ev["body_matches"] = False
                else:
                    ev["body_matches"] = True
            if captured:
                ev["captured"] = sorted(captured)
            variables.update(captured)
            if problems:
                out.append(StepResult(step.name, "FAIL", expected, "; ".join(problems), ev, captured))
            else:
                out.append(StepResult(step.name, "PASS", expected,
                                      f"{res.status} in {res.latency_s * 1000:.0f} ms"
                                      + (f", captured {', '.join(sorted(captured))}" if captured else ""),
                                      ev, captured))
    return out


def run_flow(steps: Sequence, *, secret: Callable[[str], str] | None = None,
             variables: dict[str, Any] | None = None, excerpt_chars: int = EXCERPT_CHARS,
             concurrency: int = 4) -> tuple[list[StepResult], dict[str, Any]]:
    """Run the steps in order (a step that does not pass skips the rest). Returns the step results and
    the variables at the end (``run_id`` plus every captured value): callers must teach captured
    values to the redactor before storing anything, since tokens are among them."""
    vars_: dict[str, Any] = {"run_id": uuid.uuid4().hex[:12], **(variables or {})}
    results = run_sync(lambda: _run_flow(steps, vars_, secret, excerpt_chars, concurrency)) if steps else []
    return results, vars_


# -- probing on a clock (drills) -------------------------------------------------------------------------
class ProbeLoop:
    """Probe each target every ``interval_s`` from a background thread (its own event loop), each
    target on its own schedule, so a slow answer delays only that target. ``results`` grows as probes
    finish; ``t`` is seconds since ``origin`` (time.monotonic()). ``judge(target_name, result)``
    decides ``ok``. With ``max_s`` it stops by itself that long after ``start``, whoever forgets to stop it."""

    def __init__(self, targets: Sequence[ProbeTarget], *, interval_s: float, origin: float,
                 judge: Callable[[str, ProbeResult], bool], concurrency: int = 20, max_s: float | None = None) -> None:
        self.targets, self.interval, self.origin, self.judge = list(targets), interval_s, origin, judge
        self.max_s, self.deadline = max_s, None
        self.concurrency = max(concurrency, len(self.targets))
        self.results: list[ProbeResult] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.crashed: BaseException | None = None

    def start(self) -> "ProbeLoop":
        self.deadline = time.monotonic() + self.max_s if self.max_s is not None else None
        self._thread = threading.Thread(target=self._run, name="drill-probes", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def snapshot(self) -> list[ProbeResult]:
        with self._lock:
            return list(self.results)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by the drill, never lost
            self.crashed = exc

    async def _main(self) -> None:
        async with new_client(self.concurrency) as client:
            await asyncio.gather(*(self._probe_forever(client, t) for t in self.targets))

    async def _probe_forever(self, client: httpx.AsyncClient, t: ProbeTarget) -> None:
        while not self._stop.is_set() and (self.deadline is None or time.monotonic() < self.deadline):
            t0 = time.monotonic()
            res = await request(client, t.name, t.method, t.url, headers=t.headers, json_body=t.json_body,
                                content=t.content, timeout=t.timeout_s, origin=self.origin)
            res.body = res.body[:2000]
            res.ok = self.judge(t.name, res)
            with self._lock:
                self.results.append(res)
            delay = self.interval - (time.monotonic() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
