#!/usr/bin/env bash
# Stage 0 from Kaldi data directories: for each set, speechssl2.bin.prepare_data with the
# `kaldi` corpus on <kaldi_dir>/<set>/ (wav.scp, optional segments, text, utt2spk) ->
# <data_dir>/<set>/ (manifests, excluded.tsv, report.txt). The other settings of <data.yaml>
# (validation, min_samples, sample_rate) apply; its corpus is replaced.
# Usage: utils/prepare_kaldi.sh <data.yaml> <kaldi_dir> <data_dir> <set> [<set> ...]
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 <data.yaml> <kaldi_dir> <data_dir> <set> [<set> ...]" >&2; exit 1; }
conf=$1 kaldi_dir=$2 data_dir=$3
shift 3
for s in "$@"; do  # every set present before any is prepared
  [ -f "$kaldi_dir/$s/wav.scp" ] || { echo "$0: no $kaldi_dir/$s/wav.scp (one Kaldi data directory per set)" >&2; exit 1; }
done
for s in "$@"; do
  dir=$(cd "$kaldi_dir/$s" && pwd)
  echo "Stage 0: manifests and validation report of the Kaldi data directory $dir -> $data_dir/$s"
  utils/run_stage.sh "$data_dir/$s/log/prepare_data.log" -- \
    python -m speechssl2.bin.prepare_data --config "$conf" \
      --set "corpus={name: kaldi, corpus_dir: \"$dir\", set_name: $s}" --set output_dir="$data_dir"
done
