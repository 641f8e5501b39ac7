"""The ``doorstep`` command: build, serve, audit, recommend, export, train, evaluate, fairness."""

import csv
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from api.audit_cli import audit_checkpoint, audit_rotate_key, audit_verify
from api.coverage_cli import coverage_app
from api.fairness_cli import fairness
from api.pi_cli import pi_app
from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from api.shuttle_cli import shuttle_app
from api.tour_cli import tour_app
from geo.errors import DoorstepError
from models.ranker import RankerParams
from store.base import ReadStore
from store.build import BuildReport, collect_build
from store.postgres import PostgresStore, mask_url, open_pool
from store.sqlite import SqliteStore, write_store

if TYPE_CHECKING:
    import pandas as pd

    from models.evaluation import EvaluationReport
    from models.ranker import TrainingSet
    from models.registry import LoadedModel, ModelRegistry

logger = logging.getLogger(__name__)

app = typer.Typer(help="Doorstep Jobs (家门口就业): job matching for Xi'an.", no_args_is_help=True)
console = Console()


class Language(StrEnum):
    """Languages of user-facing text."""

    ZH = "zh"
    EN = "en"


STAGE_LABELS = {
    "regions": "区县与开发区 regions",
    "locate": "岗位定位 locating postings",
    "layers": "人社地图图层 HR map layers",
    "seekers": "模拟求职者 simulated seekers",
    "encrypt": "加密个人信息 encrypting personal fields",
    "write": "写入存储 writing store",
    "data": "模拟行为数据 simulated training data",
    "split": "按时间划分 chronological split",
    "rounds": "训练轮次 boosting rounds",
    "evaluate": "测试期评估 test-period evaluation",
    "save": "保存模型 saving model",
}

SIMULATED_LABELS_NOTE = (
    "注意：训练标签来自行为模拟，不是真实交互日志 · "
    "labels are simulated by the behaviour simulation, not real interaction logs"
)


