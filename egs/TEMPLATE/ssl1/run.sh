#!/usr/bin/env bash
# A new corpus: copy this file to egs/<corpus>/ssl1/run.sh (docs/adding_a_corpus.md).
#
# Corpus layout read by stage 0 (the `folder` corpus, speechssl2/data/corpora/folder.py):
#   <corpus_dir>/<set>/   audio files at any depth (wav flac ogg opus mp3 sph); utterance
#                         id = file name without extension, unique within the set
#   <corpus_dir>/<set>/text   Kaldi transcripts, "<utt_id> <words>" per line: required for
#                         the labeled sets (train_set, dev_set, test_sets); a pre-training
#                         set without it is unlabeled
#
# Stages:
#   0  data: Lhotse manifests data/<set>/ + validation report per set
#   1-7 shared SSL pipeline, see ssl.sh: tokenizer, HuBERT targets, pre-training,
#       CTC fine-tuning, n-gram LM, decoding, RESULTS.md
#
# Usage: ./run.sh --corpus_dir DIR [--pretrain_set SET] [--stage N] [--stop_stage M] [--work_dir DIR]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=0               # first stage to run
stop_stage=100        # last stage to run
corpus_dir=""         # one sub-folder per set: audio files, plus a Kaldi `text` file when labeled
pretrain_set=train    # set of stages 2-3 (HuBERT targets, pre-training); may be unlabeled
train_set=train       # labeled: tokenizer (stage 1) and fine-tuning (stage 4)
dev_set=dev           # labeled: validation of fine-tuning (picks checkpoint_best.pt)
test_sets=test        # labeled, space-separated: decoded in stage 6
decode_checkpoint=checkpoint_best.pt  # stage 6; checkpoint_last.pt when dev_set is also a test set
work_dir=.            # data/ and exp/ are written here
pretrain_model=hubert # conf/pretrain_<model>.yaml
token_type=char       # conf/tokenizer_<token_type>.yaml: char or bpe (SentencePiece)
hubert_iter=1         # HuBERT targets: 1 = MFCC k-means; 2 = k-means on a layer of exp/pretrain_<model>
nj=2                  # parallel jobs for feature/label dumping (stage 2; cmd.sh says where they run)
conf=conf             # configuration directory (a copy with other settings works too)
. utils/parse_options.sh

conf=$(cd "$conf" && pwd)
mkdir -p "$work_dir"
work_dir=$(cd "$work_dir" && pwd)
labeled_sets=$(printf '%s\n' $train_set $dev_set $test_sets | awk '!seen[$0]++' | xargs)
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }  # logs; each stage skips itself

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  [ -n "$corpus_dir" ] || { echo "$0: pass --corpus_dir (one sub-folder of audio per set)" >&2; exit 1; }
  corpus_dir=$(cd "$corpus_dir" && pwd)  # manifests keep the audio paths: make them absolute
  for s in $(printf '%s\n' $pretrain_set $labeled_sets | awk '!seen[$0]++'); do
    text=$corpus_dir/$s/text
    if [ ! -f "$text" ]; then
      case " $labeled_sets " in *" $s "*) echo "$0: labeled set $s has no $text" >&2; exit 1 ;; esac
      text=null  # unlabeled: pre-training only
    fi
    echo "Stage 0: manifests and validation report of $corpus_dir/$s -> $work_dir/data/$s"
    run_stage "$work_dir/data/$s/log/prepare_data.log" \
      python -m speechssl2.bin.prepare_data --config "$conf/data.yaml" --set corpus.corpus_dir="$corpus_dir/$s" \
        --set corpus.transcripts="$text" --set corpus.set_name="$s" --set output_dir="$work_dir/data"
  done
fi

if [ "$stop_stage" -ge 1 ]; then
  ./ssl.sh --stage "$(( stage > 1 ? stage : 1 ))" --stop_stage "$stop_stage" --work_dir "$work_dir" \
    --conf "$conf" --pretrain_model "$pretrain_model" --token_type "$token_type" --hubert_iter "$hubert_iter" --nj "$nj" \
    --pretrain_set "$pretrain_set" --train_set "$train_set" --dev_set "$dev_set" --test_sets "$test_sets" \
    --labeled_sets "$labeled_sets" --decode_checkpoint "$decode_checkpoint"
fi
