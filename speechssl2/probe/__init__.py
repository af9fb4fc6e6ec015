"""SUPERB-style probing: a frozen upstream, a learned softmax-weighted sum of its hidden
layers, and a small downstream model per task (ASR, keyword/command classification,
speaker ID, any labelled utterance classification). ``speechssl2.bin.probe`` drives it.
"""
