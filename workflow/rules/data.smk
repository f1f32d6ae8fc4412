rule mnist:
    output:
        MNIST_FILE,
    params:
        source=mnist_source_flag(),
    log:
        "logs/data/mnist.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "plasticity data mnist --out {output} {params.source} > {log} 2>&1"
