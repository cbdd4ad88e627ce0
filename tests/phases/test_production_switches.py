"""prod.env's framework switches and prod.dev_server's banners and command lines, as pure logic."""
from __future__ import annotations

from runbook_lib.phases.production.devserver import banner_hits, command_hits
from runbook_lib.phases.production.switches import judge_switches


def names(found: list[dict]) -> list[str]:
    return [f"{s['name']}={s['value']}" for s in found]


def test_a_development_value_of_any_frameworks_switch_is_a_finding_and_a_production_value_evidence():
    env = {"FLASK_ENV": "development", "FLASK_DEBUG": "1", "NODE_ENV": "production", "RAILS_ENV": "production",
           "APP_DEBUG": "true", "APP_ENV": "local", "ASPNETCORE_ENVIRONMENT": "Development", "GIN_MODE": "release",
           "SPRING_PROFILES_ACTIVE": "docker,dev", "DJANGO_DEBUG": "False", "NODE_OPTIONS": "--inspect=0.0.0.0:9229",
           "WERKZEUG_DEBUG_PIN": "off", "PATH": "/usr/bin", "ENV": "development"}
    got = judge_switches(env, {"FLASK_ENV": "development"})
    assert names(got["development"]) == ["FLASK_ENV=development", "FLASK_DEBUG=1", "NODE_OPTIONS=--inspect=0.0.0.0:9229",
                                         "APP_ENV=local", "APP_DEBUG=true", "ASPNETCORE_ENVIRONMENT=Development",
                                         "SPRING_PROFILES_ACTIVE=docker,dev", "WERKZEUG_DEBUG_PIN=off"]
    assert names(got["production"]) == ["DJANGO_DEBUG=False", "NODE_ENV=production", "RAILS_ENV=production",
                                        "GIN_MODE=release"]
    assert got["development"][0]["source"] == "compose environment/env_file"
    assert got["development"][1]["source"] == "image ENV"
    # ENV is nobody's framework switch: only the parameters can ask for it


def test_an_unrecognised_value_or_an_absent_switch_is_no_claim():
    got = judge_switches({"APP_ENV": "staging", "DEBUG": "express:*", "SPRING_PROFILES_ACTIVE": "docker",
                          "NODE_OPTIONS": "--max-old-space-size=512"})
    assert got["development"] == [] and got["production"] == []
    assert names(got["unknown"]) == ["DEBUG=express:*", "APP_ENV=staging", "SPRING_PROFILES_ACTIVE=docker"]
    assert judge_switches({}) == {"development": [], "production": [], "unknown": []}


def test_development_banners_are_found_once_each_in_timestamped_lines():
    lines = ["2026-12-07T04:00:00.1Z  * Serving Flask app 'app'", "2026-12-07T04:00:00.2Z  * Debug mode: on",
             "2026-12-07T04:00:00.3Z WARNING: This is a development server. Do not use it in a production deployment.",
             "2026-12-07T04:00:00.4Z  * Debugger is active!", "2026-12-07T04:00:00.5Z  * Debugger PIN: 1-2-3",
             "Starting development server at http://0.0.0.0:8000/", "Debugger listening on ws://0.0.0.0:9229/abc",
             "[nodemon] starting `node server.js`", "Listening for transport dt_socket at address: 5005",
             '[GIN-debug] [WARNING] Running in "debug" mode. Switch to "release" mode in production.',
             "Hosting environment: Development", "INFO:     Started reloader process [1] using WatchFiles"]
    n, hits = banner_hits(lines)
    assert n == len(lines)
    assert [h["banner"] for h in hits] == [
        "Flask debug mode", "the Werkzeug development server", "the Werkzeug interactive debugger", "Django runserver",
        "the Node.js inspector", "nodemon", "a Java debugger (JDWP)", "Gin debug mode", "ASP.NET Core in Development",
        "a reloading ASGI server (--reload)"]
    assert banner_hits(["Listening at: http://0.0.0.0:8000 (1)", "Booting worker with pid: 7", " * Debug mode: off"]) == (3, [])


def test_development_servers_are_told_from_production_ones_by_their_command_line():
    dev = ["/usr/bin/python3 /usr/local/bin/flask --app app run --host 0.0.0.0", "python manage.py runserver 0.0.0.0:8000",
           "node --inspect=0.0.0.0:9229 server.js", "node /app/node_modules/.bin/nodemon server.js",
           "uvicorn main:app --host 0.0.0.0 --reload", "java -agentlib:jdwp=transport=dt_socket,server=y -jar app.jar",
           "php artisan serve --host=0.0.0.0", "ruby bin/rails server -b 0.0.0.0"]
    got = command_hits(dev, {})
    assert [h["command"] for h in got] == dev, got
    prod = ["gunicorn -w 4 -b 0.0.0.0:8000 app:app", "node server.js", "uvicorn main:app --host 0.0.0.0",
            "java -jar app.jar", "nginx: master process nginx -g daemon off;", "ruby bin/rails server -e production",
            "python3 /app/service.py serve", "mysqld --user=mysql"]
    assert command_hits(prod, {}) == []
    assert command_hits(["bundle exec rails s -b 0.0.0.0"], {"RAILS_ENV": "production"}) == []


def test_a_healthcheck_caught_running_is_not_one_of_the_services_processes():
    from runbook_lib.engine import ContainerView
    from runbook_lib.phases.production.devserver import _healthcheck_process

    def view(test):
        return ContainerView({"Id": "x" * 64, "Name": "/c", "Config": {"Healthcheck": {"Test": test}}})

    shell = view(["CMD-SHELL", "curl -fsS http://localhost:5000/ || exit 1"])
    assert _healthcheck_process(shell, "/bin/sh -c curl -fsS http://localhost:5000/ || exit 1")
    assert _healthcheck_process(shell, "curl -fsS http://localhost:5000/")
    assert not _healthcheck_process(shell, "flask run --host 0.0.0.0")
    direct = view(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9093/-/ready"])
    assert _healthcheck_process(direct, "wget -q -O /dev/null http://127.0.0.1:9093/-/ready")
    assert not _healthcheck_process(direct, "wget") and not _healthcheck_process(view([]), "anything")
    # the engine starting an exec (seen once in CI: coturn's healthcheck caught as `runc init`)
    assert _healthcheck_process(direct, "runc init") and _healthcheck_process(view([]), "runc init")
    assert not _healthcheck_process(direct, "python3 -m pdb /app/service.py")  # someone's own exec counts


def test_this_runs_log_begins_after_the_last_run_ended_not_at_the_recorded_start():
    """A process prints before the engine records StartedAt: its first lines must stay in the window. The
    window begins where the previous run ended, or (a container that never stopped) at its first line."""
    from runbook_lib.engine import ContainerView
    from runbook_lib.phases.production.runtime import engine_time, run_start

    def view(started, finished):
        return ContainerView({"Id": "x" * 64, "Name": "/c", "State": {"StartedAt": started, "FinishedAt": finished}})

    assert run_start(view("2026-12-07T04:00:00.5Z", "0001-01-01T00:00:00Z")) is None
    restarted = run_start(view("2026-12-07T04:00:09.123456789Z", "2026-12-07T04:00:08.9Z"))
    assert restarted == engine_time("2026-12-07T04:00:08.9Z").timestamp() + 1e-6
    assert run_start(view("2026-12-07T04:00:00Z", "2026-12-07T04:05:00Z")) is None  # stopped: its whole log
