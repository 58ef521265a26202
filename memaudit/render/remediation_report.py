"""The before/after remediation report (HTML and PDF) from remediation.json and the two scan results."""

from __future__ import annotations

from pathlib import Path

from memaudit.paths import TEMPLATES_DIR
from memaudit.render.files import write_atomic
from memaudit.render.html import _fmt
from memaudit.render.pdf import render_pdf
from memaudit.render.remediation_plots import mask_heatmap, pareto_plot


def render_remediation_html(record: dict, blocks: list[str], before_summary: str, after_summary: str) -> str:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    front = [t["mask"] for t in record["trials"] if t["pareto"] and t["mask"]]
    return environment.get_template("remediation.html.j2").render(
        record=record,
        fmt=_fmt,
        precise=lambda value: "-" if value is None else f"{value:.7g}",
        pareto=pareto_plot(record["trials"], record["chosen_trial"]),
        heatmap=mask_heatmap(blocks, record["mask"], front),
        before_summary=before_summary,
        after_summary=after_summary,
    )


def write_remediation_report(
    record: dict, blocks: list[str], before_summary: str, after_summary: str, out: Path
) -> list[Path]:
    html = render_remediation_html(record, blocks, before_summary, after_summary)
    return [
        write_atomic(Path(out) / "remediation.html", html),
        write_atomic(Path(out) / "remediation.pdf", render_pdf(html)),
    ]
