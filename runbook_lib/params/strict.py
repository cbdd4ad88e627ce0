"""The base of every parameters model (:mod:`.sections`, :mod:`.probe`): unknown keys are errors, and defaults
are validated too."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors; defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
