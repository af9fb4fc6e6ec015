"""Supervised fine-tuning models (registered in MODELS): ``ctc`` and ``transducer``."""
