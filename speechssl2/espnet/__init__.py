"""ESPnet2 interop: speechssl2 upstreams as an ESPnet ASR frontend.

``register()`` adds ``speechssl2`` to ESPnet's ASR frontend choices; ``python -m
speechssl2.espnet <espnet2.bin module> ARGS`` does so and runs that ESPnet entry point
(``asr_train``, ``asr_inference``, ...), so ESPnet configs can say ``frontend: speechssl2``.
"""
from speechssl2.espnet.register import FRONTEND_NAME, register

__all__ = ["FRONTEND_NAME", "register"]
