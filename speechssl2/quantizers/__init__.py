"""Vector quantizers that turn frame features into discrete targets (QUANTIZERS registry)."""