@app.callback()
def _configure(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        ctx.obj = Settings()
    except ValidationError as err:
        # include_input=False: a rejected value may be a secret, so it is never printed.
        prefix = _env_prefix(err.title)
        for problem in err.errors(include_input=False, include_url=False):
            message = _settings_problem(problem["loc"], problem["msg"], prefix)
            console.print(f"[red]error:[/red] {message}")
        raise typer.Exit(2) from None


def _env_prefix(model_name: str) -> str:
    """Return the variable prefix of the settings group named ``model_name``.

    A group such as ``PushSettings`` fails on its own, so its error's title names the
    group and its ``loc`` holds only the field name.
    """
    for field in Settings.model_fields.values():
        group = field.annotation
        if isinstance(group, type) and group.__name__ == model_name:
            return str(group.model_config.get("env_prefix") or "DOORSTEP_")
    return "DOORSTEP_"


def _settings_problem(loc: tuple[int | str, ...], message: str, prefix: str = "DOORSTEP_") -> str:
    """Name the variable of a settings error; checks across several settings have no loc."""
    if not loc:
        return f"settings are invalid: {message}"
    variable = prefix + str(loc[-1]).upper()
    return f"setting {variable} is invalid: {message}"


@app.command()
def build(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(help="Rebuild even when the store exists.")] = False,
) -> None:
    """Build the store from the data folder (DOORSTEP_DATA_DIR), in PostgreSQL when configured."""
    settings: Settings = ctx.obj
    if settings.database.database_url is not None:
        with _database_store(settings) as store:
            if store.has_data() and not force:
                console.print(f"store {store.describe()} has data; use --force to rebuild")
                return
            _build(settings, store)
        return
    if settings.data.store_path.exists() and not force:
        console.print(f"store {settings.data.store_path} exists; use --force to rebuild")
        return
    _build(settings)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply pending PostgreSQL schema migrations (DOORSTEP_DATABASE_URL) and list them."""
    from store.migrations import apply_migrations

    settings: Settings = ctx.obj
    url = settings.database.database_url
    if url is None:
        raise typer.BadParameter("DOORSTEP_DATABASE_URL is not set; the SQLite store needs none")
    applied = apply_migrations(url)
    if not applied:
        console.print(f"no pending migrations in {mask_url(url)}", soft_wrap=True)
    for migration_id in applied:
        console.print(f"applied {migration_id}")


@app.command()
def serve(ctx: typer.Context) -> None:
    """Serve the API and web pages; builds the store first when it is missing."""
    import uvicorn

    from api.app import create_app

    settings: Settings = ctx.obj
    if settings.database.database_url is not None:
        with _database_store(settings) as store:
            if not store.has_data():
                _build(settings, store)
    elif not settings.data.store_path.exists():
        _build(settings)
    console.print(
        f"城市地图 city map: http://{settings.server.host}:{settings.server.port}/  ·  "
        f"求职者页面 seeker page: http://{settings.server.host}:{settings.server.port}/seeker"
    )
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port)


@app.command()
def worker(
    ctx: typer.Context,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Stream workers (default DOORSTEP_PUSH_WORKERS)."),
    ] = None,
) -> None:
    """Deliver pushes: a relay from the outbox to the Redis stream and stream workers.

    Without DOORSTEP_REDIS_URL it runs the embedded worker on the store's outbox instead.
    Stops on Ctrl-C (SIGINT) or SIGTERM after the current batch.
    """
    import signal
    import threading

    from api.seeker_accounts import seeker_directory
    from push.runtime import (
        channels_from_settings,
        push_store_for,
        start_embedded_worker,
        start_stream_pipeline,
    )

    settings: Settings = ctx.obj
    if workers is not None:
        settings.push.workers = workers
    with _read_store(settings) as store:
        push_store = push_store_for(store)
        channels = channels_from_settings(settings.push, seeker_directory(settings, store))
        if settings.cache.redis_url is None:
            running = start_embedded_worker(push_store, settings.push, channels)
        else:
            running = start_stream_pipeline(push_store, settings, channels)
        console.print(f"push delivery running on {push_store.label}; Ctrl-C stops it")
        stopped = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stopped.set())
        stopped.wait()
        running.close()


@app.command("staff-create")
def staff_create(  # nosec B107 # empty means prompt
    ctx: typer.Context,
    login: Annotated[str, typer.Option(help="Login name, e.g. zhang.wei.")],
    name: Annotated[str, typer.Option(help="Real name; stored SM4-encrypted.")],
    mobile: Annotated[str, typer.Option(help="11-digit mobile that receives SMS codes.")],
    org: Annotated[str, typer.Option(help="Organisation id, e.g. district:610113 or city.")],
    role: Annotated[
        list[str], typer.Option(help="Staff role such as station_staff (not seeker); repeatable.")
    ],
    device: Annotated[str, typer.Option(help="Device id to bind, sent as X-Device-ID.")],
    totp: Annotated[bool, typer.Option(help="Use TOTP instead of SMS codes.")] = False,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            show_default=False,
            help="Password; asked twice without echo when the option is left out.",
        ),
    ] = "",
) -> None:
    """Create a staff account, seeding the organisation tree first, and bind one device."""
    from api.identity_setup import open_identity, seed_organisation_tree
    from store.cache import MemoryCache
    from store.identity import Role

    settings: Settings = ctx.obj
    try:
        roles = [Role(item) for item in role]
    except ValueError as err:
        raise typer.BadParameter(
            f"{err}; expected one of {[item.value for item in Role if item is not Role.SEEKER]}",
            param_hint="--role",
        ) from err
    with _read_store(settings) as store:
        identity = open_identity(settings, store, MemoryCache(1, 1))
        seed_organisation_tree(identity.store, settings)
        try:
            created = identity.create_staff(
                login=login, name=name, mobile=mobile, org_id=org, roles=roles,
                password=password, second_factor="totp" if totp else "sms",
            )  # fmt: skip
        except DoorstepError as err:
            raise typer.BadParameter(str(err)) from err
        identity.store.bind_device(created.account.account_id, device, "cli", identity.clock())
    typer.echo(f"account {created.account.account_id} created; device {device!r} bound")
    if created.totp_secret is not None:
        typer.echo(f"TOTP secret (enter it in an authenticator app once): {created.totp_secret}")


audit_app = typer.Typer(help="The operation log (操作日志) and its hash chain.")
app.add_typer(audit_app, name="audit")
app.add_typer(coverage_app, name="coverage")
app.add_typer(pi_app, name="pi")
app.add_typer(tour_app, name="tour")
app.command("fairness")(fairness)
app.add_typer(shuttle_app, name="shuttle")


audit_app.command("verify")(audit_verify)
audit_app.command("checkpoint")(audit_checkpoint)
audit_app.command("rotate-key")(audit_rotate_key)


@app.command()
def recommend(
    ctx: typer.Context,
    seeker: Annotated[str, typer.Option(help="Seeker id, e.g. sim-000001.")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="Jobs to show.")] = 10,
    lang: Annotated[Language, typer.Option(help="Language of the reasons.")] = Language.ZH,
) -> None:
    """Print the ranked jobs of one seeker as a table, ordered by the service's ranker."""
    from api.app import load_transit_network
    from api.ranking import load_ranker, with_serving_context
    from matching.recommend import Recommender

    settings: Settings = ctx.obj
    with _read_store(settings) as store:
        recommender = Recommender.from_store(
            store,
            transit=load_transit_network(settings.data),
            exact_homes=seeker_codec(settings).with_exact_homes,
        )
        status, scorer = load_ranker(settings)
        recommender.scorer = with_serving_context(scorer, store, recommender)
    row, ranked = recommender.recommend(seeker, limit, lang=lang.value)

    console.print(f"排序 ranker: {status.kind} {status.model_id or ''} ({status.reason})")
    console.print(
        f"[bold]{row['seeker_id']}[/bold] (模拟 simulated) · {row['group']} · "
        f"{row['occupation_wish_name']} · {row['home_district_code']} · "
        f"≤{int(row['max_commute_min'])} 分钟"
    )
    # The API's `score` is the baseline score (0-1) even when a model orders the page.
    # A model's raw score has no fixed range, so it gets a column of its own.
    by_model = "model_score" in ranked.columns
    columns = ["#", "岗位 job", "单位 employer", "薪资 pay", "基础分 baseline 0-1"]
    table = Table(*columns, *(["模型分 model (raw)"] if by_model else []), "理由 reasons")
    for rank, job in enumerate(ranked.to_dict("records"), start=1):
        model_cell = [f"{job['model_score']:.3f}"] if by_model else []
        table.add_row(
            str(rank),
            str(job["title"]),
            str(job["company"]),
            str(job["salary_text"] or "面议"),
            f"{job['score']:.3f}",
            *model_cell,
            "；".join(job["reasons"]),
        )
    console.print(table)


