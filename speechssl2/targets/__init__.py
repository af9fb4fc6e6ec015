"""HuBERT targets: features on the model frame grid -> k-means -> labels on the cuts -> PNMI.

Stages (``python -m speechssl2.bin.<stage> --config X.yaml --set a.b=c``): ``dump_features``,
``learn_kmeans``, ``dump_labels``, ``pnmi``; all read :class:`~speechssl2.targets.config.TargetsConfig`.
"""
from speechssl2.targets.frames import (
    FRAME_SHIFT_S,
    LabelRateError,
    align_labels,
    check_label_rate,
    conv_frame_count,
    receptive_field,
)

__all__ = [
    "FRAME_SHIFT_S",
    "LabelRateError",
    "align_labels",
    "check_label_rate",
    "conv_frame_count",
    "receptive_field",
]
