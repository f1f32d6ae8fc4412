# One rule per data set (mnist, cifar10, cifar100, imagenet32, mini_imagenet), each materialising it once under
# resources/ (an .npz and its provenance .source.json) from the source the scale file's `data:` block names
# (plasticity.workflow.Workflow.data_flags); the logic is in plasticity.data.
for _dataset in DATA_FILES:

    rule:
        name:
            _dataset
        output:
            npz=DATA_FILES[_dataset],
            provenance=f"{DATA_FILES[_dataset]}.source.json",
        params:
            dataset=_dataset,   # not in the shell text: an f-string there would read the loop's last value
            source=data_flags(_dataset),
        log:
            f"logs/data/{_dataset}.log",
        resources:
            # A resource, not a param: which experiments read a data set changes with the scale, and a changed
            # param would rerun the data job and every training job after it.
            needed_by=data_needed_by(_dataset),
        conda:
            "../../envs/data.yaml"
        shell:
            "plasticity data {params.dataset} --out {output.npz} {params.source} --needed-by={resources.needed_by}"
            " > {log} 2>&1"
