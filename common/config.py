"""Read a TOML config: expand ``${ENV}`` and ``*_file`` secrets, validate, and
report every problem at once with its key path (``cameras[2].url: ...``).
The agent's and the center's configs are both read so."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from common.errors import ConfigError
from common.i18n import N_, SOURCE_LANGUAGE, SPEAKER, _
from common.redact import register_secret

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A config table: unknown keys are errors (a misspelt key must not be silently ignored), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# keys whose value may instead be read from a file named by "<key>_file"
SECRET_KEYS = ("username", "password")


def _port_in_range(listen: str) -> str:
    port = int(listen.rsplit(":", 1)[1])
    if not 1 <= port <= 65535:
        raise ValueError(_("port {port} is not in 1-65535").format(port=port))
    return listen


Listen = Annotated[str, Field(pattern=r"^[^:\s]+:\d{1,5}$"), AfterValidator(_port_in_range)]
"""A ``HOST:PORT`` to listen on."""


def split_listen(listen: str) -> tuple[str, int]:
    """``("127.0.0.1", 9108)`` of ``"127.0.0.1:9108"``."""
    host, _, port = listen.rpartition(":")
    return host, int(port)


def key_path(loc: tuple[str | int, ...]) -> str:
    """``("cameras", 2, "url")`` -> ``"cameras[2].url"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # Keys that are not bare TOML keys (empty, spaces, dots...) are shown quoted, as TOML writes them.
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += ("." if out else "") + name
    return out or "(top level)"


# Where the shipped units' LoadCredential= lines read secrets from (systemd copies them to $CREDENTIALS_DIRECTORY).
CREDENTIALS_SOURCE = "/etc/camwatch/credentials"


def _expand(node: Any, loc: tuple[str | int, ...], env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key.endswith("_file") and key[: -len("_file")] in SECRET_KEYS:
                target = key[: -len("_file")]
                if target in node:
                    problems.append(
                        f"{key_path((*loc, key))}: "
                        + _("give either {one} or {other}, not both").format(one=target, other=key)
                    )
                    continue
                path_value = _expand(value, (*loc, key), env, problems)
                if not isinstance(path_value, str):
                    problems.append(f"{key_path((*loc, key))}: " + _("expected a file path (string)"))
                    continue
                try:
                    secret = Path(path_value).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    problems.append(
                        f"{key_path((*loc, key))}: "
                        + _("cannot read {path}: {why}").format(path=path_value, why=exc.strerror or exc)
                    )
                    continue
                if target == "password":
                    register_secret(secret)
                out[target] = secret
            else:
                out[key] = _expand(value, (*loc, key), env, problems)
        return out
    if isinstance(node, list):
        return [_expand(v, (*loc, i), env, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        userinfo_end = _userinfo_end(node)

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "CREDENTIALS_DIRECTORY" and name not in env:
                # Outside systemd (check-config by hand, as root): the files LoadCredential= reads.
                return CREDENTIALS_SOURCE
            if name not in env:
                problems.append(f"{key_path(loc)}: " + _("environment variable {name} is not set").format(name=name))
                return ""
            value = env[name]
            # Passwords are registered for redaction once the tree is valid
            # (parse_config); error messages never echo values.
            if m.start() < userinfo_end:
                # A password inside a URL: encode '@', ':', '/' and friends.
                return quote(value, safe="")
            return value

        return _ENV_REF.sub(sub, node)
    return node


def _userinfo_end(template: str) -> int:
    """Index where the userinfo of a URL template ends (its last '@' before the path), or -1."""
    scheme_end = template.find("://")
    if scheme_end < 0:
        return -1
    start = scheme_end + 3
    slash = template.find("/", start)
    authority_end = len(template) if slash < 0 else slash
    return template.rfind("@", start, authority_end)


def _message(err: Mapping[str, Any], example: str) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind == "extra_forbidden":
        return _("unknown key (check the spelling; see {example})").format(example=example)
    if kind == "missing":
        return _("required key is missing")
    if kind == "string_pattern_mismatch" and "a-z0-9" in msg:
        return _("must match [a-z0-9_-]+ (lower-case letters, digits, '-' and '_')")
    if SPEAKER.lang != SOURCE_LANGUAGE and kind in LIMITS:
        # pydantic speaks English only: the common kinds in the speaker's language, from their context
        return _(LIMITS[kind]).format(**{k: v for k, v in (err.get("ctx") or {}).items()})
    return msg.removeprefix("Value error, ")


# What pydantic says in English, for the other languages (its own English is kept as it is).
LIMITS = {
    "greater_than": N_("must be greater than {gt}"),
    "greater_than_equal": N_("must be at least {ge}"),
    "less_than": N_("must be less than {lt}"),
    "less_than_equal": N_("must be at most {le}"),
    "int_parsing": N_("must be a whole number"),
    "int_type": N_("must be a whole number"),
    "int_from_float": N_("must be a whole number"),
    "float_parsing": N_("must be a number"),
    "float_type": N_("must be a number"),
    "bool_parsing": N_("must be true or false"),
    "bool_type": N_("must be true or false"),
    "string_type": N_("must be text in quotes"),
    "list_type": N_("must be a list [...]"),
    "dict_type": N_("must be a table"),
    "model_type": N_("must be a table"),
    "literal_error": N_("must be one of {expected}"),
    "string_too_long": N_("must be at most {max_length} characters"),
    "string_too_short": N_("must be at least {min_length} characters"),
    "too_short": N_("must have at least {min_length} items"),
    "too_long": N_("must have at most {max_length} items"),
}


def format_validation_error(exc: ValidationError, example: str = "config/ward.example.toml") -> list[str]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        msg = _message(err, example)
        if msg.startswith("cameras["):  # cross-item checks name their own paths
            problems.extend(msg.split("; "))
        else:
            problems.append(f"{key_path(tuple(err['loc']))}: {msg}")
    return problems


def validate_tree(
    model: type[M], raw: dict[str, Any], env: Mapping[str, str] | None = None, example: str = "config/ward.example.toml"
) -> M:
    """Expand secrets in ``raw`` and validate it into ``model``; raise ConfigError with every problem."""
    problems: list[str] = []
    expanded = _expand(raw, (), os.environ if env is None else env, problems)
    try:
        result = model.model_validate(expanded)
    except ValidationError as exc:
        problems.extend(format_validation_error(exc, example))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return result


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{p}: " + _("file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{p}: " + _("cannot read: {why}").format(why=exc)]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: " + _("not valid TOML: {why}").format(why=exc)]) from None
