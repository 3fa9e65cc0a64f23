"""Vietnamese and English, for the command line and the center's pages: one gettext catalogue.

The messages are written in English in the code (``_("...")``, ``ngettext``,
and ``N_("...")`` where a text is only named, to be translated where it is
shown). Their Vietnamese is in ``common/locale/vi/LC_MESSAGES/camwatch.po``,
the catalogue translators work on; ``scripts/i18n.sh`` extracts the messages
with Babel and merges them in, and a test fails when a message lacks its
Vietnamese or its placeholders differ. The ``.po`` is read (and compiled in
memory) the first time a language is asked for, so there is no build step.

The command line speaks the language of ``--lang``, else of the locale
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as gettext reads them):
``vi_VN.UTF-8`` is Vietnamese, anything else English.
"""

from __future__ import annotations

import gettext
import io
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

DOMAIN = "camwatch"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("vi", "en")
SOURCE_LANGUAGE = "en"


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark ``message`` for the catalogue without translating it here (it is translated where it is shown)."""
    return message


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue for ``lang`` (English, the source language, is the messages as written)."""
    if lang == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        raise LookupError(f"no {lang} catalogue at {po}")
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def language_of(environ: Mapping[str, str] | None = None) -> str:
    """``vi`` or ``en`` from the locale variables, in gettext's order (the first one set decides)."""
    env = os.environ if environ is None else environ
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "vi" if value.split(":")[0].lower().startswith("vi") else "en"
    return "en"


class Speaker:
    """The command line's language for this process: ``_`` and ``ngettext`` follow ``use()``."""

    def __init__(self) -> None:
        self.lang = SOURCE_LANGUAGE
        self._t: gettext.NullTranslations = gettext.NullTranslations()

    def use(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else SOURCE_LANGUAGE
        self._t = translations(self.lang)

    def gettext(self, message: str) -> str:
        return self._t.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)


SPEAKER = Speaker()


def _(message: str) -> str:
    """``message`` in the command line's language."""
    return SPEAKER.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n``, in the command line's language."""
    return SPEAKER.ngettext(singular, plural, n)
