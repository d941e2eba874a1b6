#!/usr/bin/env bash
# One lease of a GPU machine: the release pretrainings side by side (two data folders x three designs, each
# `modeling/pretrain_release_gpu.py` in bf16 for MINUTES) and the CUDA mixed-precision check; every run's folder
# comes back as a tarball under OUT, to be scored on the CPU by `gexbert benchmark --pretrained_model`.
#   bash modeling/gpu_release_runs.sh DATA_ROOT OUT MINUTES
set -u
data=$1 out=$2 minutes=$3
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
runs=/tmp/gpu_runs
mkdir -p "$runs" "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, transformers, accelerate; print(torch.__version__, transformers.__version__, accelerate.__version__)"

launch() {  # name folder options...
  local name=$1 folder=$2; shift 2
  python3 modeling/pretrain_release_gpu.py --data_dir "$data/$folder" --output "$runs/$name" --minutes "$minutes" \
    "$@" >"$runs/$name.log" 2>&1 &
}
range=(--mask_fraction 0.15 --max_mask_fraction 0.95)
for folder in tcga31_mirna_log2rpm tcga13_cbioportal_zscore; do
  short=${folder%%_*}
  launch "${short}_w128_range" "$folder" --hidden_size 128 --num_hidden_layers 4 "${range[@]}"
  launch "${short}_w128_fixed50" "$folder" --hidden_size 128 --num_hidden_layers 4 --mask_fraction 0.5
  launch "${short}_w192_range" "$folder" --hidden_size 192 --num_hidden_layers 4 --num_attention_heads 6 \
    --learning_rate 7e-4 "${range[@]}"
done
python3 modeling/cuda_precision_check.py --data_dir "$data/tcga31_mirna_log2rpm" --output "$runs/precision.json" \
  >"$runs/precision.log" 2>&1 &
sleep 90; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
wait
for log in "$runs"/*.log; do echo "== $log"; grep -v "Writing model" "$log" | tail -4; done
cp "$runs/precision.json" "$out/" 2>/dev/null
for folder in "$runs"/*/; do
  name=$(basename "$folder")
  tar czf "$out/$name.tar.gz" --exclude='*.py' -C "$runs" "$name" "$name.log"
done
ls -la "$out"
