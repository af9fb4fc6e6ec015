#!/usr/bin/env bash
# Shared SSL pipeline stages, called by each corpus's run.sh after its data stage.
# Every stage is one `python -m speechssl2.bin.<x>` call that skips itself when its config,
# the files it reads and the files it wrote are unchanged (speechssl2/stage.py), and
# resumes when killed; utils/run_stage.sh only keeps its log (<output dir>/log/*.log).
#
# Stages:
#   1  tokenizer (conf/tokenizer_<token_type>.yaml: characters, or SentencePiece BPE) on the
#      transcripts of text_set; every labeled set validated against it: what passes is
#      data/<set>/cuts_<token_type>.jsonl.gz (stages 4-6 read it), report_<token_type>.txt says why
#   2  HuBERT targets on the pre-training set: features -> k-means -> labels on cuts (+PNMI);
#      --hubert_iter 1: MFCC (conf/targets_iter1.yaml); k > 1: a layer of targets_from, by default
#      the previous iteration's exp/pretrain_<model>[_iter<k-1>]/checkpoint_last.pt
#      (conf/targets_iter<k>.yaml); 0: no targets. Features and labels are dumped in nj jobs
#      (utils/run_jobs.sh: cmd.sh's launcher), one shard each
#   3  SSL pre-training (conf/pretrain_<model>.yaml) on those targets (hubert_iter 0: on the
#      plain cuts) -> exp/pretrain_<pt_name>; --init_from continues a released or earlier model
#   4  fine-tuning of the pre-trained upstream, CTC or transducer (--finetune_type; conf/<ft_conf>.yaml,
#      by default conf/finetune_<finetune_type>.yaml) on train_set -> exp/finetune_<pt_name>_<ft_name>
#   5  word n-gram LM with KenLM on text_set -> lm_dir (skipped with a message when KenLM is not built);
#      with conf/lm_transformer.yaml also a Transformer LM on text_set -> exp/lm_transformer_<token_type>
#   6  decoding of the test sets with each of decoders (conf/decode_<decoder>.yaml); a decoder whose
#      config says ngram: true needs the n-gram of lm_dir, one with fusion_weight or rescore_weight
#      the Transformer LM (tlm), and each is skipped while what it needs is missing
#   7  RESULTS.md: every scored experiment in one table
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1                     # first stage to run
stop_stage=100              # last stage to run
work_dir=.                  # data/ and exp/ are read and written here
conf=conf                   # configuration directory
pretrain_set=pool           # unlabeled set for pre-training
train_set=en_train          # labeled set for fine-tuning
text_set=""                 # labeled set whose transcripts train the tokenizer and the n-gram LM ("" = train_set)
dev_set=en_dev              # validation set of fine-tuning (picks checkpoint_best.pt)
test_sets=en_test           # sets decoded in stage 6
labeled_sets="en_train en_dev en_test"  # sets validated against the tokenizer in stage 1
pretrain_model=hubert       # conf/pretrain_<model>.yaml
pt_name=""                  # pre-training run exp/pretrain_<pt_name>, the upstream in RESULTS.md ("" = <model>, <model>_iter<k> when k > 1)
token_type=char             # conf/tokenizer_<token_type>.yaml: char or bpe
hubert_iter=1               # HuBERT target iteration (1: MFCC; 2: layer features of the iteration-1 model; 0: no targets)
targets_from=""             # hubert_iter > 1: checkpoint whose layer is clustered ("" = the previous iteration's model)
init_from=""                # stage 3: continue pre-training from this checkpoint (HF dir, fairseq/torchaudio/speechssl2 .pt; "" = random init)
km_centroids=""             # stage 2: K x D .npy of the k-means an init_from HuBERT was trained on ("" = train k-means)
nj=2                        # parallel jobs for feature/label dumping (one shard each)
pnmi=false                  # PNMI report of the targets (needs transcripts on pretrain_set)
finetune_type=ctc           # stage 4 model and stage 6 default decoders: ctc or transducer
ft_conf=""                  # fine-tuning config conf/<ft_conf>.yaml ("" = finetune_<finetune_type>)
ft_name=""                  # fine-tuning run exp/finetune_<pt_name>_<ft_name> ("" = <finetune_type>_<token_type>)
ft_label=""                 # the fine-tune set as RESULTS.md names it ("" = train_set)
lm_dir=""                   # n-gram LM of stages 5 and 6 ("" = exp/lm_word3_<token_type>)
decoders=""                 # stage 6: conf/decode_<decoder>.yaml for each ("" = greedy beam_lm for ctc; transducer_greedy transducer_beam transducer_beam_tlm transducer_beam_rescore for transducer)
rescore_lm=""               # stage 6: Transformer LM checkpoint every decoder rescores its n-best with ("" = none)
tlm=""                      # stage 6: Transformer LM of the decoders with fusion_weight / rescore_weight ("" = exp/lm_transformer_<token_type>/checkpoint_last.pt)
decode_checkpoint=checkpoint_best.pt  # best on dev_set; use checkpoint_last.pt when dev_set is a test set
. utils/parse_options.sh

