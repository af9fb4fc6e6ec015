from setuptools import find_packages, setup

# espnet (beam search, scorers) is installed by tools/setup_venv.sh with --no-deps:
# its dependency ci_sdr declares a git-URL requirement that pip refuses from PyPI, so
# listing espnet here makes every `pip install speechssl2` fail to resolve. The espnet
# modules the decoders import need nothing beyond install_requires; building an ESPnet2
# ASR model (speechssl2.espnet: `import espnet2.tasks.asr`) needs the "espnet" extra,
# found by importing it after `pip install --no-deps espnet` until nothing was missing.
ESPNET = "espnet==202511"

setup(
    name="speechssl2",
    version="0.1.0",
    description="Self-supervised speech representation learning: pre-train, fine-tune, decode, score.",
    packages=find_packages(include=["speechssl2", "speechssl2.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch==2.11.0",
        "torchaudio==2.11.0",  # same patch release as torch: torchaudio 2.11.1 fails to import beside torch 2.11.0
        "lhotse>=1.30",
        "kaldiio>=2.18",
        "sentencepiece>=0.2",
        "pyyaml>=6",
        "faiss-cpu>=1.8",
        "flashlight-text>=0.0.7",
        "tensorboard>=2.15",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "soundfile>=0.12",
        "urllib3",  # lhotse imports it without declaring it
    ],
    extras_require={
        "dev": ["pytest>=8", "transformers>=4.45", "scikit-learn>=1.3"],  # sklearn: bench/kmeans.py
        "espnet": [
            "typeguard>=4", "humanfriendly", "einops", "hydra-core", "opt-einsum", "torch-complex",
            "librosa>=0.10.2", "h5py", "jamo==0.4.1",
            "espnet_tts_frontend",  # tacotron_cleaner and g2p_en, imported by espnet2's tokenizers
            "editdistance",  # ESPnet's CER/WER report during training
        ],
    },
)
