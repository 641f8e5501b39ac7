"""Rule codes of anchor edits and import rows, with the zh-CN message shown to bureau staff.

Every rule that an anchor change (:mod:`geo.curation`) or an import row
(:mod:`geo.anchor_import`) can break has a short snake_case code, a key of
:data:`RULE_MESSAGES_ZH`. Errors carry the code and the values their message
needs, and :func:`format_message_zh` fills the template. No template takes a phone
number or a person's name, so a Chinese message never repeats one.
"""

import logging

from geo.location import Precision

logger = logging.getLogger(__name__)

FIELD_LABELS_ZH: dict[str, str] = {
    "name": "单位名称",
    "address": "地址",
    "credit_code": "统一社会信用代码",
    "industry_code": "行业代码",
    "size": "企业规模",
    "key_enterprise": "重点企业",
    "above_scale_industrial": "规上工业企业",
    "contact_role": "联系部门",
    "contact_phone": "联系电话",
    "shift_times": "班次",
    "shuttle_stop": "班车站点",
    "pin": "坐标",
    "location": "坐标",
    "lon": "经度",
    "lat": "纬度",
    "coord_sys": "坐标系",
    "entrance": "入口坐标",
    "district_code": "区县",
    "district": "区县",
    "zone_key": "开发区",
    "zone": "开发区",
    "filed_org": "所属街道或社区站",
    "state": "状态",
    "reactivate": "重新启用",
    "confirm_pin": "确认定位点",
    "clear": "清空字段",
    "actor": "操作人员",
    "reason": "修改原因",
    "change": "修改内容",
    "modes": "出行方式",
}
"""Chinese label of each anchor field and import column, used as ``{label}`` in messages."""

PRECISION_LABELS_ZH: dict[Precision, str] = {
    Precision.EXACT: "精确到单位",
    Precision.POI: "兴趣点",
    Precision.BUILDING: "楼宇",
    Precision.BUSINESS_AREA: "商圈",
    Precision.ZONE: "开发区",
    Precision.DISTRICT: "区县",
    Precision.CITY: "城市",
}

