"""An admin UI is an admin port whatever port it serves on: Adminer on 8080 (seen on the public
postgres + adminer compose file of tests/realworld), phpMyAdmin on 80. Compose resolves each file for real."""
from __future__ import annotations

import json

from conftest import run_cli


def _admin(tmp_path, image: str, ports: str) -> dict:
    (tmp_path / "compose.yaml").write_text(f"services:\n  ui:\n    image: {image}\n    ports:\n      - \"{ports}\"\n")
    proc = run_cli("lint", str(tmp_path / "compose.yaml"), "--format", "json", cwd=tmp_path)
    [rec] = [r for r in json.loads(proc.stdout)["records"] if r["id"] == "hardening.admin_ports"]
    return rec


def test_an_admin_ui_image_published_beyond_loopback_fails_on_any_port(tmp_path):
    rec = _admin(tmp_path, "adminer:4.8.1", "8080:8080")
    assert rec["status"] == "FAIL" and "Adminer (database admin UI)" in rec["actual"], rec
    assert _admin(tmp_path, "phpmyadmin/phpmyadmin:5.2", "80:80")["status"] == "FAIL"


def test_an_admin_ui_on_loopback_and_an_ordinary_web_image_pass(tmp_path):
    assert _admin(tmp_path, "adminer:4.8.1", "127.0.0.1:8080:8080")["status"] == "PASS"
    assert _admin(tmp_path, "nginx:1.27.3", "8080:8080")["status"] == "PASS"
