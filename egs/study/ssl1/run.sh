#!/usr/bin/env bash
# Does pre-training yield a useful model? Pre-train on real unlabeled speech, then fine-tune at
# a small labeled budget from the pre-trained upstream and from the same architecture at random
# init, over seeds. The defaults are the demo (`make demo`: HuBERT, 5 labeled utterances per
# digit); ./study.sh runs the CPU-scale study (every objective, two budgets, probing) with it.
#
# Unlabeled pool: the asterisk prompts es/fr/it/ru and the English prompts' audio (Debian
# asterisk-core-sounds-*-wav), and the FSDD train recordings without their labels.
# Labeled task: FSDD spoken digits (../shared/data/fsdd): the budget is drawn from FSDD train,
# decoding is on the 300-utterance FSDD test set (official split: the same 6 speakers, other
# takes). Chance is 90 % WER (one word per utterance, ten words).
#
# Stages:
#   0  manifests + validation reports: asterisk -> data/{en_train,en_dev,en_test,pool}, FSDD -> data/{train,test}
#   1  pre-training pool -> data/ptpool (speechssl2.bin.pool_cuts: 4 s windows, transcripts dropped)
#   2  tokenizer, labeled sets validated, HuBERT iteration-1 targets on data/ptpool (ssl.sh 1-2)
#   3  pre-training of each of $objectives (conf/pretrain_<objective>.yaml, ssl.sh 3)
#   4  word 3-gram over the digit lexicon (ssl.sh 5)
#   5  fine-tuning at each of $budgets from scratch and from each objective, $seeds (budget.sh)
#   6  pre-training health against chance and learning curves -> HEALTH.md / HEALTH.png
#   7  RESULTS.md: the budget tables (with their shown / not shown claims) and the health table
#
# Usage: ./run.sh [--objectives "hubert wavlm"] [--budgets "per_label=5"] [--seeds "1 2"] [--stage N] [--stop_stage M]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=0                # first stage to run
stop_stage=100         # last stage to run
sounds_dir=/usr/share/asterisk/sounds              # installed asterisk-core-sounds-* packages
fsdd_dir=../../../../shared/data/fsdd/recordings   # FSDD recordings: <digit>_<speaker>_<index>.wav
work_dir=.             # data/ and exp/ are written here
conf=conf              # configuration directory
objectives=hubert      # pre-training runs, conf/pretrain_<objective>.yaml; the first one's architecture is "scratch"
budgets=per_label=5    # labeled budgets of FSDD train (subset_cuts field=value), one table each
seeds="1 2"            # fine-tuning seeds per upstream and budget
pool_sets="pool en_train train"  # sets pooled (unlabeled) for pre-training: asterisk es/fr/it/ru, en audio, FSDD train
nj=2                   # parallel jobs for feature/label dumping
. utils/parse_options.sh

conf=$(cd "$conf" && pwd)
mkdir -p "$work_dir"
work_dir=$(cd "$work_dir" && pwd)
fsdd_dir=$(cd "$fsdd_dir" && pwd) || { echo "FSDD not found: pass --fsdd_dir (the recordings folder)" >&2; exit 1; }
data=$work_dir/data exp=$work_dir/exp
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }  # logs; each stage skips itself
ssl() { ./ssl.sh --work_dir "$work_dir" --conf "$conf" --nj "$nj" --pretrain_set ptpool --train_set train \
          --text_set train --dev_set test --test_sets test --labeled_sets "train test" "$@"; }
needs_targets() { case $1 in hubert*|wavlm*|ils*) echo 1 ;; *) echo 0 ;; esac; }  # cluster-label objectives
upstream_of() {  # the upstream spec of a pre-training config, in YAML flow style (the scratch runs' architecture)
  python -c 'import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["model"]["upstream"], default_flow_style=True, width=1000).strip())' "$1"
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "Stage 0: manifests and validation reports -> $data"
  run_stage "$data/log/prepare_data_asterisk.log" \
    python -m speechssl2.bin.prepare_data --config "$conf/data_asterisk.yaml" \
      --set corpus.corpus_dir="$sounds_dir" --set output_dir="$data"
  run_stage "$data/log/prepare_data_fsdd.log" \
    python -m speechssl2.bin.prepare_data --config "$conf/data_fsdd.yaml" \
      --set corpus.corpus_dir="$fsdd_dir" --set output_dir="$data"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "Stage 1: unlabeled pre-training pool ($pool_sets) -> $data/ptpool"
  inputs=""
  for s in $pool_sets; do inputs+="${inputs:+,}$data/$s/cuts.jsonl.gz"; done
  run_stage "$data/ptpool/log/pool_cuts.log" \
    python -m speechssl2.bin.pool_cuts --config "$conf/pool.yaml" --set "inputs=[$inputs]" \
      --set output="$data/ptpool/cuts.jsonl.gz"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  ssl --stage 1 --stop_stage 2 --hubert_iter 1
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for obj in $objectives; do
    ssl --stage 3 --stop_stage 3 --pretrain_model "$obj" --hubert_iter "$(needs_targets "$obj")" --pt_name "$obj"
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  ssl --stage 5 --stop_stage 5
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  first=${objectives%% *}
  scratch=$(upstream_of "$conf/pretrain_$first.yaml")
  for budget in $budgets; do
    ./budget.sh --work_dir "$work_dir" --conf "$conf" --train_set train --test_set test --budget "$budget" \
      --upstreams "scratch $objectives" --scratch "$scratch" --seeds "$seeds" --ft_conf finetune_budget \
      --out "$work_dir/BUDGET_${budget/=/_}" --chance 90 --baseline scratch \
      --title "FSDD digits at $budget labeled: pre-trained vs scratch ($first architecture)" \
      --notes "CTC fine-tuning (conf/finetune_budget.yaml, the same updates for every upstream) on $budget of FSDD train, decoded on FSDD test greedily and with a word 3-gram over the ten-word lexicon; chance is 90 % WER. Pre-training: conf/pretrain_<upstream>.yaml on data/ptpool."
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  echo "Stage 6: pre-training health -> $work_dir/HEALTH.md"
  runs=""
  for obj in $objectives; do runs+="${runs:+, }$obj: $exp/pretrain_$obj"; done
  labels=()
  [ -f "$data/ptpool/cuts_hubert_iter1.jsonl.gz" ] && labels=(--set labels="$data/ptpool/cuts_hubert_iter1.jsonl.gz")
  python -m speechssl2.bin.curves --config "$conf/health.yaml" --set "runs={$runs}" "${labels[@]}" \
    --set output="$work_dir/HEALTH.md" --set plot="$work_dir/HEALTH.png"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  echo "Stage 7: $work_dir/RESULTS.md"
  { for budget in $budgets; do cat "$work_dir/BUDGET_${budget/=/_}.md"; echo; done; cat "$work_dir/HEALTH.md"; } \
    > "$work_dir/RESULTS.md.tmp" && mv "$work_dir/RESULTS.md.tmp" "$work_dir/RESULTS.md"
  cat "$work_dir/RESULTS.md"
fi
