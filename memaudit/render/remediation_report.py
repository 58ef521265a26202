"""The before/after remediation report (HTML and PDF): a view of a RemediationResult and nothing else."""

from __future__ import annotations

from memaudit.paths import TEMPLATES_DIR
from memaudit.render.html import _fmt
from memaudit.render.remediation_plots import mask_heatmap, pareto_plot
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import RuleOutcome


def _rule_rows(result: RemediationResult) -> list[tuple[str, RuleOutcome, RuleOutcome | None]]:
    after = {rule.id: rule for rule in result.after.rules}
    return [(rule.id, rule, after.get(rule.id)) for rule in result.before.rules]


def render_remediation_html(result: RemediationResult) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
    )
    front = [t.mask for t in result.trials if t.pareto and t.mask]
    return environment.get_template("remediation.html.j2").render(
        result=result,
        rules=_rule_rows(result),
        fmt=_fmt,
        precise=lambda value: "-" if value is None else f"{value:.7g}",
        pareto=pareto_plot(result.trials, result.chosen_trial),
        heatmap=mask_heatmap(result.blocks, result.mask, front),
    )



