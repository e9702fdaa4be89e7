"""Command-line spellings of settings: sizes such as ``48x64`` and model options such as ``filters=16,32``."""

from __future__ import annotations

from cnnkit.errors import ConfigError


def parse_size(text: str) -> tuple[int, ...]:
    """'32' -> (32, 32); '48x64' -> (48, 64); '1x32x32' -> (1, 32, 32)."""
    try:
        parts = tuple(int(p) for p in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"Expected a size like 32, 48x64 or 1x32x32. Received: {text!r}") from None
    if any(p < 1 for p in parts):
        raise ConfigError(f"Sizes must be positive. Received: {text!r}")
    return parts * 2 if len(parts) == 1 else parts


def _value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(_value(part) for part in text.split(",") if part)
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(items: list[str] | str | None) -> dict:
    """``["batch_norm=false", "filters=16,32", "dropout=0.1"]`` -> typed model options.

    A single string is one option (``"dropout=0.5"``); a head spec ``"dropout=0.5,hidden=0"`` is split by
    ``parse_head``.
    """
    options = {}
    for item in [items] if isinstance(items, str) else items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Expected a model option as name=value. Received: {item!r}")
        options[key.strip().replace("-", "_")] = _value(raw.strip())
    return options


def parse_head(spec: str | None) -> dict:
    """A backbone head spec ``"dropout=0.5,hidden=0"`` -> {"dropout": 0.5, "hidden": 0}."""
    return parse_options(spec.split(",") if spec else None)
