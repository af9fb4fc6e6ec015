"""Corpus preparation functions, one file each, registered in ``CORPORA``.

Each is ``prepare_<x>(corpus_dir, output_dir, **options) -> dict[set name, CutSet]``
and writes ``<output_dir>/<set>/{recordings,supervisions,cuts}.jsonl.gz`` plus
``excluded.tsv`` (see ``speechssl2.data.manifest``).
"""
