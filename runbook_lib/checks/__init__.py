"""Checks, one module per phase. A check is a plain function ``f(ctx) -> list[CheckRecord]``."""