data=$work_dir/data
exp=$work_dir/exp
# Each stage decides itself whether it has work to do (speechssl2/stage.py); this only logs.
run_stage() { local log=$1; shift; utils/run_stage.sh "$log" -- "$@"; }
lang=$data/lang_$token_type
labeled() { echo "$data/$1/cuts_$token_type.jsonl.gz"; }  # a labeled set validated against $lang (stage 1)
text_set=${text_set:-$train_set}
if [ -z "$pt_name" ]; then  # what the experiment directories and RESULTS.md call the upstream
  pt_name=$pretrain_model
  [ "$hubert_iter" -gt 1 ] && pt_name=${pretrain_model}_iter$hubert_iter
fi
pt_exp=$exp/pretrain_$pt_name
case $finetune_type in
  ctc) default_decoders="greedy beam_lm" ;;
  transducer) default_decoders="transducer_greedy transducer_beam transducer_beam_tlm transducer_beam_rescore" ;;
  *) echo "ssl.sh: --finetune_type must be ctc or transducer, got '$finetune_type'" >&2; exit 2 ;;
esac
ft_conf=${ft_conf:-finetune_$finetune_type}
decoders=${decoders:-$default_decoders}
ft_exp=$exp/finetune_${pt_name}_${ft_name:-${finetune_type}_$token_type}
lm_dir=${lm_dir:-$exp/lm_word3_$token_type}  # its lexicon spells words in the tokenizer's units
tlm_exp=$exp/lm_transformer_$token_type
tlm=${tlm:-$tlm_exp/checkpoint_last.pt}
has_key() { grep -Eq "^$1:" "$conf/decode_$2.yaml"; }  # does decoder $2's config set key $1?
targets="$conf/targets_iter$hubert_iter.yaml"
tgt_log=$exp/hubert_targets/log
tgt=(--config "$targets" --set cuts="$data/$pretrain_set/cuts.jsonl.gz" --set exp_dir="$exp/hubert_targets"
     --set shard.nshard="$nj")
if [ "$hubert_iter" -gt 1 ]; then  # features of the previous iteration's model of the same objective
  if [ -z "$targets_from" ]; then
    targets_from=$exp/pretrain_$pretrain_model/checkpoint_last.pt
    [ "$hubert_iter" -gt 2 ] && targets_from=$exp/pretrain_${pretrain_model}_iter$((hubert_iter - 1))/checkpoint_last.pt
  fi
  tgt+=(--set features.checkpoint="$targets_from")
fi
[ -n "$km_centroids" ] && tgt+=(--set kmeans.centroids="$km_centroids")
pt=(--config "$conf/pretrain_$pretrain_model.yaml")
[ -n "$init_from" ] && pt+=(--set init_from="$init_from")  # continued pre-training (docs/reproduce.md)
pt_cuts=$data/$pretrain_set/cuts.jsonl.gz
[ "$hubert_iter" -gt 0 ] && pt_cuts=$data/$pretrain_set/cuts_hubert_iter$hubert_iter.jsonl.gz

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "Stage 1: $token_type tokenizer -> $lang; labeled sets validated against it -> data/<set>/cuts_$token_type.jsonl.gz"
  run_stage "$lang/log/train_tokenizer.log" \
    python -m speechssl2.bin.train_tokenizer --config "$conf/tokenizer_$token_type.yaml" \
      --set "texts=[$data/$text_set/cuts.jsonl.gz]" --set out_dir="$lang"
  for s in $labeled_sets; do
    run_stage "$data/$s/log/validate_$token_type.log" \
      python -m speechssl2.bin.validate_data --set cuts="$data/$s/cuts.jsonl.gz" \
        --set chars_file="$lang/chars.txt" --set report="$data/$s/report_$token_type.txt" \
        --set output="$(labeled "$s")"
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ "$hubert_iter" = 0 ]; then
  echo "Stage 2: hubert_iter 0: $pretrain_model needs no cluster targets"
