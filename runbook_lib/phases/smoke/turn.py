"""Phase 4, TURN/STUN servers (``smoke.turn``): spoken to in their own protocol, over UDP, as a video call's
client would (:mod:`runbook_lib.drills.turn_client`). A TURN server whose container runs, or whose port is
open, may still refuse every allocation: only an allocation granted proves it relays, and only a wrong
password refused proves it checks credentials."""
from __future__ import annotations

import re
import secrets

from runbook_lib.drills import probes, turn_client
from runbook_lib.results.records import Check, CheckRecord
from runbook_lib.results.registry import check
from runbook_lib.run.context import Context
from runbook_lib.phases.smoke.endpoints import PHASE, secret_reader

_URL = re.compile(r"^turn:([^:/?]+)(?::(\d+))?")


@check("smoke.turn", "TURN/STUN server relays for its credentials only", phase=PHASE, severity="high",
       category="End-to-end flow",
       remediation="Read the refusal the server gave (401: the user or password in its configuration differs from "
                   "the secret's; no answer: the port is not published or the server is down) and the server's log.")
def turn(ctx: Context) -> list[CheckRecord]:
    """Each ``smoke.turn`` server: a STUN binding request is answered (``<name> binding``); a TURN allocation
    with the user name and the password of the named file secret is granted, then released (``<name>
    allocation``); an allocation with a wrong password is refused (``<name> wrong password``)."""
    c = Check("smoke.turn")
    servers = ctx.params.smoke.turn
    if not servers:
        return [_none_configured(ctx, c)]
    read = secret_reader(ctx)
    out: list[CheckRecord] = []
    for s in servers:
        m = _URL.match(s.url)
        host, port = m.group(1), int(m.group(2) or 3478)
        ev = {"url": s.url, "username": s.username, "password_secret": s.password_secret, "timeout_s": s.timeout_s}
        cmd = f"turnutils_uclient -y -u {s.username} -w <secret {s.password_secret}> -p {port} {host}"

        got = turn_client.binding(host, port, s.timeout_s)
        status = "PASS" if got.ok else "FAIL"
        out.append(c.record(f"{s.name} binding", status, expected="a STUN binding response", command=cmd,
                            actual=f"binding {got.describe()}", evidence={**ev, **_answer(got)}))
        try:
            password = read(s.password_secret)
        except probes.TemplateError as exc:
            for what in ("allocation", "wrong password"):
                out.append(c.record(f"{s.name} {what}", "ERROR", expected="the credentials' password", actual=str(exc),
                                    evidence=ev, command=cmd))
            continue
        got = turn_client.allocate(host, port, s.username, password, s.timeout_s)
        out.append(c.record(f"{s.name} allocation", "PASS" if got.ok else "FAIL", command=cmd,
                            expected=f"an allocation granted to {s.username} with secret {s.password_secret}'s password",
                            actual=f"allocation {got.describe()}" + ("; released" if got.ok else ""),
                            evidence={**ev, **_answer(got)}))
        wrong = turn_client.allocate(host, port, s.username, secrets.token_urlsafe(16), s.timeout_s)
        if wrong.code in (401, 441):
            status, actual = "PASS", f"refused: {wrong.code} {wrong.reason}".rstrip()
        elif wrong.ok:
            status, actual = "FAIL", "granted with a wrong password: the server does not check credentials"
        else:
            status, actual = "ERROR", f"no refusal to judge: {wrong.describe()}"
        out.append(c.record(f"{s.name} wrong password", status, expected="401 Unauthorized to a wrong password",
                            actual=actual, evidence={**ev, **_answer(wrong)}, command=cmd))
    return out


def _answer(a: turn_client.StunAnswer) -> dict:
    return {"answered": a.ok or a.code is not None, "granted": a.ok, "error_code": a.code, "reason": a.reason,
            "error": a.error, "address": a.address, "rtt_ms": round(a.rtt_ms, 1) if a.rtt_ms is not None else None}


def _none_configured(ctx: Context, c: Check) -> CheckRecord:
    """No ``smoke.turn``: INFO when the compose model runs no TURN/STUN server (nothing to ask; classified as
    `runbook init` does), SKIP naming the one it runs (a TURN server nobody asked is not verified)."""
    from runbook_lib.run.starter_evidence import classify

    found = {}
    for svc, spec in sorted((ctx.model.get("services") or {}).items()):
        seen = classify(svc, spec)
        if seen.kind == "turn":
            found[svc] = seen.why
    ev = {"smoke.turn": [], "turn_servers_in_the_model": found}
    if found:
        return c.record("turn", "SKIP", expected="TURN servers to ask", severity="info", evidence=ev,
                        actual=f"no smoke.turn in the parameters, yet the compose model runs a TURN/STUN server "
                               f"({', '.join(found)}): name it in smoke.turn to verify it")
    return c.record("turn", "INFO", expected="TURN servers to ask", severity="info", evidence=ev,
                    actual="no smoke.turn in the parameters and no TURN/STUN server in the compose model: nothing to ask")