@app.command()
def route(
    ctx: typer.Context,
    origin: Annotated[str, typer.Option(help="Start point as LON,LAT, e.g. 108.9421,34.2224.")],
    destination: Annotated[str, typer.Option(help="End point as LON,LAT.")],
    modes: Annotated[
        str, typer.Option(help="Allowed modes joined by ';': walk, bike, transit, drive.")
    ] = "walk;transit",
    coord_sys: Annotated[
        str, typer.Option(help="Coordinate system of both points: wgs84, gcj02 or bd09.")
    ] = "wgs84",
    lang: Annotated[Language, typer.Option(help="Language of the itinerary.")] = Language.ZH,
) -> None:
    """Print the door-to-door minutes and the itinerary between two points."""
    from api.app import load_transit_network
    from geo.crs import validate_and_convert
    from geo.transit import parse_travel_modes

    settings: Settings = ctx.obj
    allowed = parse_travel_modes(modes)
    start = validate_and_convert(*_lon_lat(origin, "origin"), coord_sys, field="origin")
    end = validate_and_convert(
        *_lon_lat(destination, "destination"), coord_sys, field="destination"
    )
    network = load_transit_network(settings.data.model_copy(update={"transit_model": True}))
    if network is None:
        raise typer.BadParameter(f"no transit data in {settings.data.data_dir}", param_hint="data")

    trip = network.route(start, end, allowed)
    console.print(f"{trip.minutes:.1f} 分钟 min · {trip.mode}")
    console.print(trip.text(lang.value))
    table = Table("出行段 leg", "分钟 min", "其中候车 wait")
    for leg in trip.legs:
        table.add_row(leg.kind.value, f"{leg.minutes:.1f}", f"{leg.wait_min:.1f}")
    console.print(table)


def _lon_lat(text: str, name: str) -> tuple[float, float]:
    """Parse ``LON,LAT`` given on the command line."""
    parts = text.split(",")
    try:
        lon, lat = (float(part) for part in parts)
    except ValueError as err:
        raise typer.BadParameter(
            f"{text!r} is not LON,LAT; expected two numbers such as 108.9421,34.2224",
            param_hint=f"--{name}",
        ) from err
    return lon, lat


