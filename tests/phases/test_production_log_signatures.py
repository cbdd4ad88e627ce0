"""prod.logs' matcher on real-looking logs of each runtime: every kind is found, grouped by signature with
a count and first/last time, and kept only as a redacted sample. No Docker needed."""
from __future__ import annotations

from runbook_lib.phases.production.signatures import scan_signatures, scrub_credentials
from runbook_lib.results.redact import Redactor


def stamped(text: str, start: int = 0) -> list[str]:
    """Lines as `docker logs --timestamps` gives them, one second apart."""
    return [f"2026-12-07T{4 + (start + i) // 3600:02d}:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}.123456789Z {line}"
            for i, line in enumerate(text.splitlines())]


FLASK_500 = '''[2026-12-07 04:00:00,001] ERROR in app: Exception on /items/42 [GET]
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/flask/app.py", line 1473, in wsgi_app
    response = self.full_dispatch_request()
  File "/app/app.py", line 31, in item
    row = db.execute(f"SELECT * FROM items WHERE id={item_id}").fetchone()
sqlite3.OperationalError: no such table: items
172.18.0.1 - - [07/Dec/2026 04:00:00] "GET /items/42 HTTP/1.1" 500 -'''

PY_CHAINED = '''Traceback (most recent call last):
  File "/app/worker.py", line 10, in connect
    sock.connect(addr)
ConnectionRefusedError: [Errno 111] Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/worker.py", line 14, in main
    connect(("db", 5432))
RuntimeError: database unreachable at postgres://app:s3cr3t-Pa55@db:5432/app
worker stopped'''

JAVA = '''2026-12-07 04:00:01.123 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() failed
java.lang.NullPointerException: Cannot invoke "String.length()" because "name" is null
\tat com.example.demo.GreetingController.greet(GreetingController.java:21)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
Caused by: java.lang.IllegalStateException: boom
\tat com.example.demo.Repo.find(Repo.kt:9)
\t... 52 more
2026-12-07 04:00:02.000  INFO 1 --- [main] next line'''

GO = '''2026/12/07 04:00:00 listening on :8080
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6a8f2e]

goroutine 1 [running]:
main.main()
\t/src/main.go:12 +0x1e
2026/12/07 04:00:05 http: panic serving 172.18.0.1:53422: assignment to entry in nil map'''

NODE = '''Server listening on 3000
TypeError: Cannot read properties of undefined (reading 'id')
    at /app/routes/users.js:14:27
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at new Promise (<anonymous>)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
[UnhandledPromiseRejection: This error originated either by throwing inside of an async function without a catch block. The promise rejected with the reason "boom".] {
  code: 'ERR_UNHANDLED_REJECTION'
}'''

RUBY = '''/app/app.rb:7:in `block in <main>': undefined method `name' for nil:NilClass (NoMethodError)
\tfrom /usr/lib/ruby/3.1.0/webrick/httpservlet.rb:3:in `service'
F, [2026-12-07T04:00:00.000000 #1] FATAL -- : [3f2c] ActiveRecord::RecordNotFound (Couldn't find User with 'id'=7):'''

DOTNET = '''Unhandled exception. System.InvalidOperationException: Sequence contains no elements
   at System.Linq.ThrowHelper.ThrowNoElementsException()
   at Program.<Main>$(String[] args) in /src/Program.cs:line 12'''

NGINX = '''2026/12/07 04:00:00 [notice] 1#1: start worker processes
2026/12/07 04:00:01 [error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 172.18.0.1, server: _, request: "GET / HTTP/1.1", upstream: "http://172.18.0.3:5000/", host: "localhost"
2026/12/07 04:00:09 [error] 29#29: *7 connect() failed (111: Connection refused) while connecting to upstream, client: 172.18.0.9, server: _, request: "GET /a HTTP/1.1", upstream: "http://172.18.0.3:5000/a", host: "localhost"
2026/12/07 04:00:10 [emerg] 1#1: host not found in upstream "backend" in /etc/nginx/conf.d/default.conf:3
[Mon Dec 07 04:00:11.123456 2026] [proxy:error] [pid 12:tid 140] (111)Connection refused: AH00957: HTTP: attempt to connect to 127.0.0.1:8080 (*) failed'''


def kinds(scan):
    return {(g["kind"], g["signature"]): g for g in scan["groups"]}


