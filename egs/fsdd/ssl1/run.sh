#!/usr/bin/env bash
# FSDD spoken digits (6 speakers, 8 kHz, resampled to 16 kHz on the fly).
#
# Stages:
#   0  data: Lhotse manifests (train/test, official split) + validation report per set
#   1-7 shared SSL pipeline, see ssl.sh: tokenizer, HuBERT targets, pre-training,
#       CTC or transducer fine-tuning (--finetune_type), n-gram (+ Transformer) LM, decoding, RESULTS.md
#   8  SUPERB-style probing of frozen upstreams (random-init baselines + the pre-trained
#      checkpoints of every pretrain_model run so far) -> exp/probe/results.md, layer_weights.png
#   9  mini reproduction table: CTC fine-tuning on a small labeled budget from scratch and
#      from each pre-trained upstream (run stage 3 once per --pretrain_model first), equal
#      updates, several seeds -> MINI_REPRO.md / .png (mean ± std over seeds)
#
# Usage: ./run.sh --fsdd_dir /path/to/fsdd/recordings | --kaldi_dir DIR [--stage N] [--stop_stage M] [--work_dir DIR]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=0               # first stage to run
stop_stage=100        # last stage to run
fsdd_dir=../../../../shared/data/fsdd/recordings  # FSDD recordings: <digit>_<speaker>_<index>.wav
kaldi_dir=""          # stage 0 from Kaldi data dirs instead: <kaldi_dir>/{train,test}/wav.scp, text, ...
work_dir=.            # data/ and exp/ are written here
pretrain_model=hubert # conf/pretrain_<model>.yaml
token_type=char       # conf/tokenizer_<token_type>.yaml: char or bpe (SentencePiece)
finetune_type=ctc     # stage 4: ctc or transducer (conf/finetune_<type>.yaml; stage 6 decoders follow)
init_from=""          # stage 3: continue pre-training from this checkpoint (HF dir, fairseq/torchaudio .pt; docs/reproduce.md)
hubert_iter=1         # HuBERT targets: 1 = MFCC k-means; 2 = k-means on a layer of exp/pretrain_<model>
nj=2                  # parallel jobs for feature/label dumping (stage 2; cmd.sh says where they run)
conf=conf             # configuration directory (a copy with other settings works too)
probe_upstreams=""    # stage 8: YAML entries replacing conf/probe.yaml's upstreams ("" = keep them)
mini_upstreams="scratch wav2vec2 hubert wavlm"  # scratch = hubert_tiny from random init
mini_seeds="1 2 3"    # stage 9: fine-tuning seeds per upstream
mini_budget=300       # seconds of labeled audio for stage 9 (5 min; drawn once, seed 0)
. utils/parse_options.sh

conf=$(cd "$conf" && pwd)
mkdir -p "$work_dir"
work_dir=$(cd "$work_dir" && pwd)
[ -n "$kaldi_dir" ] || fsdd_dir=$(cd "$fsdd_dir" && pwd) || { echo "FSDD not found: pass --fsdd_dir" >&2; exit 1; }
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }  # logs; each stage skips itself

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ -n "$kaldi_dir" ]; then
  utils/prepare_kaldi.sh "$conf/data.yaml" "$kaldi_dir" "$work_dir/data" train test
