"""Core Web Vitals shared by CrUX, PSI and browser beacons: names, ratings, thresholds.

Thresholds default to the web-vitals library's (``src/on*.ts``): a value at or below
``good`` is good, at or below ``poor`` needs improvement, above ``poor`` is poor.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from monitor.kernel.config.types import Duration, HttpUrl, Model

VitalName = Literal["lcp", "inp", "cls", "fcp", "ttfb"]


VITAL_NAMES: tuple[VitalName, ...] = ("lcp", "inp", "cls", "fcp", "ttfb")


Rating = Literal["good", "needs-improvement", "poor"]


RATINGS: tuple[Rating, ...] = ("good", "needs-improvement", "poor")


FormFactor = Literal["PHONE", "DESKTOP", "TABLET"]


Strategy = Literal["mobile", "desktop"]


class Threshold(Model):
    """Upper bounds of "good" and "needs improvement" in base units."""

    good: float
    poor: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not 0 < self.good < self.poor:
            raise ValueError(f"need 0 < good < poor, got good={self.good:g} poor={self.poor:g}")
        return self

    def rate(self, value: float) -> Rating:
        """The web-vitals rating rule (``bindReporter.ts``)."""
        if value <= self.good:
            return "good"
        if value <= self.poor:
            return "needs-improvement"
        return "poor"


class TimingThreshold(Threshold):
    """A timing metric's thresholds, written as durations (``2500ms``, ``4s``)."""

    good: Duration
    poor: Duration


def _timing(good: str, poor: str) -> TimingThreshold:
    return TimingThreshold.model_validate({"good": good, "poor": poor})


class VitalsThresholds(Model):
    """Per-metric thresholds; CLS is unitless, the others are durations."""

    lcp: TimingThreshold = Field(default_factory=lambda: _timing("2500ms", "4000ms"))
    inp: TimingThreshold = Field(default_factory=lambda: _timing("200ms", "500ms"))
    cls: Threshold = Field(default_factory=lambda: Threshold(good=0.1, poor=0.25))
    fcp: TimingThreshold = Field(default_factory=lambda: _timing("1800ms", "3000ms"))
    ttfb: TimingThreshold = Field(default_factory=lambda: _timing("800ms", "1800ms"))

    def of(self, metric: VitalName) -> Threshold:
        threshold: Threshold = getattr(self, metric)
        return threshold


def _origin(value: str) -> str:
    """``scheme://host[:port]``: CrUX keys origins without a path (a trailing / is dropped)."""
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"an origin has no path or query: use {parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}".lower()


Origin = Annotated[HttpUrl, AfterValidator(_origin)]