def test_a_python_traceback_is_one_event_named_by_its_exception_and_innermost_frame():
    lines = stamped("\n".join([FLASK_500] * 1020))
    scan = scan_signatures(lines, [r"\bpanic\b"])
    g = kinds(scan)[("python", "sqlite3.OperationalError at /app/app.py:31 in item")]
    assert g["count"] == 1020 and g["severity"] == "high" and g["what"] == "Python traceback"
    assert g["first_at"] == lines[1][:30] and g["last_at"] == lines[-7][:30]  # when each traceback began
    assert g["sample"][0] == "Traceback (most recent call last):" and g["sample"][-1].startswith("sqlite3.")
    # every request also answered 500: the access-log lines say so
    assert scan["access_log"] == {"lines": 1020, "5xx": 1020, "fraction_5xx": 1.0, "max_fraction_5xx": 0.01}
    assert kinds(scan)[("http_5xx", "500 GET /items/<n>")]["count"] == 1020


def test_a_chained_python_traceback_is_one_event_and_its_sample_is_redacted():
    red = Redactor(["s3cr3t-Pa55"])
    scan = scan_signatures(stamped(PY_CHAINED), redact=red.scrub_text)
    (g,) = scan["groups"]
    assert g["signature"] == "RuntimeError at /app/worker.py:14 in main" and g["count"] == 1
    text = "\n".join(g["sample"])
    assert "s3cr3t-Pa55" not in text and "[REDACTED" in text
    # unknown to the redactor, a URL's password is still taken out
    assert "s3cr3t" not in "\n".join(scan_signatures(stamped(PY_CHAINED))["groups"][0]["sample"])


def test_java_node_dotnet_and_ruby_traces_are_found_with_their_exception_class():
    scan = scan_signatures(stamped("\n".join([JAVA, NODE, DOTNET, RUBY])))
    got = {(g["kind"], g["signature"].split(" at ")[0]): g["count"] for g in scan["groups"]}
    assert got == {("java", "java.lang.NullPointerException"): 1, ("node", "TypeError"): 1,
                   ("node", 'unhandled promise rejection: "boom"'): 1,
                   ("dotnet", "System.InvalidOperationException"): 1, ("ruby", "NoMethodError"): 1,
                   ("ruby", "ActiveRecord::RecordNotFound"): 1}, got
    java = next(g for g in scan["groups"] if g["kind"] == "java")
    assert java["signature"] == "java.lang.NullPointerException at com.example.demo.GreetingController.greet(GreetingController.java:<n>)"
    assert any("Caused by" in line for line in java["sample"])


def test_a_go_panic_is_critical_and_a_recovered_one_is_high():
    scan = scan_signatures(stamped(GO), [r"\bpanic\b", r"segfault|segmentation fault"])
    got = {g["signature"]: g["severity"] for g in scan["groups"]}
    assert got == {"panic: runtime error: invalid memory address or nil pointer dereference": "critical",
                   "panic serving assignment to entry in nil map": "high"}


def test_web_server_error_lines_are_grouped_without_their_client_and_rated_by_level():
    scan = scan_signatures(stamped(NGINX))
    got = {g["signature"]: (g["count"], g["severity"]) for g in scan["groups"]}
    assert got == {
        "[error] connect() failed (<n>: Connection refused) while connecting to upstream": (2, "medium"),
        '[emerg] host not found in upstream "backend" in /etc/nginx/conf.d/default.conf:<n>': (1, "high"),
        "[error] (<n>)Connection refused: AH<n>: HTTP: attempt to connect to <n>.<n>.<n>.<n>:<n> (*) failed": (1, "medium"),
    }, got


def test_a_clean_log_has_no_group_and_a_few_5xx_among_many_lines_stay_under_the_rate():
    ok = [f'172.18.0.1 - - [07/Dec/2026 04:00:00] "GET /health HTTP/1.1" 200 -' for _ in range(500)]
    scan = scan_signatures(stamped("\n".join(ok + ['1.2.3.4 - - [x] "GET /x HTTP/1.1" 503 12 "-" "curl"'])))
    assert scan["groups"] == [] and scan["access_log"]["5xx"] == 1 and scan["lines_read"] == 501
    assert scan_signatures([])["lines_read"] == 0


def test_a_configured_pattern_still_fails_a_line_no_runtime_signature_covers():
    scan = scan_signatures(stamped("starting\nFATAL:  password authentication failed for user \"app\"\nok"),
                           [r"\bfatal\b"])
    (g,) = scan["groups"]
    assert g["kind"] == "pattern" and g["count"] == 1 and g["signature"].startswith(r"matches \bfatal\b")


