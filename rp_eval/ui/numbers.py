"""Numbers typed into a form, checked before any work starts: a message that names the field (by its label, in
the request's language) instead of an exception from deep inside. Number boxes are built without Gradio's own
minimum/maximum, whose refusal turns every output of the event into "Error"; the range is checked here."""

from __future__ import annotations

import math
import re

from rp_eval.ui.locale import t


class BadNumber(ValueError):
    """A number box holds something unusable; `str(err)` is the message for the page."""


def field_name(label_key: str) -> str:
    """The label of a field without its explanation in brackets: 'Items (a seeded subset…)' -> 'Items'."""
    return re.split(r"\s*[(（]", t(label_key), maxsplit=1)[0].strip() or t(label_key)


def real(value: object, label_key: str, low: float | None = None, high: float | None = None) -> float:
    """`value` as a finite float within [low, high], else BadNumber naming the field."""
    name = field_name(label_key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadNumber(t("num_missing", field=name))
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise BadNumber(t("num_not_number", field=name, value=value)) from None
    if not math.isfinite(number):
        raise BadNumber(t("num_not_number", field=name, value=value))
    if low is not None and number < low:
        raise BadNumber(t("num_too_small", field=name, value=_show(number), low=_show(low)))
    if high is not None and number > high:
        raise BadNumber(t("num_too_large", field=name, value=_show(number), high=_show(high)))
    return number


def whole(value: object, label_key: str, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int within [low, high] (a float must have no fractional part), else BadNumber."""
    number = real(value, label_key, low, high)
    if number != int(number):
        raise BadNumber(t("num_not_whole", field=field_name(label_key), value=_show(number)))
    return int(number)


def _show(number: float) -> str:
    return f"{number:g}"
