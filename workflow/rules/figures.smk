rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf="results/figures/{figure}.pdf",
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory=figure_paper,
        ),
    params:
        scale=SCALE,
        seeds=figure_seeds,
        deviations=figure_deviations,
        description=figure_description,
    log:
        "logs/figures/{figure}.log",
    wildcard_constraints:
        figure=r"[^/]+",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity figure {wildcards.figure} --inputs {input.aggregates:q} --runs {input.runs:q}"
        " --claims {input.claims} --out-pdf {output.pdf} --out-png {output.png} --scale {params.scale} > {log} 2>&1"
