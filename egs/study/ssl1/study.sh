#!/usr/bin/env bash
# The CPU-scale study (issue 17): every seed objective pre-trained with the same budget (the same
# architecture where the objective allows, the same updates and batch), fine-tuned at two labeled
# budgets from scratch and from each upstream over three seeds, probed frozen on FSDD. Resumable:
# rerun the same command after an interruption; finished stages skip themselves.
#
#   ./study.sh [--work_dir DIR]          # the whole study (hours on 2 CPU cores)
#   ./study.sh --objectives "hubert wavlm" --seeds "1 2" --budgets per_label=5   # a part of it
#
# Results: <work_dir>/RESULTS.md (budget tables with their shown / not shown claims, pre-training
# health against chance), HEALTH.png, BUDGET_*.png, exp/probe/results.md + layer_weights.png.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

work_dir=.
conf=conf
objectives="hubert wavlm ils_hubert wav2vec2 w2v_bert wav2vec"
budgets="per_label=5 per_label=30"   # 50 and 300 labeled utterances (22 s and 130 s of audio)
seeds="1 2 3"
probe=true                            # stage 8: frozen probing of every checkpoint
. utils/parse_options.sh

./run.sh --work_dir "$work_dir" --conf "$conf" --objectives "$objectives" --budgets "$budgets" --seeds "$seeds"
if [ "$probe" = true ]; then
  work_dir=$(cd "$work_dir" && pwd)
  extra=""
  for obj in $objectives; do
    ckpt=$work_dir/exp/pretrain_$obj/checkpoint_last.pt
    [ -f "$ckpt" ] && extra+="${extra:+, }{path: '$ckpt', tag: $obj}"
  done
  echo "Stage 8: probing the random-init architectures and: $extra -> $work_dir/exp/probe"
  utils/run_stage.sh "$work_dir/exp/probe/log/probe.log" -- \
    python -m speechssl2.bin.probe --config "$conf/probe.yaml" --set data_dir="$work_dir/data" \
      --set output_dir="$work_dir/exp/probe" --set "extra_upstreams=[$extra]"
  cat "$work_dir/exp/probe/results.md"
fi