RULE_MESSAGES_ZH: dict[str, str] = {
    # Single fields (geo.anchor_fields).
    "mobile_phone": "联系电话须为单位电话，不能填写手机号码",
    "phone_format": "联系电话须为带区号的座机号码（西安为 029 加 8 位）或 400/800 号码",
    "shift_format": "班次“{value}”不是 HH:MM-HH:MM 格式（24 小时制）",
    "shift_same_time": "班次“{value}”的开始和结束时间相同",
    "shift_repeated": "同一班次填写了两次",
    "role_length": "联系部门须为 1 至 {max_chars} 个字",
    "role_digits": "联系部门须填写部门或岗位名称，不能含数字",
    "role_person": "联系部门须填写部门或岗位（如人事部、HR经理），不能填写个人称呼",
    "text_empty": "{label}不能为空",
    "text_too_long": "{label}不能超过 {max_chars} 个字",
    "unknown_size": "企业规模“{value}”无效，须为微型、小型、中型或大型",
    # Codes (geo.credit_code, geo.industry).
    "credit_code_length": "统一社会信用代码须为 18 位，所填为 {length} 位",
    "credit_code_characters": "统一社会信用代码含无效字符 {chars}（不使用 I、O、S、V、Z）",
    "credit_code_authority": "统一社会信用代码第 1 位登记管理部门代码“{char}”无效",
    "credit_code_digits": "统一社会信用代码第 2 至 8 位须为数字",
    "check_digit": "统一社会信用代码校验位错误，应为 {expected}",
    "duplicate_credit_code": "统一社会信用代码与第 {first_row} 行重复",
    "unknown_industry": "行业代码“{code}”不是 GB/T 4754-2017 中的代码",
    # Points (geo.crs and the import table).
    "coordinate_nan": "{label}不能为空值（NaN）",
    "coordinate_infinite": "{label}须为有限数值，不能为无穷大",
    "swapped_axes": "经纬度疑似颠倒，请交换后重试",
    "longitude_range": "经度 {lon} 超出 -180 至 180 的范围",
    "latitude_range": "纬度 {lat} 超出 -90 至 90 的范围",
    "null_island": "坐标 (0, 0) 是占位值，不是实际位置",
    "outside_xian": "坐标（经度 {lon}，纬度 {lat}）不在西安市范围内",
    "invalid_coordinate": "{label}无效",
    "unknown_coord_sys": "坐标系“{value}”无效，须为 wgs84、gcj02 或 bd09",
    "missing_coord_sys": "缺少坐标系，请在本行或为整个文件填写 wgs84、gcj02 或 bd09",
    "point_incomplete": "{label}的经度和纬度须同时填写",
    "not_a_number": "{label}“{value}”不是数字",
    "missing_number": "{label}未填写",
    "entrance_too_far": "入口距离定位点 {distance} 米，超过上限 {max_distance} 米",
    "no_pin_to_confirm": "该锚点还没有定位点，无法确认",
    # Travel modes (geo.transit).
    "unknown_travel_mode": "出行方式“{value}”无效，须为 walk、bike、transit 或 drive",
    "no_travel_mode": "{label}不能为空，请至少选择 walk、bike、transit 或 drive 中的一种",
    # Places and scope.
    "unknown_district": "区县“{value}”不是西安市的区县",
    "unknown_zone": "开发区“{value}”不是已登记的开发区",
    "outside_city_districts": "坐标不在西安市 13 个区县范围内",
    "outside_district": "坐标不在所填区县（{declared}）范围内，实际位于{actual}",
    "outside_zone_districts": "坐标位于{actual}，不在开发区“{zone}”所在的区县内",
    "out_of_scope": "坐标不在您负责的区县或开发区范围内",
    "unknown_filing_org": "“{value}”不是您所在机构下的街道或社区站",
    "filing_outside_district": (
        "所属机构“{value}”位于{filed}，锚点位于{actual}，请改选该区县的街道或社区站"
    ),
    "filing_required": "街道和社区站人员不能清空锚点的所属机构",
    # States (geo.anchor_states).
    "unknown_state": "状态“{value}”无效，须为草稿、待审核、已核实、已停用或已驳回",
    "invalid_transition": "状态不能从“{current}”改为“{target}”",
    "retired_locked": "该锚点已停用，须先重新启用才能修改",
    "verified_pin_moved": "已核实的锚点移动定位点后须回到待审核状态",
    "not_retired": "只有已停用的锚点才能重新启用",
    "reactivate_to_draft": "重新启用的锚点回到草稿状态，不能直接设为其他状态",
    "verify_requires_exact": (
        "核实前定位点须精确到单位（当前精度：{precision}），请先移动或确认定位点"
    ),
    # The edit as a whole and the import table.
    "unknown_clear_field": "不能清空 {names}，可清空的字段为 {clearable}",
    "missing_actor": "缺少操作人员账号",
    "no_change": "本次修改没有改变任何字段",
    "invalid_flag": "{label}“{value}”须为“是”或“否”",
    "invalid_value": "{label}的值无效",
}
"""zh-CN message template of each rule code; ``{label}`` is the field's Chinese label."""


def format_message_zh(rule: str, *, field: str, **params: object) -> str:
    """Fill the zh-CN message of a rule.

    Parameters
    ----------
    rule
        A key of :data:`RULE_MESSAGES_ZH`.
    field
        The field or import column; its :data:`FIELD_LABELS_ZH` label fills ``{label}``.
    params
        The other values the template names, such as ``value`` or ``expected``.

    Raises
    ------
    KeyError
        If ``rule`` has no message, or the template names a value not in ``params``.
    """
    template = RULE_MESSAGES_ZH.get(rule)
    if template is None:
        raise KeyError(f"rule {rule!r} has no zh-CN message; add it to RULE_MESSAGES_ZH")
    return template.format(label=FIELD_LABELS_ZH.get(field, field), **params)
