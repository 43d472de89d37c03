"""The community a bot instance serves: grids, categories, escalation and limits.

The models are frozen because one ``Community`` is loaded at start-up and then
shared by every handler; nothing should change it behind the others' backs.
Unknown keys are rejected so that a misspelt option in the configuration file
fails loudly instead of silently falling back to a default.

Cross-field checks (duplicate keys, a building in two grids) are raised against
the list field itself, so pydantic can only report ``grids`` as the location.
They put the more precise position relative to that field in the error context
under ``"at"`` (for example ``(1, "key")``) so the file loader can point at the
exact line.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zoneinfo
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

LANGUAGES = ("zh_CN", "en", "zh_TW")
BUILT_IN_CATEGORY_KEYS = ("road", "fire", "suspicious", "dispute", "fraud", "sanitation", "other")

_SLUG_RE = re.compile(r"^[a-z0-9_-]+$")
# Longest first, so "3号楼" loses "号楼" rather than just "楼"-less "号".
_BUILDING_SUFFIXES = ("号楼", "栋", "号", "幢")
# Mean Earth radius (IUGG); metre accuracy is plenty for "is this in our area".
_EARTH_RADIUS_M = 6_371_008.8

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _check_slug(value: str) -> str:
    if not _SLUG_RE.fullmatch(value):
        raise ValueError(f"'{value}' is not a valid key: use lowercase letters, digits, '_' or '-'")
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _numbers_to_str(value: Any) -> Any:
    # TOML users naturally write building numbers and Telegram chat ids as bare
    # integers; accept them rather than make administrators quote everything.
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


def normalise_building(text: str) -> str:
    """Canonical form of a building identifier as a resident might type it.

    NFKC folds full-width input from Chinese IMEs ("Ａ２", "＃3") to ASCII, so
    "＃3号楼", "3栋" and " 3 " all compare equal to "3".
    """
    value = unicodedata.normalize("NFKC", text).strip().casefold()
    value = value.removeprefix("#").strip()
    for suffix in _BUILDING_SUFFIXES:
        if value.endswith(suffix):
            value = value.removesuffix(suffix).strip()
            break
    return value


class GeoPoint(BaseModel):
    model_config = _FROZEN

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


def haversine_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in metres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    # min() guards against rounding pushing h just above 1 for antipodal points.
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


class PoliceGroups(BaseModel):
    model_config = _FROZEN

    telegram: list[NonEmptyStr] = Field(default_factory=list)
    wecom: list[NonEmptyStr] = Field(default_factory=list)
    # The offline simulator's stand-in for a police group chat.
    console: list[NonEmptyStr] = Field(default_factory=list)

    _coerce_ids = field_validator("telegram", "wecom", "console", mode="before")(_numbers_to_str)


class Grid(BaseModel):
    model_config = _FROZEN

    key: Slug
    name: NonEmptyStr
    buildings: list[NonEmptyStr] = Field(min_length=1)
    center: GeoPoint | None = None
    # The grid's own residents' group chats, for broadcasts to this grid.
    groups: PoliceGroups = Field(default_factory=lambda: PoliceGroups())

    _coerce_buildings = field_validator("buildings", mode="before")(_numbers_to_str)

    @field_validator("buildings")
    @classmethod
    def _buildings_distinct(cls, buildings: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        for index, building in enumerate(buildings):
            norm = normalise_building(building)
            if not norm:
                raise PydanticCustomError(
                    "building_empty",
                    "'{building}' has no building number left once '#'/'号楼'/'栋'/'号'/'幢' are removed",
                    {"building": building, "at": (index,)},
                )
            if norm in seen:
                raise PydanticCustomError(
                    "building_duplicate",
                    "building '{building}' is listed twice in this grid (same as '{other}')",
                    {"building": building, "other": buildings[seen[norm]], "at": (index,)},
                )
            seen[norm] = index
        return buildings


class Category(BaseModel):
    model_config = _FROZEN

    key: Slug
    names: dict[str, NonEmptyStr] = Field(default_factory=dict)

    @field_validator("names")
    @classmethod
    def _known_languages(cls, names: dict[str, str]) -> dict[str, str]:
        for language in names:
            if language not in LANGUAGES:
                raise PydanticCustomError(
                    "unknown_language",
                    "unknown language '{language}'; expected one of {expected}",
                    {"language": language, "expected": ", ".join(LANGUAGES), "at": (language,)},
                )
        return names

    @model_validator(mode="after")
    def _custom_needs_names(self) -> Category:
        # Only the built-in categories have labels in the translation catalogues.
        if not self.names and self.key not in BUILT_IN_CATEGORY_KEYS:
            raise ValueError(f"category '{self.key}' is not built in, so it needs names (e.g. names.zh_CN)")
        return self


def _later_than(ack_field: str) -> Any:
    def check(value: int, info: ValidationInfo) -> int:
        # The ack field is declared first, so it is in info.data unless it was invalid itself.
        ack = info.data.get(ack_field)
        if ack is not None and value <= ack:
            raise ValueError(f"must be greater than {ack_field} ({ack}); escalation comes after the reminder")
        return value

    return check


class Escalation(BaseModel):
    model_config = _FROZEN

    urgent_ack_minutes: int = Field(default=15, gt=0)
    normal_ack_minutes: int = Field(default=120, gt=0)
    # validate_default so that raising only the ack time above the default
    # escalation time is still caught.
    urgent_escalate_minutes: int = Field(default=30, gt=0, validate_default=True)
    normal_escalate_minutes: int = Field(default=240, gt=0, validate_default=True)

    _urgent_order = field_validator("urgent_escalate_minutes")(_later_than("urgent_ack_minutes"))
    _normal_order = field_validator("normal_escalate_minutes")(_later_than("normal_ack_minutes"))


class Reward(BaseModel):
    """An item of the rewards catalogue (生活物资, a partner shop's discount)."""

    model_config = _FROZEN

    key: Slug
    names: dict[str, NonEmptyStr] = Field(min_length=1)
    cost: int = Field(gt=0)
    # None: as many as are asked for (e.g. a discount code the shop honours for everyone).
    stock: int | None = Field(default=None, ge=0)

    _languages = field_validator("names")(Category._known_languages.__func__)  # type: ignore[attr-defined]


class TimeBank(BaseModel):
    """Points of the volunteer time bank (公益时间银行) and the tiers lifetime points reach."""

    model_config = _FROZEN

    report_resolved_points: int = Field(default=5, ge=0)
    # A resolved report its reporter rated 4 or 5: the tip was useful.
    report_useful_points: int = Field(default=3, ge=0)
    patrol_points_per_hour: int = Field(default=10, ge=0)
    # The most a police officer may award by hand at once.
    award_max_points: int = Field(default=100, gt=0)
    silver_from: int = Field(default=200, gt=0)
    gold_from: int = Field(default=1000, gt=0)
    rewards: list[Reward] = Field(default_factory=list)
    # Monthly honours, posted on the 1st at this local time to the resident groups.
    honours_time: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # 平安卫士: most patrol hours; 优秀志愿者: most points earned.
    guardians_per_month: int = Field(default=1, ge=0)
    outstanding_volunteers_per_month: int = Field(default=3, ge=0)

    @field_validator("rewards")
    @classmethod
    def _rewards_unique(cls, rewards: list[Reward]) -> list[Reward]:
        seen: set[str] = set()
        for index, reward in enumerate(rewards):
            if reward.key in seen:
                raise PydanticCustomError(
                    "duplicate_key", "duplicate reward key '{key}'", {"key": reward.key, "at": (index, "key")}
                )
            seen.add(reward.key)
        return rewards

    def reward(self, key: str) -> Reward | None:
        return next((r for r in self.rewards if r.key == key), None)

    @field_validator("gold_from")
    @classmethod
    def _gold_above_silver(cls, value: int, info: ValidationInfo) -> int:
        silver = info.data.get("silver_from")
        if silver is not None and value <= silver:
            raise ValueError(f"must be greater than silver_from ({silver})")
        return value

    def tier(self, lifetime_points: int) -> str:
        if lifetime_points >= self.gold_from:
            return "gold"
        if lifetime_points >= self.silver_from:
            return "silver"
        return "bronze"


class Broadcasts(BaseModel):
    """Police broadcasts (警情通报) and scheduled notices."""

    model_config = _FROZEN

    # Residents who have not acknowledged an urgent alert after this long get one reminder.
    ack_reminder_minutes: int = Field(default=60, gt=0)
    # A recurring notice that fell due while the bot was down is still sent this late, not later.
    notice_grace_minutes: int = Field(default=60, ge=0)
    # The weekly digest to the police group: ISO weekday (1 = Monday) and local time.
    digest_weekday: int = Field(default=1, ge=1, le=7)
    digest_time: str = Field(default="08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # Points for answering a whole satisfaction survey.
    survey_points: int = Field(default=5, ge=0)


class Patrols(BaseModel):
    """Rules of volunteer patrols (群防群治)."""

    model_config = _FROZEN

    # Residents who send /volunteer wait for police approval instead of becoming volunteers at once.
    volunteer_approval: bool = False
    # Sign-ups close this long before the start ("too late to sign up").
    signup_closes_minutes: int = Field(default=30, ge=0)
    # Cancelling later than this before the start is refused: ask the leader or police instead.
    cancel_hours_before: int = Field(default=3, ge=0)
    # This many no-shows (not forgiven by police) and sign-ups are refused.
    no_show_ban_after: int = Field(default=2, gt=0)
    # Recurring series generate their shifts this many days ahead.
    generate_days_ahead: int = Field(default=14, gt=0, le=90)
    # Reminders to those signed up, in hours before the start (day before, one hour before).
    reminder_hours: list[float] = Field(default_factory=lambda: [24.0, 1.0])
    # The police group is warned when a shift this close is below its minimum.
    understaffed_warning_hours: float = Field(default=2.0, gt=0)
    checkin_opens_minutes: int = Field(default=15, ge=0)
    checkin_radius_m: float = Field(default=300, gt=0, allow_inf_nan=False)


class Privacy(BaseModel):
    model_config = _FROZEN

    # Closed reports older than this many days lose their place and photos (None: kept).
    retention_days: int | None = Field(default=None, gt=0)


class Limits(BaseModel):
    model_config = _FROZEN

    reports_per_hour: int = Field(default=10, gt=0)
    # 0 is allowed: a community may not want photos at all.
    max_photos: int = Field(default=3, ge=0)
    draft_idle_minutes: int = Field(default=30, gt=0)
    invite_valid_hours: int = Field(default=72, gt=0)
    description_max_chars: int = Field(default=1000, gt=0)
    description_min_chars: int = Field(default=4, ge=0, validate_default=True)

    @field_validator("description_min_chars")
    @classmethod
    def _min_below_max(cls, value: int, info: ValidationInfo) -> int:
        maximum = info.data.get("description_max_chars")
        if maximum is not None and value > maximum:
            raise ValueError(f"must not exceed description_max_chars ({maximum})")
        return value


DEFAULT_CATEGORIES: tuple[Category, ...] = tuple(Category(key=key) for key in BUILT_IN_CATEGORY_KEYS)


class Community(BaseModel):
    model_config = _FROZEN

    name: NonEmptyStr
    timezone: str = "Asia/Shanghai"
    default_language: str = "zh_CN"
    center: GeoPoint | None = None
    radius_m: float = Field(default=3000, gt=0, allow_inf_nan=False)
    police_groups: PoliceGroups = Field(default_factory=PoliceGroups)
    # The residents' group chats (community announcements, monthly honours); same shape.
    resident_groups: PoliceGroups = Field(default_factory=PoliceGroups)
    grids: list[Grid] = Field(min_length=1)
    categories: list[Category] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES), min_length=1)
    escalation: Escalation = Field(default_factory=Escalation)
    limits: Limits = Field(default_factory=Limits)
    timebank: TimeBank = Field(default_factory=TimeBank)
    patrols: Patrols = Field(default_factory=Patrols)
    broadcasts: Broadcasts = Field(default_factory=Broadcasts)
    privacy: Privacy = Field(default_factory=Privacy)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a region directory such as "Asia" is not a zone.
            raise ValueError(
                f"unknown time zone '{value}'; use an IANA name such as 'Asia/Shanghai'"
            ) from None
        return value

    @field_validator("default_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"unknown language '{value}'; expected one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("grids")
    @classmethod
    def _grids_consistent(cls, grids: list[Grid]) -> list[Grid]:
        first_key: dict[str, int] = {}
        owner: dict[str, tuple[int, str]] = {}
        for g_index, grid in enumerate(grids):
            if grid.key in first_key:
                raise PydanticCustomError(
                    "duplicate_grid_key",
                    "grid key '{key}' is already used by grids[{other}]",
                    {"key": grid.key, "other": first_key[grid.key], "at": (g_index, "key")},
                )
            first_key[grid.key] = g_index
            for b_index, building in enumerate(grid.buildings):
                norm = normalise_building(building)
                if norm in owner:
                    other_index, other_building = owner[norm]
                    raise PydanticCustomError(
                        "building_in_two_grids",
                        "building '{building}' is already in grid '{other_key}' "
                        "(grids[{other}], as '{other_building}'); a building belongs to one grid only",
                        {
                            "building": building,
                            "other_key": grids[other_index].key,
                            "other": other_index,
                            "other_building": other_building,
                            "at": (g_index, "buildings", b_index),
                        },
                    )
                owner[norm] = (g_index, building)
        return grids

    @field_validator("categories")
    @classmethod
    def _categories_unique(cls, categories: list[Category]) -> list[Category]:
        first_key: dict[str, int] = {}
        for index, category in enumerate(categories):
            if category.key in first_key:
                raise PydanticCustomError(
                    "duplicate_category_key",
                    "category key '{key}' is already used by categories[{other}]",
                    {"key": category.key, "other": first_key[category.key], "at": (index, "key")},
                )
            first_key[category.key] = index
        return categories

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        # ZoneInfo caches instances per key, so this is cheap to call per message.
        return zoneinfo.ZoneInfo(self.timezone)

    def grid(self, key: str) -> Grid | None:
        return next((g for g in self.grids if g.key == key), None)

    def category(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.key == key), None)

    def grid_for_building(self, building: str) -> Grid | None:
        wanted = normalise_building(building)
        if not wanted:
            return None
        for grid in self.grids:
            if any(normalise_building(b) == wanted for b in grid.buildings):
                return grid
        return None

    def grid_for_location(self, point: GeoPoint) -> Grid | None:
        """The grid whose center is nearest; grids without a center are not candidates."""
        best: Grid | None = None
        best_distance = math.inf
        for grid in self.grids:
            if grid.center is None:
                continue
            distance = haversine_m(point, grid.center)
            # Strictly less: on a tie the grid listed first wins, which is predictable.
            if distance < best_distance:
                best, best_distance = grid, distance
        return best

    def is_inside(self, point: GeoPoint) -> bool:
        if self.center is None:
            return True
        return haversine_m(self.center, point) <= self.radius_m
