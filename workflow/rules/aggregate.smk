rule aggregate:
    input:
        lambda wildcards: experiment_runs(wildcards.experiment),
    output:
        "results/aggregate/{experiment}.parquet",
    log:
        "logs/aggregate/{experiment}.log",
    wildcard_constraints:
        experiment=r"[^/]+",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity aggregate --inputs {input:q} --out {output} > {log} 2>&1"


rule reproduction:
    input:
        runs=all_runs(),
        claims=CLAIMS_FILE,
    output:
        csv="results/reproduction.csv",
        md=report(
            "results/reproduction.md",
            caption="../report/reproduction.rst",
            category="Reproduction",
        ),
    params:
        scale=SCALE,
        deviations=reproduction_deviations(),
    log:
        "logs/reproduction.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity reproduce --inputs {input.runs:q} --claims {input.claims} --out-csv {output.csv}"
        " --out-md {output.md} --scale {params.scale} > {log} 2>&1"
