"""speechssl2: self-supervised speech representation learning, pre-training to WER."""
__version__ = "0.1.0"


def __getattr__(name: str):  # PEP 562: keep `import speechssl2` light, load torch on first use
    if name == "load_pretrained":
        from speechssl2.models.io.detect import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'speechssl2' has no attribute {name!r}")
