"""A deterministic synthetic city: one Kunshan-shaped year of volunteer service
as interchange lines (CONTRACT §1), for demos, benchmarks and tests.

``generate_city(scale, seed, year)`` yields the lines in non-decreasing
business time, every line with an idempotency key, so importing the file a
second time accepts nothing; ``write_city`` writes them as JSON Lines. The
same arguments always give byte-identical output: the only source of chance is
``random.Random(seed)``, and nothing reads the clock.

Every line is meant to be accepted by the ledger: sign-ups stay within
capacity and close two hours before the start, each volunteer's time is
reserved from an hour before an activity to an hour after it so sessions never
overlap, check-ins fall from 50 minutes before the start to before the end,
check-outs at most 30 minutes after the end, make-up hours go only to
volunteers who signed up but never checked in and never exceed the scheduled
duration, and every fact about one subject comes after the previous one.

Shape (``CityShape.for_scale``; scale 1.0 is a full city-year of Kunshan):

=========================  ===========  ==========  ==========  =========
what                       scale 1.0    0.1         0.01        0.001
=========================  ===========  ==========  ==========  =========
centre                     1            1           1           1
institutes (所)            15           15          3           3
stations (站)              342          34          4           4
points (点)                114          11          3           3
bases (基地)               93           9           3           3
corps / brigades / teams   6/294/2700   1/29/270    1/3/27      1/2/4
volunteers                 570,000      57,000      5,700       570
activities                 180,000      18,000      1,800       180
orders                     240,000      24,000      2,400       240
lines (measured)           12.1 M       1.21 M      120 k       11 k
=========================  ===========  ==========  ==========  =========

Minimums keep a tiny city whole: at least 3 institutes (15 from scale 0.1),
one more station than institutes, 3 points, 3 bases, one corps (one per
"5+X" platform at full scale), 2 brigades, 4 teams, 60 volunteers,
20 activities and 20 orders. Residents are not registered; they appear as
actors and raters drawn from 2.1 M × scale ids.

The timeline, in China Standard Time (Asia/Shanghai has kept +08:00 without
daylight saving since 1991, so a fixed offset is exact):

- 20 November of the year before: the venue network is registered; on the
  21st the teams; from the 22nd to the 30th the volunteers already on the
  platform (88 %) are migrated in by centre staff. The other 12 % register
  themselves during the year, most in March (学雷锋月) and December.
- Activities start on every day of ``year`` (more at weekends and in March,
  fewer in February, the Spring Festival), at a station (55 %), institute, point,
  base or the centre, in one of the "5+X" categories, lasting 1–8 hours, and
  are published 7–28 days ahead. About a quarter fill their capacity.
  Of the sign-ups 8 % are cancelled and 10 % are no-shows (a fifth of whom get
  make-up hours entered by staff with a reason); the rest check in and out.
  Staff review the sessions 1–72 hours after the end: 2.5 % of verified and
  10 % of make-up sessions are rejected, the rest approved. Afterwards a few
  volunteers ask for a correction (0.6 %; 55 % corrected, the rest declined),
  staff correct a few sessions themselves (0.3 %) and void some (0.25 %, plus
  0.03 % of verified and 1 % of make-up sessions voided with ``fraud``).
  Residents give each activity up to five ratings (1.6 on average), mostly
  4–5 stars. Nobody forgets to check out: the ledger cannot close an open
  session once the check-out window has passed, and an open session blocks
  every later check-in of that volunteer.
- Residents post orders (55 % micro-wishes) every day of ``year``. The centre
  dispatches each within a day (8 % are dispatched again), a team or one to
  three volunteers accept it, and staff mark it fulfilled; three in four
  fulfilled orders are rated, mostly 4–5 stars. 3 % are withdrawn by the
  resident; of the rest 96 % are fulfilled (a low-discrepancy sequence keeps
  that share steady even in a tiny city), 1.5 % rejected at vetting and
  2.5 % expire after 30 days.
- Reviews, corrections and ratings of December's service spill into the
  next January; everything posted in ``year`` is settled by the end.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import orjson

from ledger.services import DEFAULT_SCALE

CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8))
MINUTE: Final = 60
HOUR: Final = 3_600
DAY: Final = 86_400

STAFF: Final = "venue_staff"
VOLUNTEER: Final = "volunteer"
RESIDENT: Final = "resident"
DISPATCHER: Final = "dispatcher"


@dataclass(frozen=True)
class CityShape:
    """How many of each thing a generated city holds (scale 1.0 = Kunshan)."""

    institutes: int
    stations: int
    points: int
    bases: int
    corps: int
    brigades: int
    teams: int
    volunteers: int
    activities: int
    orders: int
    residents: int

    @classmethod
    def for_scale(cls, scale: float) -> CityShape:
        if not scale > 0:
            raise ValueError(f"scale must be positive, not {scale!r}")

        def scaled(full: int, least: int) -> int:
            return max(least, round(full * scale))

        institutes = min(15, max(3, math.ceil(150 * scale)))
        return cls(
            institutes=institutes,
            stations=scaled(342, institutes + 1),
            points=scaled(114, 3),
            bases=scaled(93, 3),
            corps=min(len(PLATFORMS), scaled(6, 1)),
            brigades=scaled(294, 2),
            teams=scaled(2_700, 4),
            volunteers=scaled(570_000, 60),
            activities=scaled(180_000, 20),
            orders=scaled(240_000, 20),
            residents=scaled(2_100_000, 500),
        )


def generate_city(
    scale: float = DEFAULT_SCALE, seed: int = 2022, year: int = 2024
) -> Iterator[dict[str, Any]]:
    """The interchange lines of one synthetic city-year, in business-time order."""
    generator = _CityGenerator(CityShape.for_scale(scale), random.Random(seed), year)
    key_prefix = f"demo-{year}-{seed}-{scale:g}"
    for number, (at, _, type_, actor_id, role, fields) in enumerate(
        generator.entries(), start=1
    ):
        yield {
            "type": type_,
            "at": _iso(at),
            "actor": {"id": actor_id, "role": role},
            "key": f"{key_prefix}-{number}",
            **fields,
        }


def write_city(
    path: Path, scale: float = DEFAULT_SCALE, seed: int = 2022, year: int = 2024
) -> int:
    """Write the city as JSON Lines (UTF-8) to ``path``; returns the line count."""
    count = 0
    with path.open("wb") as out:
        for line in generate_city(scale, seed, year):
            out.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, CHINA_STANDARD_TIME).isoformat()


def _epoch(day: date) -> int:
    """The first second of ``day`` in China Standard Time."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=CHINA_STANDARD_TIME)
    return int(midnight.timestamp())