@app.command("export-matches")
def export_matches(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="CSV file to write.")] = Path("var/matches.csv"),
    seekers: Annotated[int, typer.Option(min=1, help="Seekers to export.")] = 1_000,
    per_seeker: Annotated[int, typer.Option(min=1, max=100, help="Jobs per seeker.")] = 10,
) -> None:
    """Write the top matches of the first N seekers to CSV (UTF-8 with BOM for Excel)."""
    from api.app import load_transit_network
    from matching.recommend import Recommender

    settings: Settings = ctx.obj
    with _read_store(settings) as store:
        recommender = Recommender.from_store(
            store,
            transit=load_transit_network(settings.data),
            exact_homes=seeker_codec(settings).with_exact_homes,
        )
    ids = list(recommender.seekers.index[:seekers])
    out.parent.mkdir(parents=True, exist_ok=True)

    columns = [
        "seeker_id",
        "simulated",
        "rank",
        "posting_id",
        "title",
        "company",
        "salary_text",
        "distance_m",
        "precision",
        "score",
        "reasons",
    ]
    with out.open("w", newline="", encoding="utf-8-sig") as handle, _progress() as progress:
        writer = csv.writer(handle)
        writer.writerow(columns)
        task = progress.add_task("导出匹配 exporting matches", total=len(ids))
        for seeker_id in ids:
            row, ranked = recommender.recommend(seeker_id, per_seeker)
            for rank, job in enumerate(ranked.to_dict("records"), start=1):
                writer.writerow(
                    [
                        seeker_id,
                        bool(row["simulated"]),
                        rank,
                        job["posting_id"],
                        job["title"],
                        job["company"],
                        job["salary_text"],
                        _round(job["distance_m"]),
                        job["precision"],
                        f"{job['score']:.4f}",
                        "；".join(job["reasons"]),
                    ]
                )
            progress.advance(task)
    console.print(f"wrote {out}")


@app.command()
def train(
    ctx: typer.Context,
    seekers: Annotated[
        int | None,
        typer.Option(min=1, help="Simulated seekers whose sessions to simulate; all when omitted."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the behaviour simulation; DOORSTEP_SEED if omitted.")
    ] = None,
    rounds: Annotated[
        int,
        typer.Option(min=1, help="Maximum boosting rounds; early stopping usually ends sooner."),
    ] = RankerParams.n_estimators,
) -> None:
    """Train the LambdaRank ranker on simulated labels, evaluate it and save it to the registry."""
    from api.ranking import open_registry
    from models.training import fit_and_evaluate, save_run

    settings: Settings = ctx.obj
    seed = settings.data.seed if seed is None else seed
    console.print(SIMULATED_LABELS_NOTE)
    registry = open_registry(settings)
    with _read_store(settings) as store:
        data = _training_data(store, settings, n_seekers=seekers, seed=seed)
    _print_data_summary(data.frame)

    with _progress() as progress:
        run = fit_and_evaluate(
            data,
            RankerParams(n_estimators=rounds),
            n_jobs=settings.model.n_jobs,
            progress=_stage_reporter(progress),
        )
        command = {"seekers": seekers, "seed": seed, "rounds": rounds}
        path = save_run(registry, run, data, command)
    console.print(
        f"best round {run.ranker.best_iteration} · validation NDCG@10 "
        f"{run.ranker.validation_ndcg_at_10:.4f} · split {run.split.describe()}",
        soft_wrap=True,
    )
    _print_report(run.report)
    console.print(f"saved model to {path}", soft_wrap=True)


@app.command()
def evaluate(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Model id in the registry; the newest valid when omitted.")
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="Folder of the JSON report.")] = Path("var/reports"),
) -> None:
    """Evaluate a saved ranker and the baselines on the test period; write a JSON report."""
    from datetime import UTC, datetime

    from api.ranking import open_registry
    from models.training import evaluate_saved

    settings: Settings = ctx.obj
    console.print(SIMULATED_LABELS_NOTE)
    loaded = _load_model(open_registry(settings), model, _feature_names())
    command = loaded.manifest.get("training_command", {})
    if "seed" not in command:
        raise typer.BadParameter(
            f"model {loaded.model_id} records no training command; retrain it with doorstep train"
        )
    with _read_store(settings) as store:
        data = _training_data(
            store, settings, n_seekers=command.get("seekers"), seed=command["seed"]
        )

    report, same_data = evaluate_saved(loaded, data)
    if not same_data:
        console.print(
            "[yellow]warning:[/yellow] the rebuilt data differs from the model's training data; "
            "the test period may include rows the model was trained on",
            soft_wrap=True,
        )
    _print_report(report)

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"evaluation-{loaded.model_id}-{stamp}.json"
    body = {"model_id": loaded.model_id, "same_training_data": same_data, **report.to_dict()}
    out.write_text(json.dumps(body, ensure_ascii=False, indent=2, allow_nan=False) + "\n")
    console.print(f"model {loaded.model_id} · wrote {out}", soft_wrap=True)


