#!/usr/bin/env bash
# The demo: pre-train on the multilingual asterisk pool (es fr it ru, unlabeled),
# fine-tune and score on the English prompts (one speaker, held-out test split).
# Needs the Debian packages asterisk-core-sounds-{en,es,fr,it,ru}-wav and
# asterisk-core-sounds-en (transcripts); `make demo` installs them as root.
#
# Stages:
#   0  data: Lhotse manifests en_train/en_dev/en_test + pool, validation report per set
#   1-7 shared SSL pipeline, see ssl.sh: tokenizer, HuBERT targets, pre-training,
#       CTC or transducer fine-tuning (--finetune_type), n-gram (+ Transformer) LM, decoding, RESULTS.md
#
# Usage: ./run.sh [--kaldi_dir DIR] [--stage N] [--stop_stage M] [--work_dir DIR]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=0               # first stage to run
stop_stage=100        # last stage to run
sounds_dir=/usr/share/asterisk/sounds  # installed asterisk-core-sounds-* packages
kaldi_dir=""          # stage 0 from Kaldi data dirs instead: <kaldi_dir>/{en_train,en_dev,en_test,pool}/wav.scp, ...
work_dir=.            # data/ and exp/ are written here
pretrain_model=hubert # conf/pretrain_<model>.yaml
token_type=char       # conf/tokenizer_<token_type>.yaml: char or bpe (SentencePiece)
finetune_type=ctc     # stage 4: ctc or transducer (conf/finetune_<type>.yaml; stage 6 decoders follow)
init_from=""          # stage 3: continue pre-training from this checkpoint (HF dir, fairseq/torchaudio .pt; docs/reproduce.md)
hubert_iter=1         # HuBERT targets: 1 = MFCC k-means; 2 = k-means on a layer of exp/pretrain_<model>
nj=2                  # parallel jobs for feature/label dumping (stage 2; cmd.sh says where they run)
conf=conf             # configuration directory (a copy with other settings works too)
. utils/parse_options.sh

conf=$(cd "$conf" && pwd)
mkdir -p "$work_dir"
work_dir=$(cd "$work_dir" && pwd)
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }  # logs; each stage skips itself

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ -n "$kaldi_dir" ]; then
  utils/prepare_kaldi.sh "$conf/data.yaml" "$kaldi_dir" "$work_dir/data" en_train en_dev en_test pool
elif [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "Stage 0: manifests and validation reports -> $work_dir/data/{en_train,en_dev,en_test,pool}"
  run_stage "$work_dir/data/log/prepare_data.log" \
    python -m speechssl2.bin.prepare_data --config "$conf/data.yaml" \
      --set corpus.corpus_dir="$sounds_dir" --set output_dir="$work_dir/data"
fi

if [ "$stop_stage" -ge 1 ]; then
  ./ssl.sh --init_from "$init_from" --stage "$(( stage > 1 ? stage : 1 ))" --stop_stage "$stop_stage" --work_dir "$work_dir" \
    --conf "$conf" --pretrain_model "$pretrain_model" --token_type "$token_type" --finetune_type "$finetune_type" --hubert_iter "$hubert_iter" --nj "$nj"
fi
