"""The demo image builder builds under the names the environment gives (as Compose deploys them), so a
checkout with changed image inputs exports its own tags and never rebuilds the shared ``:local`` images."""
from __future__ import annotations

import pytest

from runbook_demo import images


def offline_env_vars() -> dict[str, str]:
    rows = (line.split("=", 1) for line in images.OFFLINE_ENV.read_text(encoding="utf-8").splitlines()
            if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in rows}


def test_image_names_default_to_offline_env_and_follow_the_environment(monkeypatch):
    defaults = offline_env_vars()
    for var in defaults:
        monkeypatch.delenv(var, raising=False)
    assert {images.image_name(var) for var in defaults} == set(defaults.values())
    for var in defaults:
        monkeypatch.setenv(var, f"rbtest/{var.lower()}:mine")
    built = {spec.name for spec in images.image_specs()}
    assert built == {f"rbtest/{var.lower()}:mine" for var in defaults}, "every offline.env image, under its variable's name"


def test_an_image_variable_offline_env_lacks_is_named_in_the_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_IMAGE", raising=False)
    with pytest.raises(images.RunbookError, match="NO_SUCH_IMAGE"):
        images.image_name("NO_SUCH_IMAGE")