# --- vocabularies ------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TOWNS: Final = _words(
    "玉山镇 巴城镇 周市镇 陆家镇 花桥镇 张浦镇 千灯镇 淀山湖镇 周庄镇 锦溪镇 "
    "开发区 高新区 亭林街道 玉峰街道 城北街道"
)
COMMUNITY_STEMS: Final = _words(
    "春晖 新城 玉湖 柏庐 亭林 文峰 金星 前进 朝阳 青阳 娄江 同心 和平 东方 西塘 "
    "南港 北门 晨曦 绿地 康居 振华 富士 兵希 天福 石浦 大市 夏驾 蓬朗 新镇 晟泰"
)
NUMERALS: Final = ("", *_words("二 三 四 五 六 七 八 九 十 十一 十二"))
# The ten kinds of point and the ten categories of base in Kunshan.
POINT_KINDS: Final = (
    ("mall", "城市综合体"),
    ("firm", "规上企业"),
    ("transport_hub", "交通站点"),
    ("building_site", "工友益站"),
    ("scenic_spot", "旅游景区"),
    ("market", "农贸市场"),
    ("office_tower", "商务楼宇"),
    ("park", "公园广场"),
    ("hospital", "医院"),
    ("elderly_care", "养老机构"),
)
BASE_KINDS: Final = (
    ("red_heritage", "红色印记"),
    ("spirit_of_the_times", "时代精神"),
    ("notable_figures", "名人先贤"),
    ("talent_innovation", "人才科创"),
    ("green_ecology", "绿色生态"),
    ("traditional_culture", "传统文化"),
    ("rule_of_law", "法治教育"),
    ("rural_revitalisation", "乡村振兴"),
    ("family_virtue", "家风家教"),
    ("sports_health", "体育健康"),
)
PLATFORMS: Final = _words("理论宣讲 教育服务 文化服务 科技科普 健康促进 综合")

CATEGORIES: Final = ("theory", "education", "culture", "science", "health", "other")
CATEGORY_WEIGHTS: Final = (0.15, 0.20, 0.22, 0.12, 0.18, 0.13)
ACTIVITY_TITLES: Final = {
    "theory": _words("理论微宣讲进社区 百姓名嘴讲党史 理论集市宣讲超市 政策解读面对面"),
    "education": _words("四点半课堂 未成年人社会实践体验 暑期托管课堂 家庭教育讲座"),
    "culture": _words("我陪爸妈看大戏 昆曲进社区 书法春联送万家 广场文艺汇演"),
    "science": _words("科普进社区 反诈宣传进万家 智能手机使用培训 垃圾分类科普"),
    "health": _words("义诊进社区 全民健身太极拳 健康知识讲座 无偿献血宣传"),
    "other": _words("文明交通劝导 河道巡护 关爱新昆山人 敬老院走访慰问"),
}
WISHES: Final = _words(
    "独居老人希望有人每周陪伴聊天 孩子想要一套课外读物 希望得到一台助听器 "
    "留守儿童想学习画画 行动不便老人需要代购生活用品 希望有人教老人使用智能手机"
)
SERVICE_NEEDS: Final = _words(
    "小区楼道堆物需要清理 希望开展防诈骗宣传 需要志愿者辅导孩子作业 "
    "希望在社区开展义诊 需要志愿者协助加装电梯宣传 希望组织垃圾分类指导"
)
SURNAMES: Final = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
    "袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦"
)
GIVEN_CHARACTERS: Final = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉萍文辉力晨宇"
    "浩然欣怡子涵梓轩雨桐思远嘉乐佳琪一鸣"
)
# Where ID numbers were issued: Kunshan itself, the rest of Jiangsu, and the
# home counties of 新昆山人 (people who moved to Kunshan for work).
REGION_CODES: Final = (
    ("320583", 0.60),
    ("320581", 0.04),
    ("320923", 0.04),
    ("321323", 0.03),
    ("341221", 0.06),
    ("412726", 0.05),
    ("511321", 0.05),
    ("522121", 0.04),
    ("430524", 0.03),
    ("362330", 0.03),
    ("372922", 0.03),
)
GB11643_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

MAKEUP_REASONS: Final = (
    "忘记签到，经活动负责人核实全程在岗",
    "手机没电未能签到，负责人确认全程参与",
    "签到系统故障，按纸质签到表补录",
    "户外活动无网络信号，按现场签到表补录",
)
SESSION_REJECTIONS: Final = (
    "签到地点与活动地点不符",
    "未按要求完成服务内容",
    "活动照片中未见本人",
)
MAKEUP_REJECTIONS: Final = ("补录材料不全，请补充现场签到表", "负责人未能确认在岗")
CORRECTION_REQUESTS: Final = (
    "提前到岗协助布置场地，签到时间晚于实际到岗",
    "活动结束后协助清场，签退过早",
)
CORRECTION_DECLINES: Final = ("经核对签到签退记录与现场照片，原时长无误",)
CORRECTIONS: Final = (
    "经活动负责人核实，按实际服务时长更正",
    "签退时间晚于实际离场时间，按活动记录核减",
)
VOIDS: Final = ("活动重复录入，作废重复记录", "该岗位当日未实际开展")
FRAUD_VOIDS: Final = ("代签到，经核查属实", "补录材料经核查不实")
ORDER_WITHDRAWALS: Final = ("需求已自行解决", "时间有变，暂不需要", "家人已帮忙解决")
ORDER_REJECTIONS: Final = ("不属于志愿服务范围", "重复提交的需求", "涉及商业经营的需求")
RATING_COMMENTS: Final = (
    "服务很贴心",
    "志愿者非常耐心",
    "希望多组织类似活动",
    "很及时",
)

