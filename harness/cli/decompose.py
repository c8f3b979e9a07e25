"""``uisbench decompose MODEL --out DIR``: decompose a pool model and save it with its report."""

from __future__ import annotations

from pathlib import Path

import click

from uisbench.cli.options import parse_task_args
from uisbench.errors import UisbenchError


def _levels(value: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(v) for v in value.split(",") if v)
    except ValueError:
        raise UisbenchError(f"bad --levels {value!r} (expected comma-separated numbers)") from None
    if not levels or not all(0 < q < 1 for q in levels):
        raise UisbenchError(f"--levels must be in (0, 1), got {value!r}")
    return levels


@click.command(short_help="Split a model into blocks of the weights training confirmed.")
@click.argument("model")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--pool", default="cpu-tiny", show_default=True, help="Pool name or file.")
@click.option(
    "--init",
    "init_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Checkpoint of the initial weights (null: unchanged); default: the config's init "
    "distribution N(0, initializer_range²).",
)
@click.option("--sigma", type=float, default=None, help="Override the init distribution's σ.")
@click.option("--levels", default=None, help="BH levels q, comma-separated (default 1e-1..1e-12).")
@click.option(
    "--kl-tol",
    type=float,
    default=0.01,
    show_default=True,
    help="Mean token KL(dense ‖ decomposed) allowed on the calibration prompts (nats).",
)
@click.option("--logit-tol", type=float, default=None, help="Also bound max |Δlogit|.")
@click.option(
    "--force-level",
    type=float,
    default=None,
    help="Keep this swept level whatever the rule says (to measure what removal costs).",
)
@click.option("--task", default="arith-smoke", show_default=True, help="Calibration prompts.")
@click.option("--task-arg", "task_args", multiple=True, help="KEY=VALUE task option; repeatable.")
@click.option("--split", default="train", show_default=True, help="Split of the prompts.")
@click.option("--prompts", type=int, default=16, show_default=True, help="Calibration prompts.")
def decompose(
    model: str,
    out: Path,
    pool: str,
    init_dir: Path | None,
    sigma: float | None,
    levels: str | None,
    kl_tol: float,
    logit_tol: float | None,
    task: str,
    task_args: tuple[str, ...],
    split: str,
    prompts: int,
    force_level: float | None,
) -> None:
    """Remove the weights training never confirmed, split every linear map into independent
    blocks, and save the block model, its report and a pool file for recording it."""
    from uisbench.decompose import DEFAULT_LEVELS, Tolerance
    from uisbench.decompose.variant import decompose_pool_model, pool_model
    from uisbench.strategies.decomposed import variant_name
    from uisbench.tasks import load_task

    spec = pool_model(pool, model)
    report = decompose_pool_model(
        spec,
        out,
        variant_name(spec.name),
        task=load_task(task, **parse_task_args(task_args)),
        split=split,
        n_prompts=prompts,
        init_dir=init_dir,
        sigma=sigma,
        levels=_levels(levels) if levels else DEFAULT_LEVELS,
        tolerance=Tolerance(kl=kl_tol, max_logit=logit_tol),
        progress=lambda msg: click.echo(msg, err=True),
        force=force_level,
    )
    click.echo(summary(report, out))


def summary(report: dict, out: Path) -> str:
    lines = [f"{'q':>8} {'removed':>8} {'blocks':>7} {'executed':>9} {'KL':>9}  stable within"]
    for lv in report["sweep"]:
        lines.append(
            f"{lv['q']:>8.0e} {lv['removed_fraction']:>8.1%} {lv['blocks']:>7} "
            f"{lv['executed_fraction']:>9.1%} {lv['mean_kl']:>9.3g}  {lv['stable']!s:>6} "
            f"{lv['within_tolerance']!s:>6}"
        )
    chosen = report["chosen_q"]
    lines.append(
        f"chosen level q={chosen}"
        if chosen is not None
        else "no level kept the function within tolerance on a stable structure: nothing removed"
    )
    lines.append(f"saved to {out} (report decomposition.json, pool file pool.yaml)")
    return "\n".join(lines)