elif [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "Stage 2: HuBERT iteration-$hubert_iter targets ($targets) for $pretrain_set; $nj jobs, logs $tgt_log/*_iter$hubert_iter.<rank>.log"
  utils/run_jobs.sh JOB=0:$((nj - 1)) "$tgt_log/dump_features_iter$hubert_iter.JOB.log" -- \
    python -m speechssl2.bin.dump_features "${tgt[@]}" --set shard.rank=JOB
  run_stage "$tgt_log/learn_kmeans_iter$hubert_iter.log" python -m speechssl2.bin.learn_kmeans "${tgt[@]}"
  utils/run_jobs.sh JOB=0:$((nj - 1)) "$tgt_log/dump_labels_iter$hubert_iter.JOB.log" -- \
    python -m speechssl2.bin.dump_labels "${tgt[@]}" --set shard.rank=JOB
  # Every shard is labelled now: this run labels nothing and writes the merged manifest.
  run_stage "$tgt_log/dump_labels_iter$hubert_iter.log" python -m speechssl2.bin.dump_labels "${tgt[@]}"
  if [ "$pnmi" = true ]; then
    run_stage "$tgt_log/pnmi_iter$hubert_iter.log" python -m speechssl2.bin.pnmi "${tgt[@]}"
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "Stage 3: $pretrain_model pre-training on $pt_cuts -> $pt_exp"
  run_stage "$pt_exp/log/train.log" \
    $train_cmd -- python -m speechssl2.bin.train "${pt[@]}" --set data.train="$pt_cuts" --set exp_dir="$pt_exp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "Stage 4: $finetune_type fine-tuning ($conf/$ft_conf.yaml) on $train_set -> $ft_exp"
  run_stage "$ft_exp/log/finetune.log" \
    $train_cmd -- python -m speechssl2.bin.finetune --config "$conf/$ft_conf.yaml" \
      --set model.encoder.upstream="$pt_exp/checkpoint_last.pt" --set model.tokenizer="$lang" \
      --set data.train="$(labeled "$train_set")" --set data.valid="$(labeled "$dev_set")" \
      --set exp_dir="$ft_exp"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "Stage 5: word 3-gram LM -> $lm_dir"
  run_stage "$lm_dir/log/train_ngram.log" \
    python -m speechssl2.bin.train_ngram --config "$conf/ngram.yaml" \
      --set "texts=[$(labeled "$text_set")]" --set out_dir="$lm_dir" --set tokenizer="$lang"
  if [ -f "$conf/lm_transformer.yaml" ]; then
    echo "Stage 5: Transformer LM ($conf/lm_transformer.yaml) -> $tlm_exp"
    run_stage "$tlm_exp/log/train_lm.log" \
      $train_cmd -- python -m speechssl2.bin.train_lm --config "$conf/lm_transformer.yaml" \
        --set text.train="$(labeled "$text_set")" --set text.valid="$(labeled "$dev_set")" \
        --set model.tokenizer="$lang" --set exp_dir="$tlm_exp"
  fi
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  rescore=()
  [ -n "$rescore_lm" ] && rescore=(--set rescore_lm="$rescore_lm")
  for test in $test_sets; do
    for dec in $decoders; do
      if grep -Eq '^(ngram|rescore_ngram): *true' "$conf/decode_$dec.yaml" && [ ! -f "$lm_dir/lm.bin" ]; then
        echo "Stage 6: no n-gram LM in $lm_dir: skipping $dec"; continue
      fi
      lms=("${rescore[@]}")
      has_key fusion_weight "$dec" && lms+=(--set fusion_lm="$tlm")
      if has_key rescore_weight "$dec" && ! grep -Eq '^rescore_ngram: *true' "$conf/decode_$dec.yaml" && [ -z "$rescore_lm" ]; then
        lms+=(--set rescore_lm="$tlm")  # n-best rescoring with the Transformer LM (rescore_ngram: with the n-gram)
      fi
      if [ ${#lms[@]} -gt ${#rescore[@]} ] && [ ! -f "$tlm" ]; then
        echo "Stage 6: no Transformer LM $tlm (stage 5 with conf/lm_transformer.yaml, or --tlm): skipping $dec"; continue
      fi
      out=$ft_exp/decode_${dec}_$test
      echo "Stage 6: decode $test with $dec -> $out"
      run_stage "$out/log/decode.log" \
        python -m speechssl2.bin.decode --config "$conf/decode_$dec.yaml" \
          --set checkpoint="$ft_exp/$decode_checkpoint" --set cuts="$(labeled "$test")" \
          --set out_dir="$out" --set lm_dir="$lm_dir" "${lms[@]}" \
          --set meta.upstream="$pt_name" --set meta.finetune_set="${ft_label:-$train_set}" --set meta.test_set="$test" \
          --set meta.units="$token_type"
    done
  done
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  echo "Stage 7: results table -> $work_dir/RESULTS.md"
  python -m speechssl2.bin.results --set exp_dir="$exp" --set output="$work_dir/RESULTS.md" \
    --set plot="$work_dir/RESULTS.png"
  cat "$work_dir/RESULTS.md"
fi