@app.command()
def versions(ctx: typer.Context) -> None:
    """Print the versions of GEOS, PROJ, the main libraries and the loaded store."""
    from api.presenters import versions as library_versions

    settings: Settings = ctx.obj
    for name, version in library_versions().items():
        console.print(f"{name}: {version}")
    _print_model_version(settings)
    if settings.database.database_url is not None:
        with _database_store(settings) as store:
            for name, version in store.server_versions().items():
                console.print(f"{name}: {version}")
            console.print(f"store: {store.describe()}")
        return
    console.print("postgis: not used (embedded SQLite store)")
    if settings.data.store_path.exists():
        meta = SqliteStore(settings.data.store_path).meta()
        console.print(f"store: {settings.data.store_path} schema {meta.get('schema_version')}")


@contextmanager
def _database_store(settings: Settings) -> Iterator[PostgresStore]:
    """Open a pool on DOORSTEP_DATABASE_URL for one command and close it afterwards."""
    url = settings.database.database_url
    if url is None:
        raise typer.BadParameter("DOORSTEP_DATABASE_URL is not set")
    pool = open_pool(url, settings.database.pool_options())
    try:
        yield PostgresStore(pool)
    finally:
        pool.close()


@contextmanager
def _read_store(settings: Settings) -> Iterator[ReadStore]:
    """Open the configured store: PostgreSQL when DOORSTEP_DATABASE_URL is set, else SQLite."""
    if settings.database.database_url is not None:
        with _database_store(settings) as store:
            yield store
    else:
        yield SqliteStore(settings.data.store_path)


def _build(settings: Settings, database: PostgresStore | None = None) -> BuildReport:
    started = time.perf_counter()
    target = database.describe() if database else str(settings.data.store_path)
    console.print(f"building store {target} from {settings.data.data_dir} …")
    with _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        result = collect_build(
            settings.data.data_dir,
            n_seekers=settings.data.n_seekers,
            seed=settings.data.seed,
            protect_seekers=seeker_codec(settings).protect,
            progress=report,
        )
        report("write", 0, 1)
        if database is None:
            write_store(settings.data.store_path, **result.store_inputs())
        else:
            database.replace_all(**result.store_inputs())
        report("write", 1, 1)
    _print_build_report(result.report, time.perf_counter() - started)
    return result.report


def _print_build_report(report: BuildReport, seconds: float) -> None:
    console.print(
        f"postings {report.postings:,} · anchors {report.anchors:,} · "
        f"simulated seekers {report.seekers:,} · {seconds:.0f} s"
    )
    sources = Table(
        "source 来源",
        "read 读入",
        "kept 保留",
        "duplicates 重复",
        "unknown salary/education/experience 未知薪资/学历/经验",
        "parser errors 解析出错",
    )
    for name, counts in report.ingest.get("sources", {}).items():
        unknown = counts["unknown"]
        sources.add_row(
            name,
            f"{counts['rows_read']:,}",
            f"{counts['rows_kept']:,}",
            f"{counts['duplicates_dropped']:,}",
            f"{unknown['salary']:,} / {unknown['education']:,} / {unknown['experience']:,}",
            f"{counts['parser_errors']:,}",
        )
    console.print(sources)

    table = Table("precision 精度", "anchors 锚点", "postings 岗位")
    for level, count in report.anchors_by_precision.items():
        table.add_row(level, f"{count:,}", f"{report.postings_by_precision.get(level, 0):,}")
    console.print(table)


def _training_data(
    store: ReadStore, settings: Settings, *, n_seekers: int | None, seed: int
) -> "TrainingSet":
    """Build the simulated training impressions of the store's seekers.

    Commute minutes come from the transit network the service uses, when it is on.
    """
    from api.app import load_transit_network
    from models.dataset import build_training_data

    data: TrainingSet = build_training_data(
        store,
        n_seekers=n_seekers,
        seed=seed,
        progress=True,
        network=load_transit_network(settings.data),
        exact_homes=seeker_codec(settings).with_exact_homes,
    )
    return data


def _feature_names() -> tuple[str, ...]:
    """Return the feature names the code builds, in model order."""
    from matching.features import FEATURE_NAMES

    return tuple(FEATURE_NAMES)


