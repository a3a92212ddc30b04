"""Validators: a value and its :class:`~.errors.Where` in, the value (normalised) out,
or a :class:`~.errors.ConfigError` that names the file, key and what was expected.

:func:`validator` turns a field's declared :class:`~qwen_dev_cli.core.declarations.Check`
into one; the rest check what no dataclass field declares (provider names, approval).
"""

from __future__ import annotations

import difflib
import math
import re
from typing import TYPE_CHECKING, Final, TypeAlias

from .errors import Where, describe
from .resolved import APPROVAL_MODES, Approval

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from qwen_dev_cli.core.declarations import Check

Validator: TypeAlias = "Callable[[object, Where], object]"

_URL_RE: Final = re.compile(r"^https?://[^\s/?#]+")
_ENV_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROVIDER_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def validator(check: Check) -> Validator:
    """The validator of a declared check."""
    if check.kind == "number":
        assert check.at_most is not None  # number() requires it
        return number(above=check.above, at_least=check.at_least, at_most=check.at_most)
    if check.kind == "integer":
        assert check.at_least is not None  # integer() requires both
        assert check.at_most is not None
        return integer(at_least=int(check.at_least), at_most=int(check.at_most))
    if check.kind == "choice":
        return choice(*check.choices)
    return _FIXED[check.kind]


def number(
    *, above: float | None = None, at_least: float | None = None, at_most: float
) -> Validator:
    expected = "a number"
    if above is not None:
        expected += f" greater than {above:g}"
    elif at_least is not None:
        expected += f" of at least {at_least:g}"
    expected += f" and at most {at_most:g}"

    def check(value: object, where: Where) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.wrong_type("a number", value)
        number = float(value)
        if not math.isfinite(number):
            raise where.out_of_range(f"a finite {expected.removeprefix('a ')}", value)
        if (
            (above is not None and not number > above)
            or (at_least is not None and not number >= at_least)
            or number > at_most
        ):
            raise where.out_of_range(expected, value)
        return number

    return check


def integer(*, at_least: int, at_most: int) -> Validator:
    expected = f"an integer of at least {at_least} and at most {at_most:,}"

    def check(value: object, where: Where) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.wrong_type("an integer", value)
        if not at_least <= value <= at_most:
            raise where.out_of_range(expected, value)
        return value

    return check


def choice(*choices: str) -> Validator:
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def check(value: object, where: Where) -> object:
        if not isinstance(value, str):
            raise where.wrong_type(expected, value)
        if value not in choices:
            raise where.error(f"expected {expected}, got {describe(value)}")
        return value

    return check


def boolean(value: object, where: Where) -> object:
    if not isinstance(value, bool):
        raise where.wrong_type("true or false", value)
    return value


def text(value: object, where: Where) -> object:
    if not isinstance(value, str):
        raise where.wrong_type("a string", value)
    if not value.strip():
        raise where.error("expected a non-empty string")
    return value


def url(value: object, where: Where) -> object:
    if not isinstance(value, str):
        raise where.wrong_type("a URL string", value)
    if not _URL_RE.match(value):
        raise where.error(
            f"expected an http:// or https:// URL such as "
            f"'http://127.0.0.1:8000/v1', got {describe(value)}"
        )
    return value.rstrip("/")


def optional_url(value: object, where: Where) -> object:
    return "" if value == "" else url(value, where)


def env_name(value: object, where: Where) -> object:
    # The value is never echoed: a common mistake is to paste the key itself here.
    if not isinstance(value, str):
        raise where.wrong_type("the name of an environment variable", value)
    if not _ENV_NAME_RE.match(value):
        raise where.error(
            "expected the name of an environment variable (letters, digits and '_', "
            "e.g. 'MYLAB_API_KEY'), not the key itself; export the key in that variable"
        )
    return value


def store_spec(value: object, where: Where) -> object:
    expected = "'local', 'memory' or a redis://host:port/db URL"
    if not isinstance(value, str):
        raise where.wrong_type(expected, value)
    # Lazy: the store vocabulary lives with the stores.
    from qwen_dev_cli.core.state import StoreConfigError, validate_store_spec

    try:
        return validate_store_spec(value.strip())
    except StoreConfigError as exc:  # its message redacts any password in the URL
        raise where.error(str(exc)) from None
    except ValueError as exc:  # a URL too broken to redact: not echoed
        raise where.error(f"malformed store URL: {exc}") from None


#: Items of an array or table of strings, and characters of one of them: a config file
#: is written by a person, and bounds keep a hostile one from costing anything.
MAX_ITEMS: Final = 256
MAX_STRING: Final = 8192


def strings(value: object, where: Where) -> object:
    if not isinstance(value, list):
        raise where.wrong_type("an array of strings", value)
    if len(value) > MAX_ITEMS:
        raise where.error(f"expected at most {MAX_ITEMS} strings, got {len(value)}")
    for index, item in enumerate(value):
        _bounded_string(item, where.child(str(index)))
    return tuple(value)


def string_table(value: object, where: Where) -> object:
    if not isinstance(value, dict):
        raise where.wrong_type('a table of strings, e.g. { NAME = "value" }', value)
    if len(value) > MAX_ITEMS:
        raise where.error(f"expected at most {MAX_ITEMS} entries, got {len(value)}")
    for key, item in value.items():
        _bounded_string(item, where.child(key))
    return dict(value)


def _bounded_string(value: object, where: Where) -> None:
    if not isinstance(value, str):
        raise where.wrong_type("a string", value)
    if len(value) > MAX_STRING:
        raise where.error(f"expected at most {MAX_STRING:,} characters, got {len(value):,}")


_FIXED: Final[dict[str, Validator]] = {
    "boolean": boolean,
    "text": text,
    "url": url,
    "optional_url": optional_url,
    "env_name": env_name,
    "store": store_spec,
    "strings": strings,
    "string_table": string_table,
}


def provider_name(value: object, where: Where) -> str:
    if not isinstance(value, str):
        raise where.wrong_type("a provider name", value)
    if not _PROVIDER_NAME_RE.match(value):
        raise where.error(
            f"expected a provider name of letters, digits, '-' and '_', got {describe(value)}"
        )
    return value


def approval(value: object, where: Where) -> Approval:
    checked = choice(*APPROVAL_MODES)(value, where)
    for mode in APPROVAL_MODES:
        if checked == mode:
            return mode
    raise AssertionError(value)  # pragma: no cover - checked by choice() above


def suggest(key: str, known: Iterable[str]) -> str:
    """``did you mean 'x'?`` for a near miss, else the list of what is known."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        close = [k for k in known if k.lower() == key.lower()]
    if close:
        return f"did you mean {close[0]!r}?"
    return "known keys: " + ", ".join(known)
