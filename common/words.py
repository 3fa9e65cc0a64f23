"""The words an operator or an installer reads for the contract's codes (problems, reasons, agent problems).

The codes stay on the wire and in the API (``auth_failed``); people read
these words, in their language (:mod:`common.i18n`). A test holds that every
code of :mod:`contract.vocab` has one.
"""

from __future__ import annotations

from common.i18n import N_, translations

WORDS: dict[str, str] = {
    # A camera's state.
    "online": N_("online"),
    "degraded": N_("degraded"),
    "offline": N_("offline"),
    "unknown": N_("unknown"),
    # Why a camera is offline.
    "unreachable": N_("unreachable"),
    "auth_failed": N_("wrong user or password"),
    "not_found": N_("wrong stream path"),
    "stalled": N_("stream stalled"),
    "no_video": N_("no video"),
    # What is wrong with a camera whose video flows.
    "low_fps": N_("low frame rate"),
    "black": N_("black picture"),
    "frozen": N_("frozen picture"),
    "blurred": N_("blurred picture"),
    "covered": N_("lens covered"),
    "moved": N_("camera moved"),
    # What is wrong with a ward's agent.
    "detector_unavailable": N_("detection cannot run"),
    "state_dir_unwritable": N_("cannot write its data folder"),
    "outbox_overflow": N_("outbox full: events dropped"),
    "outbox_unwritable": N_("cannot write its outbox"),
    "publish_refused": N_("the broker refuses its messages"),
    "overloaded": N_("PC overloaded"),
    # Why an agent went offline.
    "lost": N_("connection lost"),
    "shutdown": N_("stopped"),
}


def word(code: str, lang: str) -> str:
    """The word for ``code`` in ``lang``; the code itself for one this version does not know."""
    message = WORDS.get(code)
    return code if message is None else translations(lang).gettext(message)
