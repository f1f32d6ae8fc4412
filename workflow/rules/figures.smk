# One paper figure: results/figures/<paper>/<name>.{pdf,png}, drawn by figures/<paper>/<name>.py from its
# experiments' aggregates. The `figure` wildcard is "<paper>/<name>" (a name without a paper folder is let through,
# so that it is reported as an unknown figure with the valid names rather than as a missing rule).
rule figure:
    input:
        aggregates=figure_inputs,
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
        figure=r"\w+(?:/\w+)?",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity figure {wildcards.figure} --inputs {input.aggregates:q} --out-pdf {output.pdf}"
        " --out-png {output.png} --scale {params.scale} > {log} 2>&1"


rule stability_gap_tables:
    input:
        unpack(table_inputs("ngm2025")),
    output:
        table1_csv="results/tables/ngm2025/table1.csv",
        table1_md=report(
            "results/tables/ngm2025/table1.md",
            caption="../report/ngm_tables.rst",
            category="Tables",
            subcategory=PAPER_TITLES["ngm2025"],
        ),
        table1_tex="results/tables/ngm2025/table1.tex",
        table2_csv="results/tables/ngm2025/table2.csv",
        table2_md=report(
            "results/tables/ngm2025/table2.md",
            caption="../report/ngm_tables.rst",
            category="Tables",
            subcategory=PAPER_TITLES["ngm2025"],
        ),
        table2_tex="results/tables/ngm2025/table2.tex",
    params:
        scale=SCALE,
        out_dir=table_folder,
    log:
        "logs/tables/ngm2025.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity tables --paper ngm2025 --inputs {input.runs:q} --claims {input.claims} --out-dir {params.out_dir}"
        " --scale {params.scale} > {log} 2>&1"


rule adalin_table:
    input:
        unpack(table_inputs("adalin2025")),
    output:
        csv="results/tables/adalin2025/table.csv",
        md=report(
            "results/tables/adalin2025/table.md",
            caption="../report/adalin_table.rst",
            category="Tables",
            subcategory=PAPER_TITLES["adalin2025"],
        ),
        tex="results/tables/adalin2025/table.tex",
    params:
        scale=SCALE,
        out_dir=table_folder,
    log:
        "logs/tables/adalin2025.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity tables --paper adalin2025 --inputs {input.runs:q} --out-dir {params.out_dir}"
        " --scale {params.scale} > {log} 2>&1"
