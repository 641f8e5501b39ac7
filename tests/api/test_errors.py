"""The domain-error table: curation errors get the status codes the API promises."""

from typing import Literal

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from api.errors import QueryLimitError, install_error_handlers
from api.security.sms import SmsDeliveryError
from geo.anchor_fields import FieldError
from geo.anchor_states import OutOfScopeError
from geo.curation import AnchorValidationError, StaleVersionError
from geo.errors import DoorstepError
from store.base import AnchorNotFoundError, DuplicateAnchorError
from store.sqlite_curation import StoreReplacedError


def _client(error: DoorstepError) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    return TestClient(app)


def _detail(error: DoorstepError, expected_status: int) -> dict[str, object]:
    response = _client(error).get("/boom")
    assert response.status_code == expected_status, response.text
    (detail,) = response.json()["detail"]
    return detail


def test_stale_version_is_409_with_current() -> None:
    detail = _detail(StaleVersionError("anc-1", expected_version=1, current_version=3), 409)
    assert detail["current_version"] == 3
    assert detail["msg_zh"] == "锚点已被他人修改，请刷新后重试"


def test_out_of_scope_looks_like_not_found() -> None:
    detail = _detail(OutOfScopeError("anchor 'anc-9' in 610113 is outside your scope"), 404)
    assert detail["msg"] == "not found"
    assert "anc-9" not in str(detail)


def test_missing_anchor_is_404() -> None:
    assert _detail(AnchorNotFoundError("anchor 'anc-2' not found"), 404)["msg_zh"]


def test_duplicate_credit_code_is_409() -> None:
    _detail(DuplicateAnchorError("credit code already used"), 409)


def test_validation_lists_chinese_messages() -> None:
    errors = [FieldError.of("contact_phone", "must be an organisation phone", rule="mobile_phone")]
    detail = _detail(AnchorValidationError("anc-3", errors), 422)
    assert detail["msg_zh"] == "联系电话须为单位电话，不能填写手机号码"


def test_store_replaced_is_503() -> None:
    detail = _detail(StoreReplacedError("store file was replaced by a rebuild"), 503)
    assert detail["msg_zh"] == "数据正在重建，请稍后重试"


def test_extra_field_names_itself() -> None:
    app = FastAPI()
    install_error_handlers(app)

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")

        title: str

    @app.post("/things")
    def create(body: Body) -> None:
        return None

    response = TestClient(app).post("/things", json={"title": "t", "name": "x"})

    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "name"]
    assert detail["type"] == "extra_forbidden"
    assert detail["msg_zh"] == "不接受字段 name"
    assert "图层名称" not in detail["msg_zh"]


def test_body_field_not_labelled_as_parameter() -> None:
    app = FastAPI()
    install_error_handlers(app)

    class Body(BaseModel):
        name: str = Field(max_length=4)
        roles: list[Literal["a", "b"]]

    @app.post("/people")
    def create(body: Body) -> None:
        return None

    response = TestClient(app).post("/people", json={"name": "王" * 5, "roles": ["c"]})

    assert response.status_code == 422, response.text
    messages = {tuple(item["loc"]): item["msg_zh"] for item in response.json()["detail"]}
    assert messages[("body", "name")] == "name 不能超过 4 个字符"
    assert messages[("body", "roles", 0)].startswith("roles 的取值无效")


def test_body_error_location() -> None:
    whole = QueryLimitError("needs one field", field="", message_zh="只填一项", location="body")
    one = QueryLimitError("too long", field="mobile", message_zh="过长", location="body")

    assert _detail(whole, 422)["loc"] == ["body"]
    assert _detail(one, 422)["loc"] == ["body", "mobile"]
    assert _detail(QueryLimitError("too many", "limit", "过多"), 422)["loc"] == ["query", "limit"]


def test_sms_delivery_error_is_503() -> None:
    error = SmsDeliveryError("SMS code otc-1 was not sent: gateway 127.0.0.1:9 returned HTTP 500")

    detail = _detail(error, 503)

    assert detail["msg"] == "the SMS gateway did not accept the code; retry later or use TOTP"
    assert detail["msg_zh"] == "短信发送失败，请稍后重试或改用动态口令登录"
    assert "127.0.0.1" not in str(detail)
