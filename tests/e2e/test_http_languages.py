"""The HTTP API answers problems in the language ``Accept-Language`` asks
for — Chinese for ``zh-CN``, English for ``en`` or no header — with the same
``code`` and ``type`` in every language (docs/i18n.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_helpers import Api, body, is_problem, open_api


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


def send(api: Api, command: str, language: str | None, **fields: Any) -> httpx.Response:
    headers = api.headers("admin")
    if language is not None:
        headers["Accept-Language"] = language
    response: httpx.Response = api.client.post(
        f"/commands/{command}", json=body(command, **fields), headers=headers
    )
    return response


SIGN_UP_AGAIN = {"activity_id": "A1", "volunteer_id": "V1"}


def test_a_rule_broken_is_told_in_chinese_to_a_chinese_reader(api: Api) -> None:
    response = send(api, "sign_up", "zh-CN,zh;q=0.9,en;q=0.8", **SIGN_UP_AGAIN)
    assert is_problem(response, 409, "already_signed_up"), response.text
    problem = response.json()
    assert problem["title"] == "已经报名"
    assert problem["detail"] == "志愿者“V1”已报名活动“A1”"
    assert response.headers["content-language"] == "zh-CN"
    assert "Accept-Language" in response.headers["vary"]


@pytest.mark.parametrize("language", ["en", "en-GB,zh;q=0.5", None])
def test_a_rule_broken_is_told_in_english_otherwise(
    api: Api, language: str | None
) -> None:
    response = send(api, "sign_up", language, **SIGN_UP_AGAIN)
    assert is_problem(response, 409, "already_signed_up"), response.text
    problem = response.json()
    assert problem["title"] == "Already signed up"
    assert problem["detail"] == "volunteer 'V1' is already signed up for 'A1'"
    assert response.headers["content-language"] == "en"


def test_code_and_type_are_the_same_in_every_language(api: Api) -> None:
    chinese = send(api, "sign_up", "zh-CN", **SIGN_UP_AGAIN).json()
    english = send(api, "sign_up", "en", **SIGN_UP_AGAIN).json()
    assert chinese["title"] != english["title"]
    assert (chinese["code"], chinese["type"]) == (english["code"], english["type"])


def test_a_malformed_body_names_each_field_in_chinese(api: Api) -> None:
    headers = {**api.headers("admin"), "Accept-Language": "zh-CN"}
    document = body("sign_up", activity_id="A1")
    document["at"] = "2024-03-01T09:00:00"  # no offset, and no volunteer_id
    response = api.client.post("/commands/sign_up", json=document, headers=headers)
    assert is_problem(response, 422, "invalid_time"), response.text
    problem = response.json()
    assert problem["title"] == "请求格式有误"
    assert problem["detail"] == (
        "body.at: 2024-03-01T09:00:00 没有时区偏移，请加上，如 +08:00; "
        "body.volunteer_id: 为必填项"
    )
    assert [e["msg"] for e in problem["errors"]][1:] == ["为必填项"]


def test_a_bound_broken_in_a_body_is_told_in_chinese(api: Api) -> None:
    response = send(
        api,
        "register_venue",
        "zh",
        venue_id="P9",
        name="点" * 101,
        level="point",
        parent_id="S1",
    )
    assert is_problem(response, 422, "text_too_long"), response.text
    assert "名称或标题最多 100 个字符，现有 101 个，请缩短" in response.json()["detail"]


def test_a_command_models_own_check_is_told_in_chinese(api: Api) -> None:
    response = send(
        api, "dispatch_order", "zh-CN", order_id="O1", venue_id="S1", team_id="T1"
    )
    assert is_problem(response, 422, "invalid_command"), response.text
    assert response.json()["detail"] == (
        "body: dispatch_order 须且只能有 venue_id 或 team_id 之一"
    )


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        ("zh-CN", "未找到", "志愿者“NOPE”未登记"),
        ("en", "Not found", "volunteer 'NOPE' is not registered"),
    ],
)
def test_an_unknown_volunteer_is_told_in_the_language_asked(
    api: Api, language: str, title: str, detail: str
) -> None:
    response = api.get("/volunteers/NOPE/hours", headers={"Accept-Language": language})
    assert is_problem(response, 404, "not_found"), response.text
    assert (response.json()["title"], response.json()["detail"]) == (title, detail)


def test_a_malformed_read_is_told_in_the_readers_language(api: Api) -> None:
    query = {"subject": "V1"}
    chinese = api.get("/audit/events", headers={"Accept-Language": "zh-CN"}, **query)
    english = api.get("/audit/events", headers={"Accept-Language": "en"}, **query)
    assert is_problem(chinese, 400, "invalid_read"), chinese.text
    assert is_problem(english, 400, "invalid_read"), english.text
    assert chinese.json()["title"] == "查询参数有误"
    assert (
        chinese.json()["detail"]
        == "对象应写作 类型:编号（如 volunteer:V001），而不是“V1”"
    )
    assert english.json()["detail"] == (
        "a subject is KIND:ID (e.g. volunteer:V001), not 'V1'"
    )


def test_a_role_refused_is_told_in_chinese(api: Api) -> None:
    response = api.get(
        "/volunteers/V1/hours", "venue_staff", headers={"Accept-Language": "zh-CN"}
    )
    assert is_problem(response, 403, "forbidden"), response.text
    assert response.json()["title"] == "此角色无权操作"
    assert response.json()["detail"] == "venue_staff 密钥不能使用此接口"


def test_a_scope_refused_is_told_in_each_language(api: Api) -> None:
    headers = {**api.headers("volunteer"), "Accept-Language": "zh-CN"}
    chinese = api.client.get("/volunteers/V2/hours", headers=headers)
    headers["Accept-Language"] = "en"
    english = api.client.get("/volunteers/V2/hours", headers=headers)
    assert is_problem(chinese, 403, "out_of_scope"), chinese.text
    assert chinese.json()["detail"] == "志愿者密钥只能查询其本人的记录"
    assert english.json()["detail"] == "a volunteer key reads only its own record"
    assert (chinese.json()["code"], chinese.json()["type"]) == (
        english.json()["code"],
        english.json()["type"],
    )


def test_a_body_too_large_is_told_in_chinese(api: Api) -> None:
    headers = {**api.headers("admin"), "Accept-Language": "zh-CN"}
    response = api.client.post(
        "/commands/sign_up", content=b"{" + b" " * 70_000 + b"}", headers=headers
    )
    assert is_problem(response, 413, "body_too_large"), response.text
    assert response.json()["detail"] == (
        "请求体最多 65,536 字节（64 KiB），即一条命令的上限；请每个请求只发送一条命令"
    )


def test_a_reused_idempotency_key_is_told_in_chinese(api: Api) -> None:
    headers = {**api.headers("admin"), "Idempotency-Key": "k-1"}
    first = api.client.post(
        "/commands/sign_up",
        json=body("sign_up", activity_id="A1", volunteer_id="V2"),
        headers=headers,
    )
    assert first.status_code == 201, first.text
    response = api.client.post(
        "/commands/sign_up",
        json=body("sign_up", activity_id="A2", volunteer_id="V1"),
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert is_problem(response, 422, "idempotency_key_reused"), response.text
    assert response.json()["title"] == "幂等键已被另一条命令使用"
