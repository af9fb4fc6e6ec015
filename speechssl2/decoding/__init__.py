"""Decoders over CTC log-probs ``(B, T, V)`` (greedy, beam search with n-gram fusion) and transducers."""
