rule mnist:
    output:
        npz=MNIST_FILE,
        provenance=f"{MNIST_FILE}.source.json",
    params:
        source=mnist_source_flag(),
    log:
        "logs/data/mnist.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "plasticity data mnist --out {output.npz} {params.source} > {log} 2>&1"