# Activities per start day follow the season and the week.
MONTH_WEIGHTS: Final = (0.9, 0.75, 1.35, 1.0, 1.0, 0.95, 1.1, 1.1, 1.0, 0.9, 1.0, 1.1)
WEEKDAY_WEIGHTS: Final = (0.8, 0.8, 0.8, 0.8, 0.85, 1.6, 1.4)
ORDER_WEEKDAY_WEIGHTS: Final = (1.0, 1.0, 1.0, 1.0, 1.0, 1.15, 1.1)
REGISTRATION_MONTH_WEIGHTS: Final = (
    0.8,
    0.6,
    2.0,
    1.0,
    0.9,
    0.8,
    1.1,
    1.1,
    0.9,
    0.8,
    0.9,
    1.6,
)
START_TIMES: Final = _words(
    "08:30 09:00 09:00 09:30 10:00 14:00 14:00 14:30 15:00 19:00"
)
DURATIONS: Final = (60, 90, 120, 120, 120, 150, 180, 180, 240, 480)
CAPACITIES: Final = (6, 8, 10, 10, 12, 15, 15, 20, 20, 20, 25, 30, 30, 40, 50)
ACTIVITY_VENUE_LEVELS: Final = (
    ("station", 0.55),
    ("institute", 0.15),
    ("point", 0.14),
    ("base", 0.12),
    ("centre", 0.04),
)
ORDER_VENUE_LEVELS: Final = (
    ("station", 0.70),
    ("institute", 0.15),
    ("point", 0.10),
    ("centre", 0.05),
)

INITIAL_VOLUNTEER_SHARE: Final = 0.88
FULL_ACTIVITY_SHARE: Final = 0.25
CANCEL_SHARE: Final = 0.08
NO_SHOW_SHARE: Final = 0.10
MAKEUP_SHARE: Final = 0.20
SESSION_REJECT_SHARE: Final = 0.025
MAKEUP_REJECT_SHARE: Final = 0.10
WITHDRAWN_SHARE: Final = 0.03
FULFILLED_SHARE: Final = 0.96  # of the orders not withdrawn
REJECTED_ORDER_SHARE: Final = 0.015  # of the orders not withdrawn
ORDER_EXPIRY: Final = 30 * DAY
GOLDEN_RATIO_STEP: Final = 0.6180339887498949


# --- the generator -----------------------------------------------------------

