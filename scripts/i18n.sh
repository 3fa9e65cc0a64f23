#!/usr/bin/env bash
# Bring the Vietnamese catalogue up to date with the code: extract every message (Babel), merge the new ones into
# common/locale/vi/LC_MESSAGES/camwatch.po (their msgstr empty, for a translator), drop the ones no longer used.
# Then translate the empty entries; tests/common/test_i18n.py fails until every message has its Vietnamese.
set -euo pipefail
cd "$(dirname "$0")/.."
pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT
.venv/bin/pybabel -q extract -F babel.cfg --no-location --sort-output --project camwatch \
  --copyright-holder "camwatch" --msgid-bugs-address "" --width 120 -o "$pot" .
po=common/locale/vi/LC_MESSAGES/camwatch.po
if [ -f "$po" ]; then
  .venv/bin/pybabel -q update -i "$pot" -d common/locale -D camwatch -l vi --no-fuzzy-matching --ignore-obsolete \
    --width 120
else
  .venv/bin/pybabel -q init -i "$pot" -d common/locale -D camwatch -l vi --width 120
fi
untranslated=$(.venv/bin/python -c "
from babel.messages.pofile import read_po
c = read_po(open('$po', 'rb'), locale='vi')
print(sum(1 for m in c if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)))")
echo "i18n: $po, $untranslated message(s) still to translate"
