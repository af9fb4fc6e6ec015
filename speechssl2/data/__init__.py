"""The Lhotse data path: corpus manifests, validation reports, batches for training.

Layout written by every corpus (``speechssl2.data.corpora``)::

    <output_dir>/<set>/recordings.jsonl.gz
    <output_dir>/<set>/supervisions.jsonl.gz
    <output_dir>/<set>/cuts.jsonl.gz
    <output_dir>/<set>/excluded.tsv     # what preparation left out, and why

``speechssl2.bin.prepare_data`` then validates each set (``validate.py``), keeps the
unfiltered cuts as ``cuts_raw.jsonl.gz``, writes the clean ``cuts.jsonl.gz`` and a
``report.txt``; ``loader.py`` turns a cut manifest into padded batches.
"""
