"""The one gettext catalogue: every message of the command line and the pages has its Vietnamese, the catalogue
is what the code says, and the command line speaks the locale's language."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from support import ROOT, camwatch

from center.i18n import TEXT
from common.i18n import LOCALE_DIR, language_of, translations
from common.words import WORDS
from contract.vocab import AGENT_OFFLINE_REASONS, AGENT_PROBLEMS, CAMERA_PROBLEMS, STATES

PO = LOCALE_DIR / "vi" / "LC_MESSAGES" / "camwatch.po"


def catalogue() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="vi")


def extracted() -> set[str]:
    """Every message the code marks, extracted by Babel as scripts/i18n.sh does (babel.cfg)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(str(ROOT), method_map, options_map):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def singular(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def ids(cat: Catalog) -> set[str]:
    return {singular(m.id) for m in cat if m.id}


def test_the_catalogue_holds_exactly_the_messages_of_the_code() -> None:
    code, cat = extracted(), ids(catalogue())
    assert not code - cat, f"new messages: run scripts/i18n.sh and translate them: {sorted(code - cat)}"
    assert not cat - code, f"messages no longer in the code: run scripts/i18n.sh: {sorted(cat - code)}"
    assert len(code) > 200


def fields(text: str) -> list[str]:
    """The str.format fields and %-placeholders of a message, with their format specs, sorted."""
    brace = [
        f"{{{name}{'!' + conv if conv else ''}:{spec}}}"
        for _, name, spec, conv in string.Formatter().parse(text)
        if name is not None
    ]
    percent = re.findall(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifgr]", text)
    return sorted(brace + percent)


def test_every_message_has_its_vietnamese_with_the_same_placeholders() -> None:
    cat = catalogue()
    assert cat.plural_forms == "nplurals=1; plural=0;"  # Vietnamese has one form: "1 camera", "12 camera"
    problems = []
    for m in cat:
        if not m.id:
            continue
        source = singular(m.id)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy or not all(strings) or len(strings) != (cat.num_plurals if m.pluralizable else 1):
            problems.append(f"untranslated or fuzzy: {source!r}")
            continue
        for text in strings:
            assert isinstance(text, str)
            if fields(text) != fields(source):
                problems.append(f"placeholders differ: {source!r} -> {text!r}")
    assert not problems, "\n".join(problems)


def test_plural_forms_in_both_languages() -> None:
    vi, en = translations("vi"), translations("en")
    assert en.ngettext("{n} camera", "{n} cameras", 1) == "{n} camera"
    assert en.ngettext("{n} camera", "{n} cameras", 12) == "{n} cameras"
    assert vi.ngettext("{n} camera", "{n} cameras", 1) == vi.ngettext("{n} camera", "{n} cameras", 12) == "{n} camera"


def test_every_code_of_the_contract_is_a_word_in_both_languages() -> None:
    codes = {*STATES, *CAMERA_PROBLEMS, *AGENT_PROBLEMS, *AGENT_OFFLINE_REASONS}
    assert not codes - set(WORDS), f"codes without words: {sorted(codes - set(WORDS))}"
    vi = translations("vi")
    assert all(vi.gettext(WORDS[code]) != WORDS[code] for code in codes)


def test_every_text_a_template_names_exists() -> None:
    named = set()
    for page in (ROOT / "center" / "templates").glob("*.html"):
        named |= set(re.findall(r"""\bt\(["']([a-z0-9_]+)["']\)""", page.read_text()))
    assert named and not named - set(TEXT), sorted(named - set(TEXT))


@pytest.mark.parametrize(
    ("environ", "lang"),
    [
        ({"LANG": "vi_VN.UTF-8"}, "vi"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "vi_VN.UTF-8"}, "vi"),  # LC_ALL wins over LANG
        ({"LANGUAGE": "en:vi", "LC_ALL": "vi_VN.UTF-8"}, "en"),  # LANGUAGE wins over all
        ({"LANGUAGE": "", "LANG": "vi_VN"}, "vi"),  # an empty one does not count
    ],
)
def test_the_language_comes_from_the_locale_as_gettext_reads_it(environ: dict[str, str], lang: str) -> None:
    assert language_of(environ) == lang


def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "ward.toml"
    path.write_text('ward = "w1"\n[mqtt]\nhost = "127.0.0.1"\n[[cameras]]\nid = "c1"\nurl = "http://x"\n')
    return path


def test_the_command_line_speaks_the_locale_and_lang_overrides_it(tmp_path: Path) -> None:
    config = str(bad_config(tmp_path))
    vi = camwatch("check-config", config, env={"LANG": "vi_VN.UTF-8"})
    assert vi.returncode == 1 and ": 1 lỗi:" in vi.stderr
    for line in (("--lang", "en", "check-config", config), ("check-config", config, "--lang=en")):
        en = camwatch(*line, env={"LANG": "vi_VN.UTF-8"})
        assert en.returncode == 1 and ": 1 problem:" in en.stderr
    assert ": 1 problem:" in camwatch("check-config", config).stderr  # no locale: English
    refused = camwatch("--lang", "vi", "probe", "--brand", "dahua", "rtsp://10.0.0.5/cam", stdin="")
    assert refused.returncode == 2 and "chỉ ghi địa chỉ của camera" in refused.stderr
    helped = camwatch("probe", "--help", env={"LANG": "vi_VN.UTF-8"})
    assert "với --brand: số kênh" in helped.stdout
    unknown = camwatch("--lang", "fr", "status")
    assert unknown.returncode == 2 and "'fr'" in unknown.stderr


def test_config_problems_are_told_in_vietnamese_and_keep_their_key_paths(tmp_path: Path) -> None:
    path = tmp_path / "ward.toml"
    path.write_text(
        'ward = "w1"\nstate_dir = "${NOPE_DIR}"\n[mqtt]\nhost = "127.0.0.1"\nport = 70000\nhots = 1\n'
        '[health]\noffline_after_s = 0\n[[cameras]]\nid = "c1"\nurl = "http://x"\n'
    )
    vi = camwatch("--lang", "vi", "check-config", str(path))
    assert vi.returncode == 1
    for said in (
        "state_dir: chưa đặt biến môi trường NOPE_DIR",
        "mqtt.port: phải nhiều nhất là 65535",
        "mqtt.hots: khoá không hợp lệ",
        "health.offline_after_s: phải lớn hơn 0",
        "cameras[0].url: phải bắt đầu bằng rtsp://",
    ):
        assert said in vi.stderr, vi.stderr
    en = camwatch("check-config", str(path))
    assert "mqtt.port: Input should be less than or equal to 65535" in en.stderr  # pydantic's own English
