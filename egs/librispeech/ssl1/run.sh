#!/usr/bin/env bash
# LibriSpeech 960 h: SSL pre-training on train_960, CTC fine-tuning on Libri-Light limited
# (10 min / 1 h / 10 h), train-clean-100 or all 960 h, decoding of dev/test clean/other
# with the official 4-gram and a Transformer LM. Paper rows and commands: docs/reproduce.md.
#
# Stages:
#  -1  download LibriSpeech, Libri-Light limited and the official LM files into $corpus_dir
#      (for users; ~60 GB; never run by tests or CI)
#   0  data: Lhotse manifests train_960 train_100 dev_clean dev_other test_clean test_other
#      train_10m train_1h train_10h from $corpus_dir, validation report per set
#   1  character tokenizer (conf/tokenizer_char.yaml) on train_960 transcripts; labeled sets
#      re-validated (ssl.sh stage 1)
#   2  HuBERT targets of iteration $targets_iter on $pretrain_set: 1 = MFCC k-means (ssl.sh
#      stage 2); 2 = layer 6 of exp/pretrain_hubert_base_iter1; 3 = layer 9 of
#      exp/pretrain_hubert_base_iter2 (conf/targets_iter<k>.yaml); 0 = none needed
#   3  pre-training conf/pretrain_$pretrain_model.yaml -> exp/pretrain_$pretrain_model
#   4  CTC fine-tuning conf/finetune_ctc_$finetune_set.yaml (10min 1h 10h 100h 960h: wav2vec 2.0's
#      recipes; 10h_hubert: HuBERT's 10 h recipe) -> exp/finetune_<model>_ctc_<set>
#   5  LMs: official 4-gram -> exp/lm_4gram (lm.bin + lexicon); Transformer LM -> exp/lm_transformer
#   6  decode $test_sets: greedy, beam + 4-gram, beam + 4-gram + Transformer LM rescoring
#   7  RESULTS.md: every scored experiment in one table
#
# Usage: ./run.sh --corpus_dir /data/librispeech [--stage N] [--stop_stage M] [--work_dir DIR]
#          [--pretrain_model hubert_base_iter1] [--finetune_set 10h] [--targets_iter auto]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=0                       # first stage to run (-1 downloads the corpus)
stop_stage=100                # last stage to run
corpus_dir=corpora            # holds LibriSpeech/, librispeech_finetuning/, lm/
work_dir=.                    # data/ and exp/ are written here
pretrain_model=hubert_base_iter1  # conf/pretrain_<model>.yaml
pretrain_set=train_960        # unlabeled set for pre-training and its HuBERT targets
finetune_set=10h              # conf/finetune_ctc_<set>.yaml: 10min 1h 10h 100h 960h 10h_hubert
targets_iter=auto             # auto: from pretrain_model (see below)
test_sets="dev_clean dev_other test_clean test_other"  # sets decoded in stage 6
. utils/parse_options.sh

conf=$(pwd)/conf
mkdir -p "$work_dir" "$corpus_dir"
work_dir=$(cd "$work_dir" && pwd)
corpus_dir=$(cd "$corpus_dir" && pwd)
data=$work_dir/data
exp=$work_dir/exp
run_stage() { utils/run_stage.sh "$exp/.stages" "$@"; }
if [ "$targets_iter" = auto ]; then
  case $pretrain_model in
    hubert_base_iter1) targets_iter=1 ;;
    hubert_base_iter2|wavlm_base|wavlm_base_plus|ils_hubert) targets_iter=2 ;;
    hubert_large|wavlm_large) targets_iter=3 ;;
    *) targets_iter=0 ;;      # wav2vec, wav2vec2_*, w2v_bert: no cluster targets
  esac
fi
train_cuts=$data/$pretrain_set/cuts.jsonl.gz
[ "$targets_iter" -gt 0 ] && train_cuts=$data/$pretrain_set/cuts_hubert_iter$targets_iter.jsonl.gz
ft_hours=${finetune_set%%_*}  # 10h_hubert -> 10h: what follows "_" names the recipe, not the data
case $ft_hours in 10min) ft_data=train_10m ;; 100h) ft_data=train_100 ;; 960h) ft_data=train_960 ;; *) ft_data=train_$ft_hours ;; esac
pt_exp=$exp/pretrain_$pretrain_model
ft_exp=$exp/finetune_${pretrain_model}_ctc_$finetune_set
ssl() { ./ssl.sh --work_dir "$work_dir" --conf "$conf" --pretrain_set "$pretrain_set" --train_set train_960 \
  --dev_set dev_other --test_sets "$test_sets" --labeled_sets "train_960 train_100 train_10h train_1h train_10m $test_sets" "$@"; }

