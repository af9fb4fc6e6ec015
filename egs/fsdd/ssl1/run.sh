#!/usr/bin/env bash
# FSDD spoken digits (6 speakers, 8 kHz, resampled to 16 kHz on the fly).
#
# Stages:
#   0  data: Lhotse manifests (train/test, official split) + validation report per set
#   1-7 shared SSL pipeline, see ssl.sh: tokenizer, HuBERT targets, pre-training,
#       CTC fine-tuning, n-gram LM, decoding, RESULTS.md
#   8  SUPERB-style probing of frozen upstreams (random-init baselines + the pre-trained
#      checkpoints of every pretrain_model run so far) -> exp/probe/results.md, layer_weights.png
#
# Usage: ./run.sh --fsdd_dir /path/to/fsdd/recordings [--stage N] [--stop_stage M] [--work_dir DIR]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=0
stop_stage=100
fsdd_dir=../../../../shared/data/fsdd/recordings
work_dir=.            # data/ and exp/ are written here
pretrain_model=hubert # conf/pretrain_<model>.yaml
probe_upstreams="{name: wavlm_tiny}, {name: hubert_tiny}"  # plus exp/pretrain_*/checkpoint_last.pt found
. utils/parse_options.sh

conf=$(pwd)/conf
mkdir -p "$work_dir"
work_dir=$(cd "$work_dir" && pwd)
fsdd_dir=$(cd "$fsdd_dir" && pwd) || { echo "FSDD not found: pass --fsdd_dir" >&2; exit 1; }
marks=$work_dir/exp/.stages
run_stage() { utils/run_stage.sh "$marks" "$@"; }

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "Stage 0: manifests and validation reports -> $work_dir/data/{train,test}"
  run_stage data "$conf/data.yaml $fsdd_dir" -- \
    python -m speechssl2.bin.prepare_data --config "$conf/data.yaml" \
      --set corpus.corpus_dir="$fsdd_dir" --set output_dir="$work_dir/data"
fi

if [ "$stop_stage" -ge 1 ]; then
  ./ssl.sh --stage "$(( stage > 1 ? stage : 1 ))" --stop_stage "$stop_stage" --work_dir "$work_dir" \
    --conf "$conf" --pretrain_model "$pretrain_model" --pretrain_set train --train_set train --dev_set test --test_sets test --labeled_sets "train test" --pnmi true \
    --decode_checkpoint checkpoint_last.pt  # FSDD has no dev split: test only monitors
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  ups=$probe_upstreams
  for ckpt in "$work_dir"/exp/pretrain_*/checkpoint_last.pt; do
    [ -f "$ckpt" ] && ups="$ups, {path: $ckpt, tag: $(basename "$(dirname "$ckpt")")}"
  done
  echo "Stage 8: probing [$ups] -> $work_dir/exp/probe"
  utils/run_stage.sh "$marks" probe "$conf/probe.yaml $(echo "$work_dir"/exp/pretrain_*/checkpoint_last.pt)" -- \
    python -m speechssl2.bin.probe --config "$conf/probe.yaml" --set data_dir="$work_dir/data" \
      --set output_dir="$work_dir/exp/probe" --set "upstreams=[$ups]"
fi
