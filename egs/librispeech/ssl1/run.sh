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
#      validated against it (ssl.sh stage 1, as are stages 2-4, 6 and 7)
#   2  HuBERT targets of iteration $targets_iter on $pretrain_set in $nj jobs: 1 = MFCC k-means;
#      2 = layer 6 of exp/pretrain_hubert_base_iter1; 3 = layer 9 of exp/pretrain_hubert_base_iter2
#      (conf/targets_iter<k>.yaml); 0 = none needed
#   3  pre-training conf/pretrain_$pretrain_model.yaml -> exp/pretrain_$pretrain_model
#   4  CTC fine-tuning conf/finetune_ctc_$finetune_set.yaml (10min 1h 10h 100h 960h: wav2vec 2.0's
#      recipes; 10h_hubert: HuBERT's 10 h recipe) -> exp/finetune_<model>_ctc_<set>; with
#      --finetune_type transducer conf/finetune_transducer_<set>.yaml (960h: w2v-BERT's RNN-T)
#   5  LMs: official 4-gram -> exp/lm_4gram (lm.bin + lexicon); Transformer LM -> exp/lm_transformer
#   6  decode $test_sets: greedy, beam + 4-gram, beam + 4-gram + Transformer LM rescoring (CTC);
#      greedy, beam, beam + Transformer LM fusion, beam + Transformer LM rescoring (transducer)
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
finetune_set=10h              # conf/finetune_<finetune_type>_<set>.yaml: ctc 10min 1h 10h 100h 960h 10h_hubert; transducer 960h
finetune_type=ctc             # stage 4: ctc or transducer (w2v-BERT's RNN-T); stage 6 decoders follow
init_from=""          # stage 3: continue pre-training from this checkpoint (HF dir, fairseq/torchaudio .pt; docs/reproduce.md)
targets_iter=auto             # auto: from pretrain_model (see below)
test_sets="dev_clean dev_other test_clean test_other"  # sets decoded in stage 6
nj=8                          # parallel jobs for feature/label dumping (stage 2)
. utils/parse_options.sh

conf=$(pwd)/conf
mkdir -p "$work_dir" "$corpus_dir"
work_dir=$(cd "$work_dir" && pwd)
corpus_dir=$(cd "$corpus_dir" && pwd)
data=$work_dir/data
exp=$work_dir/exp
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }  # logs; each stage skips itself
[ -f "$conf/finetune_${finetune_type}_$finetune_set.yaml" ] || {
  echo "no conf/finetune_${finetune_type}_$finetune_set.yaml: choose --finetune_set among" \
    "$(cd "$conf" && ls finetune_"${finetune_type}"_*.yaml 2>/dev/null | sed "s/finetune_${finetune_type}_//; s/.yaml//" | xargs)" >&2; exit 2; }
if [ "$targets_iter" = auto ]; then
  case $pretrain_model in
    hubert_base_iter1) targets_iter=1 ;;
    hubert_base_iter2|wavlm_base|wavlm_base_plus|ils_hubert) targets_iter=2 ;;
    hubert_large|wavlm_large) targets_iter=3 ;;
    *) targets_iter=0 ;;      # wav2vec, wav2vec2_*, w2v_bert: no cluster targets
  esac
fi
targets_from=""  # iteration k > 1 clusters a layer of HuBERT BASE iteration k - 1
[ "$targets_iter" -gt 1 ] && targets_from=$exp/pretrain_hubert_base_iter$((targets_iter - 1))/checkpoint_last.pt
ft_hours=${finetune_set%%_*}  # 10h_hubert -> 10h: what follows "_" names the recipe, not the data
case $ft_hours in 10min) ft_data=train_10m ;; 100h) ft_data=train_100 ;; 960h) ft_data=train_960 ;; *) ft_data=train_$ft_hours ;; esac
labeled_sets=$(printf '%s\n' train_960 train_100 train_10h train_1h train_10m dev_other $test_sets | awk '!seen[$0]++' | xargs)
ssl() {
  ./ssl.sh --init_from "$init_from" --work_dir "$work_dir" --conf "$conf" --labeled_sets "$labeled_sets" --text_set train_960 \
    --pretrain_set "$pretrain_set" --pretrain_model "$pretrain_model" --pt_name "$pretrain_model" \
    --hubert_iter "$targets_iter" --targets_from "$targets_from" --nj "$nj" \
    --train_set "$ft_data" --dev_set dev_other --finetune_type "$finetune_type" --ft_conf "finetune_${finetune_type}_$finetune_set" --ft_name "${finetune_type}_$finetune_set" \
    --ft_label "$ft_data${finetune_set#"$ft_hours"}" --test_sets "$test_sets" --lm_dir "$exp/lm_4gram" "$@"
}

if [ "$stage" -le -1 ] && [ "$stop_stage" -ge -1 ]; then
  echo "Stage -1: download LibriSpeech + Libri-Light limited + LM files -> $corpus_dir"
  python -m speechssl2.bin.download_librispeech --set target_dir="$corpus_dir"
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "Stage 0: manifests and validation reports -> $data"
  run_stage "$data/log/prepare_data.log" \
    python -m speechssl2.bin.prepare_data --config "$conf/data.yaml" --set corpus.corpus_dir="$corpus_dir" \
      --set corpus.librilight_dir="$corpus_dir" --set output_dir="$data"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 1 ]; then
  ssl --stage "$(( stage > 1 ? stage : 1 ))" --stop_stage "$(( stop_stage < 4 ? stop_stage : 4 ))"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "Stage 5: official 4-gram -> $exp/lm_4gram; Transformer LM -> $exp/lm_transformer"
  run_stage "$exp/lm_4gram/log/import_ngram.log" \
    python -m speechssl2.bin.import_ngram --config "$conf/lm_4gram.yaml" --set arpa="$corpus_dir/lm/4-gram.arpa.gz" \
      --set words="$corpus_dir/lm/librispeech-lexicon.txt" --set tokenizer="$data/lang_char" --set out_dir="$exp/lm_4gram"
  [ -f "$corpus_dir/lm/librispeech-lm-norm.txt" ] || gunzip -k "$corpus_dir/lm/librispeech-lm-norm.txt.gz"
  run_stage "$exp/lm_transformer/log/train_lm.log" \
    $train_cmd -- python -m speechssl2.bin.train_lm --config "$conf/lm_transformer.yaml" \
      --set text.train="$corpus_dir/lm/librispeech-lm-norm.txt" --set text.valid="$data/dev_other/cuts_char.jsonl.gz" \
      --set model.tokenizer="$data/lang_char" --set exp_dir="$exp/lm_transformer"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  tlm=$exp/lm_transformer/checkpoint_best.pt
  if [ "$finetune_type" = ctc ]; then
    ssl --stage 6 --stop_stage 6 --decoders "greedy beam_4gram"
    ssl --stage 6 --stop_stage 6 --decoders beam_4gram_transformer --rescore_lm "$tlm"
  else
    ssl --stage 6 --stop_stage 6 --tlm "$tlm" \
      --decoders "transducer_greedy transducer_beam transducer_beam_tlm transducer_beam_rescore"
  fi
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  ssl --stage 7 --stop_stage 7
fi
