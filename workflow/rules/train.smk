# A job also keeps its checkpoint, results/runs/{experiment}/{run}/seeds{block}.ckpt, while it runs (see
# plasticity/engine/checkpoint.py). It is deliberately not an output: Snakemake then neither deletes it when the job fails
# nor takes it for a result, and the rerun resumes from it; the job deletes it once its outputs are written.
rule train:
    input:
        unpack(train_inputs),
    output:
        parquet="results/runs/{experiment}/{run}/seeds{block}.parquet",
        provenance="results/runs/{experiment}/{run}/seeds{block}.json",
    params:
        spec=train_spec,
        data=train_data_flag,
        same_as=train_same_as_flag,
        checkpoint=train_checkpoint_flags,
    log:
        "logs/train/{experiment}/{run}/seeds{block}.log",
    wildcard_constraints:
        experiment=r"[^/]+",
        run=r"[^/]+",
        block=r"\d+-\d+",
    threads: 1
    # Longest first (estimated from the job's size): a long job started last would finish alone.
    priority: train_priority
    resources:
        runtime=train_runtime,
        mem_mb=train_mem_mb,
        gpu=train_gpu,
        gpu_model=train_gpu_model,
        gres=train_gres,
    group:
        train_group
    conda:
        "../../envs/train.yaml"
    shell:
        # A job that asks for no GPU runs on the CPU, even where one is visible (device: auto).
        "[ {resources.gpu} -gt 0 ] || [ -n \"{resources.gres}\" ] || export CUDA_VISIBLE_DEVICES=; "
        "OMP_NUM_THREADS={threads} plasticity train --spec {params.spec:q} --out {output.parquet} {params.data}"
        " {params.checkpoint} {params.same_as} > {log} 2>&1"
