"""Command-line stages: each recipe stage runs ``python -m speechssl2.bin.<stage>``."""
