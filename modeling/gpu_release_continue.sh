#!/usr/bin/env bash
# Second stage of the release pretraining on a GPU lease: each chosen first-stage model continues for MINUTES in
# bf16 with a fresh, lower cosine schedule and another seed (new data order and masks), the two side by side on
# the GPU with the CUDA mixed-precision check (fp32 / bf16 / fp16, each in its own process).
#   bash modeling/gpu_release_continue.sh DATA_ROOT STAGE1_ROOT OUT MINUTES
set -u
data=$1 stage1=$2 out=$3 minutes=$4
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
runs=/tmp/gpu_runs2
mkdir -p "$runs" "$out"
for folder in tcga31_mirna_log2rpm tcga13_cbioportal_zscore; do
  short=${folder%%_*}
  python3 modeling/pretrain_release_gpu.py --data_dir "$data/$folder" --output "$runs/${short}_stage2" \
    --init_from "$stage1/${short}_w128_range/model" --minutes "$minutes" --learning_rate 5e-4 --warmup_ratio 0.02 \
    --seed 1 --mask_fraction 0.15 --max_mask_fraction 0.95 >"$runs/${short}_stage2.log" 2>&1 &
done
python3 modeling/cuda_precision_check.py --data_dir "$data/tcga31_mirna_log2rpm" --output "$out/precision.json" \
  --steps 60 >"$runs/precision.log" 2>&1 &
wait
for log in "$runs"/*.log; do echo "== $log"; grep -v "Writing model" "$log" | tail -3; done
for folder in "$runs"/*/; do
  name=$(basename "$folder")
  tar czf "$out/$name.tar.gz" --exclude='*.py' -C "$runs" "$name" "$name.log"
done
ls -la "$out"
