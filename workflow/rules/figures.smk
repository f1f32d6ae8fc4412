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


rule stability_gap_tables:
    input:
        unpack(table_inputs("ngm2025")),
    output:
        table1_csv="results/tables/ngm_table1.csv",
        table1_md=report(
            "results/tables/ngm_table1.md",
            caption="../report/ngm_tables.rst",
            category="Tables",
            subcategory=PAPER_TITLES["ngm2025"],
        ),
        table1_tex="results/tables/ngm_table1.tex",
        table2_csv="results/tables/ngm_table2.csv",
        table2_md=report(
            "results/tables/ngm_table2.md",
            caption="../report/ngm_tables.rst",
            category="Tables",
            subcategory=PAPER_TITLES["ngm2025"],
        ),
        table2_tex="results/tables/ngm_table2.tex",
    params:
        scale=SCALE,
    log:
        "logs/tables/ngm.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity tables --inputs {input.runs:q} --claims {input.claims} --out-dir results/tables"
        " --scale {params.scale} > {log} 2>&1"


rule adalin_table:
    input:
        unpack(table_inputs("adalin2025")),
    output:
        csv="results/tables/adalin_table.csv",
        md=report(
            "results/tables/adalin_table.md",
            caption="../report/adalin_table.rst",
            category="Tables",
            subcategory=PAPER_TITLES["adalin2025"],
        ),
        tex="results/tables/adalin_table.tex",
    params:
        scale=SCALE,
    log:
        "logs/tables/adalin.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "plasticity tables --paper adalin2025 --inputs {input.runs:q} --out-dir results/tables"
        " --scale {params.scale} > {log} 2>&1"