if [ "$stage" -le -1 ] && [ "$stop_stage" -ge -1 ]; then
  echo "Stage -1: download LibriSpeech + Libri-Light limited + LM files -> $corpus_dir"
  python -m speechssl2.bin.download_librispeech --set target_dir="$corpus_dir"
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "Stage 0: manifests and validation reports -> $data"
  run_stage data "$conf/data.yaml $corpus_dir" -- \
    python -m speechssl2.bin.prepare_data --config "$conf/data.yaml" --set corpus.corpus_dir="$corpus_dir" \
      --set corpus.librilight_dir="$corpus_dir" --set output_dir="$data"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  ssl --stage 1 --stop_stage 1
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ "$targets_iter" -eq 1 ]; then
  ssl --stage 2 --stop_stage 2
elif [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ "$targets_iter" -gt 1 ]; then
  from=$([ "$targets_iter" -eq 2 ] && echo hubert_base_iter1 || echo hubert_base_iter2)
  tgt=(--config "$conf/targets_iter$targets_iter.yaml" --set cuts="$data/$pretrain_set/cuts.jsonl.gz"
       --set exp_dir="$exp/hubert_targets_iter$targets_iter" --set features.checkpoint="$exp/pretrain_$from/checkpoint_last.pt")
  for step in dump_features learn_kmeans dump_labels; do
    echo "Stage 2: HuBERT iteration-$targets_iter targets from $from: $step"
    run_stage "targets${targets_iter}_$step" "$conf/targets_iter$targets_iter.yaml $exp/pretrain_$from/checkpoint_last.pt" -- \
      python -m speechssl2.bin.$step "${tgt[@]}"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "Stage 3: $pretrain_model pre-training on $train_cuts -> $pt_exp"
  run_stage "pretrain_$pretrain_model" "$conf/pretrain_$pretrain_model.yaml $train_cuts" -- \
    $train_cmd -- python -m speechssl2.bin.train --config "$conf/pretrain_$pretrain_model.yaml" \
      --set data.train="$train_cuts" --set exp_dir="$pt_exp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "Stage 4: CTC fine-tuning on $ft_data -> $ft_exp"
  run_stage "finetune_${pretrain_model}_$finetune_set" "$conf/finetune_ctc_$finetune_set.yaml $pt_exp/checkpoint_last.pt" -- \
    $train_cmd -- python -m speechssl2.bin.finetune --config "$conf/finetune_ctc_$finetune_set.yaml" \
      --set model.encoder.upstream="$pt_exp/checkpoint_last.pt" --set model.tokenizer="$data/lang_char" \
      --set data.train="$data/$ft_data/cuts.jsonl.gz" --set data.valid="$data/dev_other/cuts.jsonl.gz" \
      --set exp_dir="$ft_exp"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "Stage 5: official 4-gram -> $exp/lm_4gram; Transformer LM -> $exp/lm_transformer"
  run_stage lm_4gram "$conf/lm_4gram.yaml $data/lang_char/chars.txt" -- \
    python -m speechssl2.bin.import_ngram --config "$conf/lm_4gram.yaml" --set arpa="$corpus_dir/lm/4-gram.arpa.gz" \
      --set words="$corpus_dir/lm/librispeech-lexicon.txt" --set tokenizer="$data/lang_char" --set out_dir="$exp/lm_4gram"
  [ -f "$corpus_dir/lm/librispeech-lm-norm.txt" ] || gunzip -k "$corpus_dir/lm/librispeech-lm-norm.txt.gz"
  run_stage lm_transformer "$conf/lm_transformer.yaml $data/lang_char/chars.txt" -- \
    $train_cmd -- python -m speechssl2.bin.train_lm --config "$conf/lm_transformer.yaml" \
      --set text.train="$corpus_dir/lm/librispeech-lm-norm.txt" --set text.valid="$data/dev_other/cuts.jsonl.gz" \
      --set model.tokenizer="$data/lang_char" --set exp_dir="$exp/lm_transformer"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  for test in $test_sets; do
    for dec in greedy beam_4gram beam_4gram_transformer; do
      echo "Stage 6: decode $test with $dec -> $ft_exp/decode_${dec}_$test"
      rescore=(); [ "$dec" = beam_4gram_transformer ] && rescore=(--set rescore_lm="$exp/lm_transformer/checkpoint_best.pt")
      run_stage "decode_${pretrain_model}_${finetune_set}_${dec}_$test" "$conf/decode_$dec.yaml $ft_exp/checkpoint_best.pt" -- \
        python -m speechssl2.bin.decode --config "$conf/decode_$dec.yaml" --set checkpoint="$ft_exp/checkpoint_best.pt" \
          --set cuts="$data/$test/cuts.jsonl.gz" --set out_dir="$ft_exp/decode_${dec}_$test" --set lm_dir="$exp/lm_4gram" \
          --set meta.upstream="$pretrain_model" --set meta.finetune_set="$ft_data${finetune_set#"$ft_hours"}" --set meta.test_set="$test" \
          --set meta.units=char "${rescore[@]}"
    done
  done
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  ssl --stage 7 --stop_stage 7
fi
