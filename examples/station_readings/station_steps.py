"""The station-readings pipeline's steps: plain functions of frames, no orchestrator, no Git, no DVC.

`collect_readings` stands in for a team's collector (an API, a logger's export): it makes the
readings of the days after the newest one the dataset holds, and late corrections of readings it
already holds, from the run's random generator, so a retry collects the same rows.
"""

from __future__ import annotations

import datetime
from typing import Any

import polars as pl

STATIONS = ("ABE01", "BRI02", "CAR03", "DUN04", "ELY05")
FIRST_DAY = datetime.date(2026, 1, 1)
COLUMNS = ("station", "day", "temperature_c", "rainfall_mm", "quality")


def seed_readings(days: int = 20, stations: tuple[str, ...] = STATIONS) -> pl.DataFrame:
    """The example's first version: `days` days of every station, checked."""
    rows = [
        _reading(station, FIRST_DAY + datetime.timedelta(days=d), d * 7 + i)
        for d in range(days)
        for i, station in enumerate(stations)
    ]
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row").with_columns(pl.lit("checked").alias("quality"))


def collect_readings(dataset: pl.LazyFrame, ctx: Any) -> pl.DataFrame:
    held = dataset.select("station", "day").collect()
    days, corrections = int(ctx.params["days"]), int(ctx.params["corrections"])
    stations = sorted(set(held["station"].to_list())) or list(STATIONS)
    newest = _as_date(held["day"].max()) if held.height else FIRST_DAY - datetime.timedelta(days=1)
    rng = ctx.rng
    new = [
        _reading(station, newest + datetime.timedelta(days=d), int(rng.integers(0, 10_000)))
        for d in range(1, days + 1)
        for station in stations
    ]
    picked = rng.choice(held.height, size=min(corrections, held.height), replace=False) if held.height else []
    corrected = [
        {
            **_reading(held["station"][int(i)], _as_date(held["day"][int(i)]), int(rng.integers(0, 10_000))),
            "quality": "corrected",
        }
        for i in picked
    ]
    ctx.log.info("collected %d new reading(s) and %d correction(s)", len(new), len(corrected))
    return pl.DataFrame(new + corrected, schema=_SCHEMA, orient="row")


def quality_check(collect_readings: pl.DataFrame, dataset: pl.LazyFrame, ctx: Any) -> pl.DataFrame:
    checked = collect_readings.with_columns(
        pl.col("temperature_c").round(1),
        pl.col("rainfall_mm").round(1),
        pl.when(pl.col("quality") == "raw").then(pl.lit("checked")).otherwise(pl.col("quality")).alias("quality"),
        pl.lit(False).alias("retracted"),
    )
    retire = str(ctx.params.get("retire", ""))
    if not retire:
        return checked
    gone = (
        dataset.filter(pl.col("station") == retire)
        .select("station", "day")
        .collect()
        .with_columns(
            pl.lit(None, pl.Float64).alias("temperature_c"),
            pl.lit(None, pl.Float64).alias("rainfall_mm"),
            pl.lit(None, pl.String).alias("quality"),
            pl.lit(True).alias("retracted"),
        )
    )
    ctx.log.info("retiring station %s: %d reading(s) deleted", retire, gone.height)
    kept = checked.filter(pl.col("station") != retire)
    return pl.concat([kept, gone.with_columns(pl.col("day").cast(pl.String).str.to_date())], how="vertical")


_SCHEMA = {
    "station": pl.String,
    "day": pl.Date,
    "temperature_c": pl.Float64,
    "rainfall_mm": pl.Float64,
    "quality": pl.String,
}


def _reading(station: str, day: datetime.date, noise: int) -> dict[str, Any]:
    """A plausible reading: a seasonal temperature per station, rain on some days, a dry gauge on few."""
    season = 8.0 + 10.0 * ((day.timetuple().tm_yday % 365) / 365.0)
    temperature = round(season + (STATIONS.index(station) if station in STATIONS else 0) - 2 + (noise % 41) / 10.0, 1)
    rain = None if noise % 97 == 0 else round((noise % 13) * 1.7 if noise % 3 == 0 else 0.0, 1)
    return {"station": station, "day": day, "temperature_c": temperature, "rainfall_mm": rain, "quality": "raw"}


def _as_date(value: Any) -> datetime.date:
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))


def keep_recent(dataset: pl.LazyFrame, ctx: Any) -> pl.DataFrame:
    """A retention job, declared with strategy `replace`: the newest `keep_days` days of readings."""
    held = dataset.collect()
    days = sorted(set(held["day"].to_list()))[-int(ctx.params["keep_days"]) :]
    return held.filter(pl.col("day").is_in(days)).with_columns(pl.col("day").str.to_date())
