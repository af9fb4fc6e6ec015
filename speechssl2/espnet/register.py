"""Add the speechssl2 frontend to ESPnet's ASR ``frontend_choices``.

ESPnet's ``ClassChoices`` has no plug-in hook: its choices are a plain dict read when a
parser is built and when ``ASRTask.build_model`` looks the name up, so adding an entry
before either is all registration takes. Importing ``espnet2.tasks.asr`` is slow (it
pulls in every ESPnet ASR component), hence a function rather than an import side effect.
"""
from __future__ import annotations

FRONTEND_NAME = "speechssl2"


def register() -> None:
    """Make ``frontend: speechssl2`` valid in ESPnet ASR configs (idempotent)."""
    from espnet2.tasks.asr import frontend_choices

    from speechssl2.espnet.frontend import SpeechSSL2Frontend

    present = frontend_choices.classes.get(FRONTEND_NAME)
    if present is not None and present is not SpeechSSL2Frontend:
        raise RuntimeError(f"ESPnet frontend name {FRONTEND_NAME!r} is already taken by {present.__module__}."
                           f"{present.__qualname__}")
    frontend_choices.classes[FRONTEND_NAME] = SpeechSSL2Frontend
