"""A configurable field, declared once, where the field is.

``core`` may not import ``qwen_dev_cli.config``, so a declaration here is plain data in
the field's metadata: what a valid value is (:class:`Check`), one line for the starter
file, why a project file may not set it, the variable that overrides it and how
``config show`` shows it. The configuration turns each into a validator whose messages
name the file, variable or flag at fault, and into the starter file::

    timeout: float = field(
        default=60.0,
        metadata=setting(number(at_least=0.1, at_most=3600), doc="seconds a request ..."),
    )

A field without a declaration is not read from files (a provider's ``name`` is its
table's key; its ``api_key`` comes from ``api_key_env``).
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any, Final, Literal, NamedTuple, get_args

#: What kind of value a check accepts; the configuration has a validator for each.
CheckKind = Literal[
    "number",
    "integer",
    "boolean",
    "choice",
    "text",
    "url",
    "optional_url",
    "env_name",
    "store",
    "strings",
    "string_table",
]
#: How ``config show`` shows a value: as it is, ``***`` when set, or a URL's password hidden.
Shown = Literal["plain", "secret", "url"]

#: The metadata key of a field's :class:`Setting`.
SETTING: Final = "qwen_dev_cli.setting"


class Check(NamedTuple):
    """What a valid value is.

    Args:
        kind: the shape of the value (see :data:`CheckKind`).
        above, at_least, at_most: bounds of a ``number`` or ``integer`` (``above`` is
            exclusive); absurd values are mistakes, or a hostile file.
        choices: the accepted strings of a ``choice``.
    """

    kind: CheckKind
    above: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    choices: tuple[str, ...] = ()


def number(*, above: float | None = None, at_least: float | None = None, at_most: float) -> Check:
    """A finite number (an integer is accepted), with its bounds."""
    return Check("number", above=above, at_least=at_least, at_most=at_most)


def integer(*, at_least: int, at_most: int) -> Check:
    """An integer (a float is refused), with its bounds."""
    return Check("integer", at_least=at_least, at_most=at_most)


def choice(literal: object) -> Check:
    """One of the strings of a ``Literal`` type: adding one to the type accepts it."""
    return Check("choice", choices=get_args(literal))


BOOLEAN: Final = Check("boolean")
#: A non-empty string.
TEXT: Final = Check("text")
#: An ``http://`` or ``https://`` URL.
URL: Final = Check("url")
#: An ``http://`` or ``https://`` URL, or ``""`` for none.
OPTIONAL_URL: Final = Check("optional_url")
#: The name of an environment variable (never the secret it holds).
ENV_NAME: Final = Check("env_name")
#: A state store spec: ``local``, ``memory`` or a Redis URL.
STORE: Final = Check("store")
#: An array of strings (``args = ["-y", "server"]``).
STRINGS: Final = Check("strings")
#: A table of strings (``env = { TOKEN = "${TOKEN}" }``).
STRING_TABLE: Final = Check("string_table")


#: The direction a project file may move a limit: fewer requests, sooner caution.
Tighten = Literal["lower", "higher", "on"]


class Setting(NamedTuple):
    """Everything the configuration needs to know about one field.

    Args:
        check: what a valid value is; ``None``: never read from a file.
        doc: what it means, for the starter file (one sentence, no ``key = value``).
        project: why a project file may not set it; ``None``: it may.
        env: the environment variable that overrides every file.
        shown: how ``config show`` shows it.
        tighten: a project file may set it only in this direction from what the
            user's files and the defaults say: ``lower``, ``higher`` or ``on`` (a limit
            a cloned repository may tighten, never loosen, on the user's account).
    """

    check: Check | None
    doc: str = ""
    project: str | None = None
    env: str | None = None
    shown: Shown = "plain"
    tighten: Tighten | None = None


def setting(
    check: Check,
    *,
    doc: str = "",
    project: str | None = None,
    env: str | None = None,
    shown: Shown = "plain",
    tighten: Tighten | None = None,
) -> dict[str, Any]:
    """The ``metadata`` of a dataclass field read from configuration files."""
    return {SETTING: Setting(check, doc, project, env, shown, tighten)}


def secret() -> dict[str, Any]:
    """The ``metadata`` of a field resolved from the environment and never shown."""
    return {SETTING: Setting(None, shown="secret")}


def declared(field: Field[Any]) -> Setting | None:
    """The declaration of ``field``, if it has one."""
    value = field.metadata.get(SETTING)
    return value if isinstance(value, Setting) else None