def _load_model(
    registry: "ModelRegistry", model: str | None, feature_names: tuple[str, ...]
) -> "LoadedModel":
    from models.registry import ModelNotFoundError

    if model is not None:
        return registry.load(model, feature_names)
    loaded, _ = registry.newest_valid(feature_names)
    if loaded is None:
        raise ModelNotFoundError(
            f"no valid model in {registry.root}; run `doorstep train` (skipped models are logged)"
        )
    return loaded


def _stage_reporter(progress: Progress) -> "Callable[[str, int, int], None]":
    tasks: dict[str, TaskID] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return report


def _print_data_summary(frame: "pd.DataFrame") -> None:
    labels = frame["label"].value_counts().sort_index()
    console.print(
        f"impressions {len(frame):,} · queries {frame['query_id'].nunique():,} · "
        f"days {frame['query_time'].dt.normalize().nunique():,} · labels "
        + ", ".join(f"{label}: {count:,}" for label, count in labels.items()),
        soft_wrap=True,
    )


def _print_report(report: "EvaluationReport") -> None:
    """Print NDCG@10 of the model against the best baseline per segment, then the model's
    MAP@10, Recall@20 and coverage@10, and whether the goal is met."""
    segments = [report.overall, *report.groups, *report.commute_bands]
    goal = Table(
        "segment",
        "queries",
        "model",
        "best baseline",
        "ratio",
        "goal",
        title="NDCG@10 测试期 test period (模拟标签 simulated labels)",
    )
    for segment in segments:
        best = segment.best_baseline
        ratio = segment.ndcg_ratio
        goal.add_row(
            segment.segment,
            f"{segment.metrics['model'].n_queries_graded:,}",
            _metric(segment.metrics["model"].ndcg_at_10),
            f"{best} {_metric(segment.metrics[best].ndcg_at_10)}",
            "" if ratio != ratio else f"{ratio:.3f}",
            "yes" if segment.goal_met else "no",
        )
    console.print(goal)

    model = Table("segment", "MAP@10", "Recall@20", "coverage@10", title="model 模型")
    for segment in segments:
        metrics = segment.metrics["model"]
        model.add_row(
            segment.segment,
            _metric(metrics.map_at_10),
            _metric(metrics.recall_at_20),
            _metric(metrics.coverage_at_10),
        )
    console.print(model)
    if report.pool is not None:
        _print_pool(report.pool)
    verdict = "met 达到" if report.goal_met else "not met 未达到"
    console.print(f"goal NDCG@10 >= 1.10 x best baseline, overall and per group: {verdict}")


def _print_pool(pool: "EvaluationReport") -> None:
    """Print Recall@20 and NDCG@10 when each test session's whole live pool is ranked."""
    from models.evaluation import BASELINES

    table = Table(
        "segment",
        "queries",
        "Recall@20 model",
        "Recall@20 best baseline",
        "NDCG@10 model",
        "NDCG@10 ratio",
        title="整个候选池 whole live pool: page + unshown candidates (模拟标签 simulated labels)",
    )
    for segment in [pool.overall, *pool.groups]:
        metrics = segment.metrics
        best_recall = max(BASELINES, key=lambda name: _or_low(metrics[name].recall_at_20))
        ratio = segment.ndcg_ratio
        table.add_row(
            segment.segment,
            f"{metrics['model'].n_queries_relevant:,}",
            _metric(metrics["model"].recall_at_20),
            f"{best_recall} {_metric(metrics[best_recall].recall_at_20)}",
            _metric(metrics["model"].ndcg_at_10),
            "" if ratio != ratio else f"{ratio:.3f}",
        )
    console.print(table)


def _or_low(value: float) -> float:
    return -1.0 if value != value else value


def _metric(value: float) -> str:
    return "" if value != value else f"{value:.4f}"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _print_model_version(settings: Settings) -> None:
    from api.ranking import load_ranker

    status, _ = load_ranker(settings)
    if status.kind == "baseline":
        console.print(f"model: baseline score ({status.reason})", soft_wrap=True)
    else:
        console.print(f"model: lightgbm {status.model_id}", soft_wrap=True)


def _round(value: Any) -> str:
    return "" if value != value else f"{value:.0f}"


def main() -> None:
    """Run the command-line interface; domain errors print one line and exit with status 2."""
    try:
        app()
    except DoorstepError as err:
        console.print(f"[red]error:[/red] {err}")
        raise SystemExit(2) from err
    except OSError as err:
        console.print(f"[red]error:[/red] {err.strerror or err}: {err.filename or ''}")
        raise SystemExit(2) from err
