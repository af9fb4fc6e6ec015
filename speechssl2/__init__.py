"""speechssl2: self-supervised speech representation learning, pre-training to WER."""
__version__ = "0.1.0"