# A planned line: (at, planning order, type, actor id, actor role, fields).
Entry = tuple[int, int, str, str, str, dict[str, Any]]
# A step in an order's story: (at, type, actor id, actor role, fields).
Step = tuple[int, str, str, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Venue:
    venue_id: str
    level: str
    town: int | None  # index of its institute (所); None for the centre
    staff: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Draft:
    """An activity chosen for a start day, waiting for its publication day."""

    starts_at: int
    ends_at: int
    venue: _Venue
    category: str
    capacity: int


class _Pool:
    """Volunteers to draw from, weighted by how active each one is."""

    __slots__ = ("cumulative", "members")

    def __init__(self) -> None:
        self.members: list[int] = []
        self.cumulative: list[float] = []

    def add(self, volunteer: int, weight: float) -> None:
        self.members.append(volunteer)
        total = self.cumulative[-1] if self.cumulative else 0.0
        self.cumulative.append(total + weight)

    def draw(self, rng: random.Random) -> int:
        point = rng.random() * self.cumulative[-1]
        index = min(bisect_right(self.cumulative, point), len(self.members) - 1)
        return self.members[index]


class _Timeline:
    """Planned lines, released in order of time (then of planning)."""

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._planned = 0

    def add(self, at: int, type_: str, actor_id: str, role: str, **fields: Any) -> None:
        self._planned += 1
        heapq.heappush(self._heap, (at, self._planned, type_, actor_id, role, fields))

    def release_before(self, moment: int | None) -> Iterator[Entry]:
        heap = self._heap
        while heap and (moment is None or heap[0][0] < moment):
            yield heapq.heappop(heap)


class _CityGenerator:
    """Plans the city day by day and releases its lines in time order.

    Each day first plans what begins that day (registrations, publications
    with every later step of those activities, orders with their whole
    lifecycle), then releases every planned line dated before the next day.
    Memory holds only the lines planned for the weeks ahead and a little
    per volunteer (their weight and the time they have promised).
    """

    def __init__(self, shape: CityShape, rng: random.Random, year: int) -> None:
        self.shape = shape
        self.rng = rng
        self.year = year
        self.timeline = _Timeline()
        self.venues: dict[str, list[_Venue]] = {}
        self.team_ids: list[str] = []
        self.team_leaders: dict[str, str] = {}
        self.volunteer_ids: list[str] = []
        self.weights: list[float] = []
        self.towns: list[int] = []
        self.reserved: list[list[tuple[int, int]]] = []
        self.issued_id_numbers: set[str] = set()
        self.awaiting_admission: list[int] = []
        self.town_pools = [_Pool() for _ in range(shape.institutes)]
        # Volunteers live in towns in proportion to their stations.
        self.town_numbers = range(shape.institutes)
        self.town_weights = [1] * shape.institutes
        self.city_pool = _Pool()
        self.drafts: dict[int, list[_Draft]] = {}
        self.activity_count = 0
        self.order_count = 0
        self.order_phase = rng.random()
        self.centre_staff = "staff-KS-C-1"
        self.dispatcher = "dispatch-KS-C"

    # --- the day loop --------------------------------------------------

    def entries(self) -> Iterator[Entry]:
        setup_day = date(self.year - 1, 11, 20)
        migration_days = [setup_day + timedelta(days=2 + i) for i in range(9)]
        first_day_of_year = date(self.year, 1, 1)
        last_day_of_year = date(self.year, 12, 31)
        year_days = (last_day_of_year - first_day_of_year).days + 1
        activity_weights = _day_weights(first_day_of_year, year_days, WEEKDAY_WEIGHTS)
        order_weights = _day_weights(
            first_day_of_year, year_days, ORDER_WEEKDAY_WEIGHTS
        )
        registration_weights = [
            REGISTRATION_MONTH_WEIGHTS[
                (first_day_of_year + timedelta(days=i)).month - 1
            ]
            for i in range(year_days)
        ]
        initial = round(self.shape.volunteers * INITIAL_VOLUNTEER_SHARE)
        newcomers = _spread(
            self.shape.volunteers - initial, registration_weights, self.rng
        )
        activities = _spread(self.shape.activities, activity_weights, self.rng)
        orders = _spread(self.shape.orders, order_weights, self.rng)
        migrants = _spread(initial, [1.0] * len(migration_days), self.rng)

        day = setup_day
        while day <= last_day_of_year:
            start = _epoch(day)
            if day == setup_day:
                self._register_venues(start + 8 * HOUR + 30 * MINUTE)
            elif day == setup_day + timedelta(days=1):
                self._register_teams(start + 9 * HOUR)
            elif day in migration_days:
                self._migrate_volunteers(start, migrants[migration_days.index(day)])
            # Activities are drafted four weeks before they start, and each
            # is published 7–28 days ahead of its start.
            draft_day = day + timedelta(days=28)
            if first_day_of_year <= draft_day <= last_day_of_year:
                index = (draft_day - first_day_of_year).days
                self._draft_activities(draft_day, activities[index])
            for draft in self.drafts.pop(day.toordinal(), []):
                self._publish_activity(draft, start)
            if day.year == self.year:
                index = (day - first_day_of_year).days
                self._register_newcomers(start, newcomers[index])
                for _ in range(orders[index]):
                    self._post_order(start)
            yield from self.timeline.release_before(start + DAY)
            self._admit_registered_volunteers()
            day += timedelta(days=1)
        yield from self.timeline.release_before(None)

    # --- venues and teams ----------------------------------------------

    def _register_venues(self, at: int) -> None:
        shape, rng = self.shape, self.rng
        centre = self._add_venue(at, "KS-C", "昆山市新时代文明实践中心", "centre", None)
        institutes = [
            self._add_venue(
                at + 20 * (i + 1),
                f"KS-I{i + 1:02d}",
                f"昆山市{TOWNS[i % len(TOWNS)]}新时代文明实践所",
                "institute",
                centre,
                town=i,
            )
            for i in range(shape.institutes)
        ]
        at += 20 * (shape.institutes + 1)
        stations = []
        for i in range(shape.stations):
            # Every institute gets a station before any gets a second one.
            town = i if i < shape.institutes else rng.randrange(shape.institutes)
            self.town_weights[town] += 1
            # 春晖社区, then 春晖二社区, 春晖三村 … once every stem is used.
            stem = COMMUNITY_STEMS[i % len(COMMUNITY_STEMS)]
            numeral = NUMERALS[i // len(COMMUNITY_STEMS) % len(NUMERALS)]
            place = f"{stem}{numeral}{'社区' if rng.random() < 0.6 else '村'}"
            name = f"{TOWNS[town % len(TOWNS)]}{place}新时代文明实践站"
            stations.append(
                self._add_venue(
                    at + 20 * i,
                    f"KS-S{i + 1:03d}",
                    name,
                    "station",
                    institutes[town],
                    town=town,
                )
            )
        at += 20 * shape.stations
        points = []
        for i in range(shape.points):
            kind, label = POINT_KINDS[i % len(POINT_KINDS)]
            parent = (
                rng.choice(stations) if rng.random() < 0.7 else rng.choice(institutes)
            )
            town_name = TOWNS[(parent.town or 0) % len(TOWNS)]
            name = f"{town_name}{label}新时代文明实践点{i + 1}"
            points.append(
                self._add_venue(
                    at + 20 * i,
                    f"KS-P{i + 1:03d}",
                    name,
                    "point",
                    parent,
                    town=parent.town,
                    kind=kind,
                )
            )
        at += 20 * shape.points
        for i in range(shape.bases):
            kind, label = BASE_KINDS[i % len(BASE_KINDS)]
            level = rng.choices(
                ("centre", "institute", "station", "point"), (1, 4, 4, 2)
            )[0]
            parents = {
                "centre": [centre],
                "institute": institutes,
                "station": stations,
                "point": points,
            }[level]
            chosen = rng.choice(parents)
            self._add_venue(
                at + 20 * i,
                f"KS-B{i + 1:03d}",
                f"{label}新时代文明实践基地{i + 1}",
                "base",
                chosen,
                town=chosen.town,
                kind=kind,
            )

    def _add_venue(
        self,
        at: int,
        venue_id: str,
        name: str,
        level: str,
        parent: _Venue | None,
        *,
        town: int | None = None,
        kind: str | None = None,
    ) -> _Venue:
        staff = tuple(f"staff-{venue_id}-{k}" for k in range(1, 3))
        venue = _Venue(venue_id, level, town, staff)
        self.venues.setdefault(level, []).append(venue)
        fields: dict[str, Any] = {
            "venue_id": venue_id,
            "name": name,
            "level": level,
            "parent_id": parent.venue_id if parent else None,
        }
        if kind is not None:
            fields["kind"] = kind
        self.timeline.add(at, "register_venue", self.centre_staff, STAFF, **fields)
        return venue

    def _register_teams(self, at: int) -> None:
        shape, rng = self.shape, self.rng
        corps = []
        for i in range(shape.corps):
            team_id = f"TC{i + 1:02d}"
            # One corps for the whole city, or one per "5+X" platform.
            platform = PLATFORMS[i % len(PLATFORMS)] if shape.corps > 1 else ""
            name = f"昆山市新时代文明实践{platform}志愿服务总队"
            corps.append(team_id)
            self._add_team(at + 10 * i, team_id, name, "corps", None)
        at += 10 * shape.corps
        brigades = []
        for i in range(shape.brigades):
            team_id = f"TB{i + 1:03d}"
            town = TOWNS[i % len(TOWNS)]
            platform = PLATFORMS[(i // len(TOWNS)) % len(PLATFORMS)]
            brigades.append(team_id)
            self._add_team(
                at + 10 * i,
                team_id,
                f"{town}{platform}志愿服务支队{i + 1}",
                "brigade",
                corps[i % len(corps)],
            )
        at += 10 * shape.brigades
        for i in range(shape.teams):
            team_id = f"T{i + 1:04d}"
            stem = COMMUNITY_STEMS[rng.randrange(len(COMMUNITY_STEMS))]
            self._add_team(
                at + 10 * i,
                team_id,
                f"{stem}志愿服务队{i + 1}",
                "team",
                rng.choice(brigades),
            )

    def _add_team(
        self, at: int, team_id: str, name: str, level: str, parent_id: str | None
    ) -> None:
        if level != "corps":
            self.team_ids.append(team_id)
        self.timeline.add(
            at,
            "register_team",
            self.centre_staff,
            STAFF,
            team_id=team_id,
            name=name,
            level=level,
            parent_id=parent_id,
        )

    # --- volunteers ----------------------------------------------------

    def _migrate_volunteers(self, day_start: int, count: int) -> None:
        """Volunteers already on the platform, entered by centre staff."""
        if count == 0:
            return
        step = 14 * HOUR / count
        for i in range(count):
            at = day_start + 8 * HOUR + int(i * step)
            self._register_volunteer(at, self.centre_staff, STAFF)

    def _register_newcomers(self, day_start: int, count: int) -> None:
        """Volunteers who sign themselves up on the platform during the year."""
        times = sorted(self.rng.randint(7 * HOUR, 23 * HOUR) for _ in range(count))
        for offset in times:
            self._register_volunteer(day_start + offset, None, VOLUNTEER)

    def _register_volunteer(self, at: int, actor_id: str | None, role: str) -> None:
        rng = self.rng
        index = len(self.volunteer_ids)
        volunteer_id = f"V{index + 1:07d}"
        # Most registered volunteers serve rarely; a few carry much of the work.
        kind = rng.random()
        if kind < 0.02:
            weight = rng.uniform(10.0, 30.0)
        elif kind < 0.52:
            weight = rng.lognormvariate(0.0, 1.0)
        else:
            weight = 0.05
        self.volunteer_ids.append(volunteer_id)
        self.weights.append(weight)
        self.towns.append(rng.choices(self.town_numbers, self.town_weights)[0])
        self.reserved.append([])
        self.awaiting_admission.append(index)
        fields: dict[str, Any] = {
            "volunteer_id": volunteer_id,
            "name": self._person_name(),
            "id_number": self._id_number(),
        }
        if rng.random() < 0.9:
            fields["phone"] = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        membership = rng.random()
        if membership < 0.78 and self.team_ids:
            teams = [rng.choice(self.team_ids)]
            if membership < 0.08:
                other = rng.choice(self.team_ids)
                if other != teams[0]:
                    teams.append(other)
            fields["team_ids"] = teams
            for team_id in teams:
                self.team_leaders.setdefault(team_id, volunteer_id)
        self.timeline.add(
            at, "register_volunteer", actor_id or volunteer_id, role, **fields
        )

    def _person_name(self) -> str:
        rng = self.rng
        given = "".join(
            rng.choice(GIVEN_CHARACTERS) for _ in range(rng.choice((1, 2, 2)))
        )
        return rng.choice(SURNAMES) + given

    def _id_number(self) -> str:
        """A fresh resident ID number (GB 11643) with its check digit."""
        rng = self.rng
        regions = [code for code, _ in REGION_CODES]
        shares = [share for _, share in REGION_CODES]
        while True:
            region = rng.choices(regions, shares)[0]
            youngest, oldest = rng.choices(((16, 25), (26, 59), (60, 75)), (2, 6, 2))[0]
            age = rng.randint(youngest, oldest)
            birth = date(self.year - age, 1, 1) + timedelta(days=rng.randrange(365))
            body = f"{region}{birth:%Y%m%d}{rng.randrange(1000):03d}"
            total = sum(int(d) * w for d, w in zip(body, GB11643_WEIGHTS, strict=True))
            id_number = body + "10X98765432"[total % 11]
            if id_number not in self.issued_id_numbers:
                self.issued_id_numbers.add(id_number)
                return id_number

    def _admit_registered_volunteers(self) -> None:
        """Volunteers registered today may be drawn for anything planned later."""
        for index in self.awaiting_admission:
            weight = self.weights[index]
            self.town_pools[self.towns[index]].add(index, weight)
            self.city_pool.add(index, weight)
        self.awaiting_admission.clear()

    def _pool_for(self, town: int | None) -> _Pool:
        """Mostly neighbours of the venue, sometimes anyone in the city."""
        if town is None or self.rng.random() < 0.15:
            return self.city_pool
        pool = self.town_pools[town]
        return pool if pool.members else self.city_pool

    def _draw_free_volunteers(
        self, town: int | None, wanted: int, start: int, end: int
    ) -> list[int]:
        """Up to ``wanted`` volunteers free over [start, end), who promise it."""
        chosen: list[int] = []
        taken: set[int] = set()
        for _ in range(wanted * 3):
            if len(chosen) == wanted:
                break
            volunteer = self._pool_for(town).draw(self.rng)
            if volunteer in taken:
                continue
            promised = self.reserved[volunteer]
            if any(s < end and start < e for s, e in promised):
                continue
            taken.add(volunteer)
            chosen.append(volunteer)
            if len(promised) > 8:
                promised[:] = [(s, e) for s, e in promised if e > start - 40 * DAY]
            promised.append((start, end))
        return chosen

    # --- activities ----------------------------------------------------

    def _draft_activities(self, day: date, count: int) -> None:
        rng = self.rng
        day_start = _epoch(day)
        for _ in range(count):
            hour, minute = map(int, rng.choice(START_TIMES).split(":"))
            duration = rng.choice(DURATIONS if hour < 18 else DURATIONS[:3])
            if hour >= 14:
                duration = min(duration, 240)
            starts_at = day_start + hour * HOUR + minute * MINUTE
            draft = _Draft(
                starts_at=starts_at,
                ends_at=starts_at + duration * MINUTE,
                venue=self._pick_venue(ACTIVITY_VENUE_LEVELS),
                category=rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0],
                capacity=rng.choice(CAPACITIES),
            )
            publication_day = day.toordinal() - rng.randint(7, 28)
            self.drafts.setdefault(publication_day, []).append(draft)

    def _pick_venue(self, levels: tuple[tuple[str, float], ...]) -> _Venue:
        names = [level for level, _ in levels]
        shares = [share for _, share in levels]
        level = self.rng.choices(names, shares)[0]
        return self.rng.choice(self.venues[level])

    def _publish_activity(self, draft: _Draft, day_start: int) -> None:
        """Publish an activity and plan everything that follows from it."""
        rng = self.rng
        self.activity_count += 1
        activity_id = f"A{self.year}-{self.activity_count:06d}"
        staff = rng.choice(draft.venue.staff)
        published = day_start + rng.randint(9 * HOUR, 17 * HOUR + 30 * MINUTE)
        self.timeline.add(
            published,
            "publish_activity",
            staff,
            STAFF,
            activity_id=activity_id,
            venue_id=draft.venue.venue_id,
            category=draft.category,
            title=rng.choice(ACTIVITY_TITLES[draft.category]),
            starts_at=_iso(draft.starts_at),
            ends_at=_iso(draft.ends_at),
            capacity=draft.capacity,
        )
        sessions, no_shows = self._sign_up_and_serve(activity_id, draft, published)
        # Staff review the activity's sessions in one sitting after it ends.
        reviewed = draft.ends_at + rng.randint(HOUR, 72 * HOUR)
        reviewed = self._review_sessions(sessions, staff, reviewed)
        self._record_makeup_hours(activity_id, draft, no_shows, staff, reviewed)
        self._rate_activity(activity_id, draft.ends_at, attendees=len(sessions))

    def _sign_up_and_serve(
        self, activity_id: str, draft: _Draft, published: int
    ) -> tuple[list[tuple[str, str, int]], list[str]]:
        """Sign-ups, cancellations and check-ins; returns the sessions
        (id, volunteer, minutes) and the volunteers who never came."""
        rng, add = self.rng, self.timeline.add
        start, end = draft.starts_at, draft.ends_at
        fill = 1.0 if rng.random() < FULL_ACTIVITY_SHARE else rng.uniform(0.35, 0.95)
        wanted = max(1, round(draft.capacity * fill))
        # A volunteer's time is promised from an hour before to an hour after,
        # more than a session at this activity could stretch.
        volunteers = self._draw_free_volunteers(
            draft.venue.town, wanted, start - HOUR, end + HOUR
        )
        # Sign-ups come soonest after publication and close two hours ahead.
        opens, closes = published + MINUTE, start - 2 * HOUR
        sign_up_times = sorted(
            opens + int((closes - opens) * rng.random() ** 2) for _ in volunteers
        )
        sessions: list[tuple[str, str, int]] = []
        no_shows: list[str] = []
        for number, (volunteer, signed_up) in enumerate(
            zip(volunteers, sign_up_times, strict=True), start=1
        ):
            volunteer_id = self.volunteer_ids[volunteer]
            sign_up = {"activity_id": activity_id, "volunteer_id": volunteer_id}
            add(signed_up, "sign_up", volunteer_id, VOLUNTEER, **sign_up)
            fate = rng.random()
            if fate < CANCEL_SHARE:
                cancelled = (
                    signed_up + MINUTE + int((closes - signed_up) * rng.random())
                )
                add(cancelled, "cancel_sign_up", volunteer_id, VOLUNTEER, **sign_up)
            elif fate < CANCEL_SHARE + NO_SHOW_SHARE:
                no_shows.append(volunteer_id)
            else:
                session_id = f"{activity_id}-{number:03d}"
                checked_in, checked_out = self._session_times(start, end)
                add(
                    checked_in,
                    "check_in",
                    volunteer_id,
                    VOLUNTEER,
                    session_id=session_id,
                    **sign_up,
                )
                add(
                    checked_out,
                    "check_out",
                    volunteer_id,
                    VOLUNTEER,
                    session_id=session_id,
                )
                minutes = (checked_out - checked_in) // MINUTE
                sessions.append((session_id, volunteer_id, minutes))
        return sessions, no_shows

    def _review_sessions(
        self, sessions: list[tuple[str, str, int]], staff: str, reviewed: int
    ) -> int:
        """Approve or reject each session; returns when the review ended."""
        rng, add = self.rng, self.timeline.add
        for session_id, volunteer_id, minutes in sessions:
            reviewed += rng.randint(5, 90)
            if rng.random() < SESSION_REJECT_SHARE:
                add(
                    reviewed,
                    "reject_session",
                    staff,
                    STAFF,
                    session_id=session_id,
                    reason=rng.choice(SESSION_REJECTIONS),
                )
                continue
            add(reviewed, "approve_session", staff, STAFF, session_id=session_id)
            self._after_approval(session_id, volunteer_id, minutes, reviewed, staff)
        return reviewed

    def _record_makeup_hours(
        self,
        activity_id: str,
        draft: _Draft,
        no_shows: list[str],
        staff: str,
        reviewed: int,
    ) -> None:
        """补录 for some who signed up but never checked in."""
        rng, add = self.rng, self.timeline.add
        scheduled = (draft.ends_at - draft.starts_at) // MINUTE
        for number, volunteer_id in enumerate(no_shows, start=1):
            if rng.random() >= MAKEUP_SHARE:
                continue
            session_id = f"{activity_id}-M{number:02d}"
            full = rng.random() < 0.6
            minutes = scheduled if full else rng.randint(scheduled // 2, scheduled)
            reviewed += rng.randint(30, 300)
            add(
                reviewed,
                "record_makeup_hours",
                staff,
                STAFF,
                session_id=session_id,
                volunteer_id=volunteer_id,
                activity_id=activity_id,
                minutes=minutes,
                reason=rng.choice(MAKEUP_REASONS),
            )
            decided = reviewed + rng.randint(10 * MINUTE, 48 * HOUR)
            if rng.random() < MAKEUP_REJECT_SHARE:
                add(
                    decided,
                    "reject_session",
                    staff,
                    STAFF,
                    session_id=session_id,
                    reason=rng.choice(MAKEUP_REJECTIONS),
                )
                continue
            add(decided, "approve_session", staff, STAFF, session_id=session_id)
            if rng.random() < 0.01:
                add(
                    decided + rng.randint(3 * DAY, 40 * DAY),
                    "void_session",
                    staff,
                    STAFF,
                    session_id=session_id,
                    reason=FRAUD_VOIDS[1],
                    fraud=True,
                )

    def _rate_activity(self, activity_id: str, ends_at: int, attendees: int) -> None:
        rng = self.rng
        raters = min(attendees, rng.choices((0, 1, 2, 3, 5), (30, 25, 20, 15, 10))[0])
        for rater in self._residents(raters):
            self.timeline.add(
                ends_at + rng.randint(30 * MINUTE, 72 * HOUR),
                "rate",
                rater,
                RESIDENT,
                subject="activity",
                subject_id=activity_id,
                rater_id=rater,
                stars=self._stars(),
                **self._comment(),
            )

    def _session_times(self, start: int, end: int) -> tuple[int, int]:
        """Check-in from 50 minutes early to mid-activity; check-out after it,
        at most 30 minutes past the end."""
        rng = self.rng
        arrival = rng.random()
        if arrival < 0.80:
            checked_in = start - rng.randint(0, 40 * MINUTE)
        elif arrival < 0.95:
            checked_in = start + rng.randint(0, min(30 * MINUTE, (end - start) // 2))
        else:
            checked_in = start - rng.randint(40 * MINUTE, 50 * MINUTE)
        departure = rng.random()
        if departure < 0.70:
            checked_out = end + rng.randint(0, 30 * MINUTE)
        elif departure < 0.90:
            checked_out = end - rng.randint(
                0, min(30 * MINUTE, (end - checked_in) // 3)
            )
        else:
            checked_out = checked_in + int((end - checked_in) * rng.uniform(0.4, 0.9))
        return checked_in, max(checked_out, checked_in + 5 * MINUTE)

    def _after_approval(
        self,
        session_id: str,
        volunteer_id: str,
        minutes: int,
        approved: int,
        staff: str,
    ) -> None:
        """The rare later story of an approved verified session."""
        rng, add = self.rng, self.timeline.add
        story = rng.random()
        if story < 0.006:
            requested = approved + rng.randint(DAY, 20 * DAY)
            asked = min(minutes + rng.choice((15, 20, 30, 45, 60)), 24 * 60)
            if asked == minutes:
                return
            add(
                requested,
                "request_correction",
                volunteer_id,
                VOLUNTEER,
                session_id=session_id,
                minutes=asked,
                reason=rng.choice(CORRECTION_REQUESTS),
            )
            decided = requested + rng.randint(2 * HOUR, 5 * DAY)
            if rng.random() < 0.55:
                add(
                    decided,
                    "correct_session",
                    staff,
                    STAFF,
                    session_id=session_id,
                    minutes=asked,
                    reason=CORRECTIONS[0],
                )
            else:
                add(
                    decided,
                    "decline_correction",
                    staff,
                    STAFF,
                    session_id=session_id,
                    reason=CORRECTION_DECLINES[0],
                )
        elif story < 0.009:
            corrected = minutes - rng.randint(10, 60)
            if corrected >= 1:
                add(
                    approved + rng.randint(DAY, 30 * DAY),
                    "correct_session",
                    staff,
                    STAFF,
                    session_id=session_id,
                    minutes=corrected,
                    reason=CORRECTIONS[1],
                )
        elif story < 0.0115:
            add(
                approved + rng.randint(DAY, 40 * DAY),
                "void_session",
                staff,
                STAFF,
                session_id=session_id,
                reason=rng.choice(VOIDS),
                fraud=False,
            )
        elif story < 0.0118:
            add(
                approved + rng.randint(3 * DAY, 40 * DAY),
                "void_session",
                staff,
                STAFF,
                session_id=session_id,
                reason=FRAUD_VOIDS[0],
                fraud=True,
            )

    # --- orders --------------------------------------------------------

    def _post_order(self, day_start: int) -> None:
        """A resident posts an order; plan its whole story."""
        rng = self.rng
        self.order_count += 1
        order_id = f"O{self.year}-{self.order_count:06d}"
        venue = self._pick_venue(ORDER_VENUE_LEVELS)
        wish = rng.random() < 0.55
        resident = self._residents(1)[0]
        posted = day_start + rng.randint(7 * HOUR, 22 * HOUR)
        self.timeline.add(
            posted,
            "post_order",
            resident,
            RESIDENT,
            order_id=order_id,
            kind="wish" if wish else "service",
            venue_id=venue.venue_id,
            category=rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0],
            description=rng.choice(WISHES if wish else SERVICE_NEEDS),
        )
        outcome = self._next_order_outcome()
        steps: list[Step]
        if outcome == "rejected":
            rejected = posted + rng.randint(20 * MINUTE, 20 * HOUR)
            reason = {"reason": rng.choice(ORDER_REJECTIONS)}
            steps = [(rejected, "reject_order", self.dispatcher, DISPATCHER, reason)]
        else:
            steps = self._dispatch_steps(venue, posted)
            if outcome == "expired":
                expired = posted + ORDER_EXPIRY
                steps.append((expired, "expire_order", self.dispatcher, DISPATCHER, {}))
            else:
                dispatched, *_, target = steps[-1]
                steps += self._acceptance_steps(venue, wish, dispatched, target)
        if outcome == "withdrawn":
            # The resident takes the order back at some point before it is done.
            cut = rng.randrange(len(steps))
            previous = steps[cut - 1][0] if cut else posted
            withdrawn = (
                previous + 1 + int((steps[cut][0] - previous - 1) * rng.random())
            )
            reason = {"reason": rng.choice(ORDER_WITHDRAWALS)}
            steps = [
                *steps[:cut],
                (withdrawn, "withdraw_order", resident, RESIDENT, reason),
            ]
        for at, type_, actor_id, role, fields in steps:
            self.timeline.add(at, type_, actor_id, role, order_id=order_id, **fields)
        if outcome == "fulfilled" and rng.random() < 0.75:
            self.timeline.add(
                steps[-1][0] + rng.randint(HOUR, 5 * DAY),
                "rate",
                resident,
                RESIDENT,
                subject="order",
                subject_id=order_id,
                rater_id=resident,
                stars=self._stars(),
                **self._comment(),
            )

    def _next_order_outcome(self) -> str:
        """How the next order ends; a low-discrepancy sequence keeps each
        outcome's share steady even over a few hundred orders."""
        self.order_phase = (self.order_phase + GOLDEN_RATIO_STEP) % 1.0
        if self.order_phase < WITHDRAWN_SHARE:
            return "withdrawn"
        share = (self.order_phase - WITHDRAWN_SHARE) / (1 - WITHDRAWN_SHARE)
        if share < FULFILLED_SHARE:
            return "fulfilled"
        if share < FULFILLED_SHARE + REJECTED_ORDER_SHARE:
            return "rejected"
        return "expired"

    def _dispatch_steps(self, venue: _Venue, posted: int) -> list[Step]:
        """中心派单 within a day, sometimes dispatched again elsewhere."""
        rng = self.rng
        at = posted + rng.randint(10 * MINUTE, 20 * HOUR)
        target = self._dispatch_target(venue, None)
        steps = [(at, "dispatch_order", self.dispatcher, DISPATCHER, target)]
        if rng.random() < 0.08:
            at += rng.randint(2 * HOUR, 3 * DAY)
            target = self._dispatch_target(venue, target)
            steps.append((at, "dispatch_order", self.dispatcher, DISPATCHER, target))
        return steps

    def _acceptance_steps(
        self, venue: _Venue, wish: bool, dispatched: int, target: dict[str, Any]
    ) -> list[Step]:
        """志愿接单 by the team it was dispatched to or by volunteers (a group
        may grow), then 圆梦销单 by the venue's staff."""
        rng = self.rng
        at = dispatched + rng.randint(10 * MINUTE, 3 * DAY)
        steps: list[Step] = []
        if "team_id" in target and rng.random() < 0.8:
            team_id = target["team_id"]
            leader = (
                self.team_leaders.get(team_id)
                or self.volunteer_ids[self.city_pool.draw(rng)]
            )
            steps.append((at, "accept_order", leader, VOLUNTEER, {"team_id": team_id}))
        else:
            pool = self._pool_for(venue.town)
            size = rng.choice((1, 1, 2, 3))
            group = [
                self.volunteer_ids[v]
                for v in {pool.draw(rng): None for _ in range(size)}
            ]
            steps.append(
                (at, "accept_order", group[0], VOLUNTEER, {"volunteer_ids": group})
            )
            if rng.random() < 0.06:
                joining = self.volunteer_ids[pool.draw(rng)]
                if joining not in group:
                    at += rng.randint(HOUR, 2 * DAY)
                    joined = {"volunteer_ids": [joining]}
                    steps.append((at, "accept_order", joining, VOLUNTEER, joined))
        at += rng.randint(HOUR, 10 * DAY) if wish else rng.randint(2 * HOUR, 14 * DAY)
        steps.append((at, "fulfil_order", rng.choice(venue.staff), STAFF, {}))
        return steps

    def _dispatch_target(
        self, venue: _Venue, current: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A venue of the order's town (or an institute) or a team, never the
        one the order is already dispatched to."""
        rng = self.rng
        if rng.random() < 0.6:
            if venue.town is None:
                candidates = self.venues["institute"]
            else:
                candidates = [
                    v for v in self.venues["station"] if v.town == venue.town
                ] + [self.venues["institute"][venue.town]]
            target: dict[str, Any] = {"venue_id": rng.choice(candidates).venue_id}
        else:
            target = {"team_id": rng.choice(self.team_ids)}
        while target == current:
            target = {"team_id": rng.choice(self.team_ids)}
        return target

    # --- residents and ratings -----------------------------------------

    def _residents(self, count: int) -> list[str]:
        """``count`` different residents."""
        chosen: dict[int, None] = {}
        while len(chosen) < count:
            chosen[self.rng.randrange(self.shape.residents)] = None
        return [f"R{number + 1:07d}" for number in chosen]

    def _stars(self) -> int:
        return self.rng.choices((5, 4, 3, 2, 1), (70, 20, 6, 2.5, 1.5))[0]

    def _comment(self) -> dict[str, str]:
        if self.rng.random() < 0.3:
            return {"comment": self.rng.choice(RATING_COMMENTS)}
        return {}


def _day_weights(
    first: date, days: int, weekday_weights: tuple[float, ...]
) -> list[float]:
    weights = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        weights.append(MONTH_WEIGHTS[day.month - 1] * weekday_weights[day.weekday()])
    return weights


def _spread(total: int, weights: list[float], rng: random.Random) -> list[int]:
    """Split ``total`` over the days in proportion to ``weights``, exactly
    (systematic sampling from one random offset)."""
    whole = sum(weights)
    offset = rng.random()
    counts: list[int] = []
    running = 0.0
    previous = math.floor(offset)
    for weight in weights:
        running += weight
        reached = math.floor(total * running / whole + offset)
        counts.append(reached - previous)
        previous = reached
    counts[-1] += total - sum(counts)
    return counts