def test_a_json_log_line_holding_an_escaped_traceback_is_read_as_one():
    line = ('{"level": "error", "msg": "request failed", "exc": "Traceback (most recent call last):\\n  File \\"/app/a.py\\", '
            'line 3, in f\\n    g()\\nKeyError: \'user\'"}')
    (g,) = scan_signatures(stamped(line))["groups"]
    assert g["kind"] == "python" and g["signature"].startswith("KeyError at /app/a.py:3 in f")


def test_credentials_in_a_line_are_scrubbed():
    assert scrub_credentials("dsn=postgres://app:hunter22@db/app password=abc123 token: xyz") == \
        "dsn=postgres://app:[REDACTED]@db/app password=[REDACTED] token: [REDACTED]"


def test_a_client_that_went_away_is_noted_at_low_severity_not_a_finding():
    broken = '''Traceback (most recent call last):
  File "/usr/lib/python3.11/socketserver.py", line 691, in process_request_thread
    self.finish_request(request, client_address)
  File "/usr/lib/python3.11/socketserver.py", line 834, in write
    self._sock.sendall(b)
BrokenPipeError: [Errno 32] Broken pipe
Error: write EPIPE
    at afterWriteDispatched (node:internal/stream_base_commons:160:15)'''
    scan = scan_signatures(stamped(broken))
    assert sorted((g["kind"], g["severity"]) for g in scan["groups"]) == [("node", "low"), ("python", "low")]


def test_ordinary_lines_that_begin_with_at_are_not_frames():
    text = "backup scheduled\n  at 12:30:45 daily\n  at least (3) replicas\n  at startup (cold)\n  at 10:00:00"
    assert scan_signatures(stamped(text))["groups"] == []


def test_a_traceback_on_stderr_is_whole_when_the_streams_are_read_apart():
    """The engine merges stdout and stderr by arrival: a multi-threaded server's traceback (stderr) comes cut
    by its JSON request lines (stdout). Read apart, it is one event again."""
    stderr = stamped("Traceback (most recent call last):\n  File \"/app/service.py\", line 600, in _handle\n"
                     "    self.wfile.write(resp.body)\nValueError: bad body")
    stdout = stamped('{"event": "request", "status": 200}\n{"event": "request", "status": 200}', start=1)
    merged = [stderr[0], stdout[0], *stderr[1:3], stdout[1], stderr[3]]
    cut = scan_signatures(merged)
    assert [g["signature"] for g in cut["groups"]] == ["(no exception line)"]
    whole = scan_signatures([stdout, stderr], streams=True)
    (g,) = whole["groups"]
    assert g["signature"] == "ValueError at /app/service.py:600 in _handle" and whole["lines_read"] == 6
    assert whole["first_line_at"] == stderr[0][:30] and whole["last_line_at"] == stderr[3][:30]


def test_a_5xx_burst_that_ended_is_medium_and_one_still_going_stays_high():
    """WordPress answered 500 three times while its database was still starting, then served normally (seen on
    tests/realworld/wordpress-mysql): a WARN, not a blocker. The same burst at the end of the log is high."""
    err = ['172.18.0.1 - - [07/Dec/2026:05:03:04 +0000] "GET / HTTP/1.1" 500 2808 "-" "httpx"'] * 3
    ok = ['172.18.0.1 - - [07/Dec/2026:05:03:06 +0000] "GET / HTTP/1.1" 302 0 "-" "httpx"'] * 12
    (g,) = scan_signatures(stamped("\n".join(err + ok)))["groups"]
    assert g["kind"] == "http_5xx" and g["severity"] == "medium" and "then 12 answered without one" in g["what"]
    (g,) = scan_signatures(stamped("\n".join(ok + err)))["groups"]
    assert g["severity"] == "high" and g["what"] == "5xx responses in the access log"
    late = stamped(ok[0]) + stamped("\n".join(err + ok[:5]), start=300)  # 5 minutes after the first line
    (g,) = scan_signatures(late)["groups"]  # too few answers since to call it over, and not start-up
    assert g["severity"] == "high"


def test_a_5xx_burst_in_the_first_seconds_after_start_with_an_answer_since_is_start_up():
    err = [f'172.18.0.1 - - [x] "GET / HTTP/1.1" 500 2808 "-" "httpx"'] * 3
    ok = ['172.18.0.1 - - [x] "GET / HTTP/1.1" 302 0 "-" "httpx"']
    (g,) = scan_signatures(stamped("\n".join(err + ok)))["groups"]  # lines one second apart, from the first
    assert g["severity"] == "medium" and "start-up" in g["what"]
    (g,) = scan_signatures(stamped(ok[0]) + stamped("\n".join(err + ok), start=120))["groups"]
    assert g["severity"] == "high"  # 2 minutes after the first line: not start-up
