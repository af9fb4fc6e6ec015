#!/usr/bin/env bash
# Fine-tuning at a small labeled budget, from scratch and from each pre-trained upstream, over
# several seeds, and the table of mean ± std (the low-resource rows of the papers' tables).
# Every upstream gets the same labeled subset (drawn once), the same config and updates; only
# the seed changes. A scratch run is the same architecture at random init, its feature encoder
# trained too (freeze_frontend false) and nothing frozen (a random upstream has nothing to protect).
#
#   ./budget.sh --work_dir . --conf conf --train_set train --test_set test --budget per_label=5 \
#     --name 5pd --upstreams "scratch hubert" --scratch "{name: hubert_tiny}" --seeds "1 2 3"
#
# Writes data/<train_set>_<name>/cuts.jsonl.gz, exp/budget_<name>/<upstream>_seed<k>/ and
# <out>.md / <out>.png (default <work_dir>/BUDGET_<name>.md). --chance and --baseline make the
# table state, per upstream, whether it beats the baseline by more than the seed spread
# (speechssl2.bin.seed_table).
set -euo pipefail
. ./path.sh
. ./cmd.sh

work_dir=.                  # data/ and exp/ are read and written here
conf=conf                   # configuration directory
train_set=train             # labeled set (validated: data/<set>/cuts_<token_type>.jsonl.gz) the budget is drawn from
test_set=test               # labeled set decoded (checkpoint_last.pt: no model selection on it)
token_type=char             # tokenizer data/lang_<token_type>
budget=seconds=300          # subset_cuts field=value: seconds=S, num_cuts=N or per_label=N (drawn with seed 0)
name=""                     # the budget's name in paths ("" = the budget with = replaced by _)
upstreams="scratch hubert"  # scratch, or <model> for exp/pretrain_<model>/checkpoint_last.pt
scratch="{name: hubert_tiny}"  # upstream spec of the scratch runs
seeds="1 2 3"               # fine-tuning seeds per upstream
ft_conf=finetune_mini       # conf/<ft_conf>.yaml
decoders="greedy beam_lm"   # conf/decode_<decoder>.yaml; beam_lm needs lm_dir/lm.bin
lm_dir=""                   # n-gram LM ("" = exp/lm_word3_<token_type>)
out=""                      # table path without extension ("" = <work_dir>/BUDGET_<name>)
title=""                    # table heading (no double quotes)
notes=""                    # paragraph above the table (no double quotes)
baseline=scratch            # upstream the others are compared with ("" = no comparison)
chance=""                   # chance WER % of the task (stated in the table; "" = not stated)
. utils/parse_options.sh

data=$work_dir/data
exp=$work_dir/exp
name=${name:-${budget/=/_}}
lm_dir=${lm_dir:-$exp/lm_word3_$token_type}
out=${out:-$work_dir/BUDGET_$name}
sub=$data/${train_set}_$name/cuts.jsonl.gz
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }

echo "Budget $name ($budget of $train_set): upstreams $upstreams; seeds $seeds"
run_stage "$(dirname "$sub")/log/subset_cuts.log" \
  python -m speechssl2.bin.subset_cuts --set cuts="$data/$train_set/cuts_$token_type.jsonl.gz" \
    --set output="$sub" --set "$budget" --set seed=0
for up in $upstreams; do
  src=$exp/pretrain_$up/checkpoint_last.pt from_scratch=()
  if [ "$up" = scratch ]; then
    src=$scratch from_scratch=(--set model.encoder.freeze_updates=0 --set model.encoder.freeze_frontend=false)
  elif [ ! -f "$src" ]; then
    echo "Budget $name: no $src (pre-train $up first); skipping $up"
    continue
  fi
  for seed in $seeds; do
    d=$exp/budget_$name/${up}_seed$seed
    run_stage "$d/log/finetune.log" \
      $train_cmd -- python -m speechssl2.bin.finetune --config "$conf/$ft_conf.yaml" \
        --set model.encoder.upstream="$src" "${from_scratch[@]}" --set model.tokenizer="$data/lang_$token_type" \
        --set data.train="$sub" --set data.valid="$data/$test_set/cuts_$token_type.jsonl.gz" \
        --set trainer.seed="$seed" --set exp_dir="$d"
    for dec in $decoders; do
      [ "$dec" != greedy ] && [ ! -f "$lm_dir/lm.bin" ] && continue  # no n-gram (KenLM not built)
      run_stage "$d/decode_${dec}_$test_set/log/decode.log" \
        python -m speechssl2.bin.decode --config "$conf/decode_$dec.yaml" --set checkpoint="$d/checkpoint_last.pt" \
          --set cuts="$data/$test_set/cuts_$token_type.jsonl.gz" --set out_dir="$d/decode_${dec}_$test_set" \
          --set lm_dir="$lm_dir" --set meta.upstream="$up" --set meta.finetune_set="${train_set} ($budget)" \
          --set meta.test_set="$test_set" --set meta.seed="$seed" --set meta.units="$token_type"
    done
  done
done
python -m speechssl2.bin.seed_table --set exp_dir="$exp/budget_$name" --set output="$out.md" --set plot="$out.png" \
  --set "title=\"${title:-Fine-tuning at $budget of $train_set}\"" --set "notes=\"$notes\"" \
  --set "baseline=$baseline" ${chance:+--set chance=$chance}
cat "$out.md"
