"""Model building blocks: frontends, encoders, upstreams, presets and checkpoint I/O."""
from speechssl2.models.upstream import Upstream, build_upstream

__all__ = ["Upstream", "build_upstream"]
