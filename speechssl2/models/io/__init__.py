"""Checkpoint import/export: HF directories, fairseq and UniSpeech dicts, speechssl2 formats."""