elif [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "Stage 0: manifests and validation reports -> $work_dir/data/{train,test}"
  run_stage "$work_dir/data/log/prepare_data.log" \
    python -m speechssl2.bin.prepare_data --config "$conf/data.yaml" \
      --set corpus.corpus_dir="$fsdd_dir" --set output_dir="$work_dir/data"
fi

if [ "$stop_stage" -ge 1 ]; then
  ./ssl.sh --init_from "$init_from" --stage "$(( stage > 1 ? stage : 1 ))" --stop_stage "$stop_stage" --work_dir "$work_dir" \
    --conf "$conf" --pretrain_model "$pretrain_model" --token_type "$token_type" --finetune_type "$finetune_type" --hubert_iter "$hubert_iter" --nj "$nj" --pretrain_set train --train_set train --dev_set test --test_sets test --labeled_sets "train test" --pnmi true \
    --decode_checkpoint checkpoint_last.pt  # FSDD has no dev split: test only monitors
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  # Appended to the upstream list: per pre-training run, checkpoint_<N>.pt in update order (how the
  # representations evolve), then checkpoint_last.pt unless it is a copy of the newest numbered one.
  ckpts=()
  for dir in "$work_dir"/exp/pretrain_*/; do
    [ -d "$dir" ] || continue
    mapfile -t numbered < <(find "$dir" -maxdepth 1 -regex '.*/checkpoint_[0-9]+\.pt' | sort -V)
    ckpts+=("${numbered[@]}")
    last=$dir/checkpoint_last.pt
    if [ -f "$last" ] && { [ ${#numbered[@]} = 0 ] || ! cmp -s "$last" "${numbered[-1]}"; }; then ckpts+=("$last"); fi
  done
  extra=""
  for ckpt in "${ckpts[@]}"; do extra+="${extra:+, }'$ckpt'"; done
  ups=()
  [ -n "$probe_upstreams" ] && ups=(--set "upstreams=[$probe_upstreams]")
  echo "Stage 8: probing ${probe_upstreams:-the upstreams of conf/probe.yaml} + ${#ckpts[@]} checkpoint(s) -> $work_dir/exp/probe"
  run_stage "$work_dir/exp/probe/log/probe.log" \
    python -m speechssl2.bin.probe --config "$conf/probe.yaml" --set data_dir="$work_dir/data" \
      --set output_dir="$work_dir/exp/probe" "${ups[@]}" --set "extra_upstreams=[$extra]"
fi

if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then
  data=$work_dir/data exp=$work_dir/exp
  echo "Stage 9: mini reproduction table ($mini_budget s labeled; upstreams: $mini_upstreams; seeds: $mini_seeds)"
  run_stage "$data/train_mini/log/subset_cuts.log" \
    python -m speechssl2.bin.subset_cuts --set cuts="$data/train/cuts_char.jsonl.gz" \
      --set output="$data/train_mini/cuts.jsonl.gz" --set seconds="$mini_budget" --set seed=0
  for up in $mini_upstreams; do
    src=$exp/pretrain_$up/checkpoint_last.pt freeze=()
    if [ "$up" = scratch ]; then
      src="{name: hubert_tiny}" freeze=(--set model.encoder.freeze_updates=0)  # nothing to protect
    elif [ ! -f "$src" ]; then
      echo "Stage 9: no $src: run ./run.sh --stage 3 --stop_stage 3 --pretrain_model $up first; skipping $up"
      continue
    fi
    for seed in $mini_seeds; do
      d=$exp/mini/${up}_seed$seed
      run_stage "$d/log/finetune.log" \
        $train_cmd -- python -m speechssl2.bin.finetune --config "$conf/finetune_mini.yaml" \
          --set model.encoder.upstream="$src" "${freeze[@]}" --set model.tokenizer="$data/lang_char" \
          --set data.train="$data/train_mini/cuts.jsonl.gz" --set data.valid="$data/test/cuts_char.jsonl.gz" \
          --set trainer.seed="$seed" --set exp_dir="$d"
      for dec in greedy beam_lm; do
        [ "$dec" = beam_lm ] && [ ! -f "$exp/lm_word3_char/lm.bin" ] && continue  # stage 5 not run / no KenLM
        run_stage "$d/decode_${dec}_test/log/decode.log" \
          python -m speechssl2.bin.decode --config "$conf/decode_$dec.yaml" --set checkpoint="$d/checkpoint_last.pt" \
            --set cuts="$data/test/cuts_char.jsonl.gz" --set out_dir="$d/decode_${dec}_test" --set lm_dir="$exp/lm_word3_char" \
            --set meta.upstream="$up" --set meta.finetune_set="train_mini (${mini_budget}s)" --set meta.test_set=test \
            --set meta.seed="$seed" --set meta.units=char
      done
    done
  done
  python -m speechssl2.bin.seed_table --set exp_dir="$exp/mini" --set output="$work_dir/MINI_REPRO.md" \
    --set plot="$work_dir/MINI_REPRO.png" --set title="FSDD mini reproduction, upstreams at a ${mini_budget} s labeled budget" \
    --set "notes=CTC fine-tuning with conf/finetune_mini.yaml (equal updates for every upstream), decoding of the FSDD test set greedily and with the stage-5 word 3-gram over the digit lexicon; chance is 90 % WER."
  cat "$work_dir/MINI_REPRO.md"
fi
