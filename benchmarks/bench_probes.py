"""Probe time for 1 vs 20 endpoints against a local server: the async probes run concurrently, so
asking twenty endpoints should take about as long as asking one.

    .venv/bin/python benchmarks/bench_probes.py [--latency 0.2] [--endpoints 20] [--rounds 5]

The server (127.0.0.1, an ephemeral port, one thread per request) answers every path after
``--latency`` seconds, like a service doing a little work. Prints the median wall time of each probe
round and the ratio (20 endpoints / 1 endpoint); no Docker needed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runbook_lib.drills import probes  # noqa: E402


def serve(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            time.sleep(latency)
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # the default (5) drops concurrent connections, which would measure the server

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def timed(targets: list[probes.ProbeTarget], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        results = probes.probe_all(targets)
        times.append(time.perf_counter() - t0)
        bad = [r for r in results if r.status != 200]
        if bad:
            raise SystemExit(f"probe failed: {bad[0].error or bad[0].status}")
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.2, help="server-side delay per request, seconds (default 0.2)")
    ap.add_argument("--endpoints", type=int, default=20, help="endpoints in the large round (default 20)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per measurement; the median is shown (default 5)")
    args = ap.parse_args()
    srv = serve(args.latency)
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    targets = [probes.ProbeTarget(f"e{i}", f"{base}/health/{i}") for i in range(args.endpoints)]
    try:
        timed(targets[:1], 1)  # warm-up: imports, first event loop
        one = timed(targets[:1], args.rounds)
        many = timed(targets, args.rounds)
    finally:
        srv.shutdown()
        srv.server_close()
    print(f"server latency {args.latency * 1000:.0f} ms, median of {args.rounds} rounds")
    print(f"1 endpoint:   {one * 1000:7.1f} ms")
    print(f"{args.endpoints} endpoints: {many * 1000:7.1f} ms")
    print(f"ratio {args.endpoints}/1: {many / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
