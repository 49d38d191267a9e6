"""Texts the server writes for people, in Vietnamese (the default) and English.

A message is a key in :data:`MESSAGES` with ``str.format`` parameters; :func:`t` renders
it in one language, :func:`both` in both (for texts that are stored, e.g. an incident
title a sensor rule writes). :func:`pick` chooses the language from a ``lang`` parameter
or an ``Accept-Language`` header. Numbers in a Vietnamese text are written the
Vietnamese way (``2,5 m``, ``1.234 m³``). Times meant for people are Đà Nẵng time with
its zone: :func:`local_text` for a text (``03:45 03/12/2026 (GMT+7)``), :func:`local_iso`
for a machine.
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

LANGS = ("vi", "en")
DEFAULT = "vi"
VN_TZ = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")  # no DST in Viet Nam

MESSAGES: dict[str, dict[str, str]] = {
    # Open311 / incident statuses as a citizen reads them
    "status.reported": {"vi": "Đã tiếp nhận, chờ xác minh", "en": "Received, awaiting review"},
    "status.verified": {"vi": "Đã xác minh", "en": "Verified"},
    "status.dispatched": {"vi": "Đã điều lực lượng", "en": "Crew dispatched"},
    "status.en_route": {"vi": "Lực lượng đang đến", "en": "Crew on the way"},
    "status.on_scene": {"vi": "Đang xử lý tại hiện trường", "en": "Being handled on site"},
    "status.resolved": {"vi": "Đã xử lý xong", "en": "Resolved"},
    "status.closed": {"vi": "Đã đóng", "en": "Closed"},
    "close.resolved": {"vi": "đã xử lý", "en": "resolved"},
    "close.duplicate": {"vi": "trùng với phản ánh khác", "en": "duplicate of another report"},
    "close.false_alarm": {"vi": "không đúng sự thật", "en": "false alarm"},
    "close.not_responsible": {"vi": "không thuộc thẩm quyền", "en": "not our responsibility"},
    "close.unable": {"vi": "không thể xử lý", "en": "could not be handled"},
    "timeline.created": {"vi": "Đã tiếp nhận phản ánh", "en": "Report received"},
    "timeline.status": {"vi": "Trạng thái: {label}", "en": "Status: {label}"},
    "timeline.linked": {
        "vi": "Đã gộp vào phản ánh {parent} đang được xử lý",
        "en": "Merged into report {parent}, already being handled",
    },
    "open311.received": {
        "vi": "Đã tiếp nhận. Thành phố trả lời trước {due}; thời gian xử lý dự kiến "
              "{hours:g} giờ.",
        "en": "Received. The city answers by {due}; expected handling within {hours:g} h.",
    },
    "open311.linked": {
        "vi": " Đã gộp vào phản ánh {parent} đang được xử lý.",
        "en": " Linked to request {parent}, already being handled.",
    },
    "open311.service_description": {
        "vi": "{name}: thời gian xử lý dự kiến {hours:g} giờ",
        "en": "{name}: expected handling within {hours:g} h",
    },
    # Open311 errors a citizen may see
    "err.format": {
        "vi": "định dạng {fmt!r} không được hỗ trợ; dùng json hoặc xml",
        "en": "format {fmt!r} not supported; use json or xml",
    },
    "err.rate": {
        "vi": "gửi quá nhiều phản ánh; vui lòng thử lại sau một phút",
        "en": "too many reports from this client; try again in a minute",
    },
    "err.too_large": {
        "vi": "nội dung gửi quá lớn (tối đa {limit})",
        "en": "the request body is too large (at most {limit})",
    },
    "err.body": {"vi": "không đọc được nội dung gửi: {detail}",
                 "en": "cannot read the request body: {detail}"},
    "err.required": {"vi": "thiếu {field}", "en": "{field} is required"},
    "err.service_code": {"vi": "không có loại phản ánh {code!r}",
                         "en": "service_code {code!r} not found"},
    "err.latlong": {"vi": "lat và long phải đều là số",
                    "en": "lat and long must both be numbers"},
    "err.range": {"vi": "lat/long nằm ngoài phạm vi", "en": "lat/long out of range"},
    "err.address": {"vi": "không tìm thấy địa chỉ {address!r}; hãy gửi lat và long",
                    "en": "address {address!r} not found; send lat and long"},
    "err.location": {"vi": "cần vị trí: lat và long, hoặc address_string",
                     "en": "a location is required: lat and long, or address_string"},
    "err.email": {"vi": "email không hợp lệ", "en": "email is not a valid address"},
    "err.phone": {"vi": "số điện thoại không hợp lệ", "en": "phone is not a valid number"},
    "err.too_long": {"vi": "{field} dài quá {limit} ký tự",
                     "en": "{field} is longer than {limit} characters"},
    "err.attr_required": {"vi": "cần attribute[{code}] cho {service}",
                          "en": "attribute[{code}] is required for {service}"},
    "err.attr_values": {"vi": "attribute[{code}] phải là một trong {values}",
                        "en": "attribute[{code}] must be one of {values}"},
    "err.media_count": {"vi": "tối đa {limit} ảnh", "en": "at most {limit} photos"},
    "err.media_type": {
        "vi": "ảnh {name!r} phải là JPEG, PNG hoặc WebP",
        "en": "photo {name!r} must be a JPEG, PNG or WebP image",
    },
    "err.media_size": {"vi": "ảnh {name!r} lớn quá {limit}",
                       "en": "photo {name!r} is larger than {limit}"},
    "err.media_broken": {"vi": "không đọc được ảnh {name!r}",
                         "en": "photo {name!r} cannot be read"},
    "err.media_url": {"vi": "media_url phải là địa chỉ http(s)",
                      "en": "media_url must be an http(s) URL"},
    "err.request_not_found": {"vi": "không tìm thấy phản ánh {id!r}",
                              "en": "service request {id!r} not found"},
    "err.token_not_found": {"vi": "không tìm thấy mã theo dõi", "en": "token not found"},
    "err.media_not_found": {"vi": "không tìm thấy ảnh", "en": "photo not found"},
    "err.radius": {"vi": "radius phải từ 1 đến 200 m", "en": "radius must be 1 to 200 m"},
    "err.not_open": {"vi": "phản ánh {id} đã đóng", "en": "service request {id} is closed"},
    "err.ids": {"vi": "service_request_id phải là danh sách số, cách nhau bởi dấu phẩy",
                "en": "service_request_id must be a comma list of ids"},
    "err.date": {"vi": "{field} phải là ngày giờ W3C", "en": "{field} must be a W3C date-time"},
    "err.status": {"vi": "status phải là open, closed hoặc cả hai",
                   "en": "status must be open, closed or both"},
    "err.jurisdiction": {"vi": "jurisdiction_id {id!r} không phục vụ ở đây",
                         "en": "jurisdiction_id {id!r} not served here"},
    # sensor rules (incidents opened by an alarm)
    "rule.above": {"vi": "{where}: {v:g} {unit} trên ngưỡng {x:g} {unit}{held}",
                   "en": "{where}: {v:g} {unit} above {x:g} {unit}{held}"},
    "rule.below": {"vi": "{where}: {v:g} {unit} dưới ngưỡng {x:g} {unit}{held}",
                   "en": "{where}: {v:g} {unit} below {x:g} {unit}{held}"},
    "rule.held": {"vi": " trong {minutes} phút", "en": " for {minutes} min"},
    "rule.rate": {"vi": "{where}: thay đổi {rate:+.3g} {unit}/giờ (giới hạn {x:+g} {unit}/giờ)",
                  "en": "{where}: changing {rate:+.3g} {unit}/h (limit {x:+g} {unit}/h)"},
    "rule.no_signal": {"vi": "{where}: không có số liệu trong {minutes} phút (lần cuối: {since})",
                       "en": "{where}: no reading for {minutes} min (last: {since})"},
    "rule.never": {"vi": "chưa bao giờ", "en": "never"},
    "rule.raised": {"vi": "Mở từ cảnh báo cảm biến {alarm}: {message}",
                    "en": "Raised by sensor alarm {alarm}: {message}"},
    "rule.again": {"vi": "Cảnh báo cảm biến {alarm}: {message}",
                   "en": "Sensor alarm {alarm}: {message}"},
    # what-if scenarios
    "flood.sea_default": {
        "vi": "nguồn mặc định: biển (các ô ≤ {level:g} m chạm mép DEM); bản thân biển không "
              "tính là ngập",
        "en": "default source: the sea (cells ≤ {level:g} m touching the DEM's edge); "
              "the sea itself is not counted as flooded",
    },
    "flood.dry_seeds": {"vi": "{n} điểm nguồn cao hơn mực nước, không gây ngập",
                        "en": "{n} seed point(s) lie above the water level and flood nothing"},
    "flood.no_sea": {"vi": "DEM này không có biển: ngập từ các ô thấp nhất ({lowest:g} m)",
                     "en": "no sea on this DEM: flooding from its lowest cells ({lowest:g} m)"},
    "flood.method": {
        "vi": "phương pháp: lấp bồn — các ô ≤ {level:g} m nối 4 hướng (không qua góc chéo) với "
              "nguồn ({source}); {pits} ô hố ở hoặc dưới mực biển không nối với biển được lấp "
              "tới mép trước; diện tích trên ellipsoid WGS 84",
        "en": "method: bathtub fill — cells ≤ {level:g} m 4-connected (never across a corner "
              "alone) to the source ({source}); {pits} pit cells at or below sea level not "
              "connected to the sea filled to their rim first; areas on the WGS 84 ellipsoid",
    },
    "flood.source.sea": {"vi": "biển: các ô ≤ {level:g} m chạm mép DEM, bản thân biển không "
                               "tính là ngập",
                         "en": "the sea: cells ≤ {level:g} m touching the DEM's edge, the sea "
                               "itself not counted as flooded"},
    "flood.source.points": {"vi": "{n} điểm nguồn đã cho (mốc: ô thấp nhất dưới chúng, "
                                  "{reference:g} m)",
                            "en": "{n} given seed point(s) (reference: the lowest ground under "
                                  "them, {reference:g} m)"},
    "flood.source.lowest": {"vi": "các ô thấp nhất của DEM", "en": "the DEM's lowest cells"},
    "flood.limits": {
        "vi": "giới hạn: mực nước tĩnh, không có dòng chảy hay thời gian; đê, cống, kênh nhỏ "
              "hơn một ô DEM (~30 m) không thấy được; độ cao SRTM sai số vài mét",
        "en": "limits: a static water level, no flow and no time; dykes, drains and canals "
              "narrower than a DEM cell (~30 m) are not seen; SRTM heights are off by metres",
    },
    "rain.method": {
        "vi": "phương pháp: mưa {rain_mm:g} mm trong {hours:g} giờ ({intervals} khoảng), độ "
              "ẩm đất trước {antecedent}; dòng chảy mặt theo chỉ số CN của SCS (lớp phủ + tỷ "
              "lệ mái nhà); cống thoát {drain:g} mm/giờ ({drain_source}); phần còn lại chảy "
              "trên DEM (4 hướng) vào các vùng trũng lồng nhau, đầy thì tràn sang vùng bên "
              "cạnh, hai vùng đầy nhập thành một hồ (fill-spill-merge), cuối cùng ra biển "
              "({sea:g} m) hoặc sông ({rivers})",
        "en": "method: {rain_mm:g} mm of rain in {hours:g} h ({intervals} intervals), "
              "antecedent soil {antecedent}; runoff by the SCS curve number (land cover + "
              "building share); drains take {drain:g} mm/h ({drain_source}); the rest flows "
              "over the DEM (4-connected) into nested depressions that fill, spill into their "
              "neighbour and merge into one lake when both are full (fill-spill-merge), "
              "out to the sea ({sea:g} m) or a river ({rivers})",
    },
    "rain.drain_source": {
        "vi": "mặc định: 200 mm/ngày, mức cao của 100–200 mm/ngày mà cống thành phố được "
              "thiết kế theo issue 16 (facts.yaml không có số liệu cống)",
        "en": "default: 200 mm/day, the upper end of the 100–200 mm a day the city's drains "
              "are built for according to issue 16 (facts.yaml carries no drain figure)",
    },
    "rain.drain_given": {"vi": "do người dùng đặt", "en": "as given"},
    "rain.balance": {
        "vi": "cân bằng nước: mưa {rain:,.0f} m³ = thấm {infiltrated:,.0f} + cống "
              "{drained:,.0f} + đọng lại {stored:,.0f} + ra biển, sông {to_sea:,.0f} m³",
        "en": "water balance: rain {rain:,.0f} m³ = infiltrated {infiltrated:,.0f} + drained "
              "{drained:,.0f} + stored {stored:,.0f} + to the sea and rivers {to_sea:,.0f} m³",
    },
    "rain.limits": {
        "vi": "giới hạn: trạng thái cuối trận mưa (không tính thời gian truyền dòng, bốc hơi, "
              "cống quá tải hay nước dềnh); sông nhận hết nước ở mọi mực (lũ sông: mô hình "
              "sông); không có dòng chảy nhỏ hơn một ô (~30 m); ô sâu dưới {min_depth:g} m "
              "không tính; SRTM là mặt trên (mái nhà, cây), sai số vài mét",
        "en": "limits: the state at the end of the rain (no flow travel time, evaporation, "
              "drain surcharge or backwater); rivers take any inflow (river floods: the river "
              "model); no flow paths narrower than a cell (~30 m); cells shallower than "
              "{min_depth:g} m are not counted; SRTM is a surface model (roofs, trees), off "
              "by metres",
    },
    "river.method": {
        "vi": "phương pháp: HAND (độ cao trên mạng thoát nước gần nhất, tính một lần cho mỗi "
              "DEM, dòng chảy 4 hướng trên mặt đã lấp trũng tới sông của lớp phủ 'water'; "
              "con sông có trạm: {cells} ô); mực nước {stage:g} m tại {gauge}, đáy sông ở "
              "đó {bed:.2f} m: nước cao {height:.2f} m trên đáy dọc theo sông, ngập nơi HAND "
              "thấp hơn",
        "en": "method: HAND (height above the nearest drainage, computed once per DEM, "
              "4-connected flow over the depression-filled surface to the rivers of the "
              "land cover 'water'; the gauge's river: {cells} cells); stage {stage:g} m at "
              "{gauge}, river bed there {bed:.2f} m: the water stands {height:.2f} m over the "
              "bed all along the rivers and floods where HAND is lower",
    },
    "river.limits": {
        "vi": "giới hạn: một độ cao nước cho cả mạng sông (không có đường mặt nước, lưu lượng "
              "hay thời gian truyền lũ); không tính đê, cống, cầu; SRTM là mặt trên (mái nhà, "
              "cây), sai số vài mét; sông chỉ gồm những gì lớp phủ 'water' có",
        "en": "limits: one water height over the whole river network (no water-surface "
              "profile, discharge or flood travel time); no levees, culverts or bridges; "
              "SRTM is a surface model (roofs, trees), off by metres; the rivers are what "
              "the land cover 'water' holds",
    },
    "river.alert": {"vi": "mức {stage:g} m ≥ báo động {level} ({alert:g} m) tại {gauge}",
                    "en": "stage {stage:g} m ≥ alert level {level} ({alert:g} m) at {gauge}"},
    "rain.rivers": {"vi": "lớp phủ 'water': {cells} ô", "en": "land cover 'water': {cells} cells"},
    "rain.no_rivers": {"vi": "không có sông trong lớp phủ", "en": "none in the land cover"},
    "rain.tide": {"vi": "triều {level:g} m: {km2:.3f} km² ngập từ biển",
                  "en": "tide at {level:g} m: {km2:.3f} km² flooded from the sea"},
    "outage.not_connected": {"vi": "phần tử hỏng không nối với mạng lưới",
                             "en": "the faulty element is not connected to the network"},
    "outage.radial": {
        "vi": "vận hành hình tia: mỗi phần được cấp theo đường ngắn nhất từ nguồn; đoạn sau chỗ "
              "hỏng được cô lập tại các thiết bị đóng cắt đầu tiên, phần phía sau bị mất "
              "nguồn cho đến khi được cấp từ phía khác",
        "en": "radial operation: each part is fed along its shortest path from a source; the "
              "section below the fault is isolated at the first switches, what lies beyond "
              "them is cut off until fed from another side",
    },
    "outage.no_sources": {
        "vi": "mạng {network} không có nút nguồn: chỉ tính đoạn bị cô lập",
        "en": "the {network} network has no source nodes: only the isolated section is counted",
    },
    "outage.power.operate": {"vi": "cắt thiết bị đóng cắt {labels}",
                             "en": "open switches {labels}"},
    "outage.water.operate": {"vi": "đóng van {labels}", "en": "close valves {labels}"},
    "outage.power.none": {"vi": "không có thiết bị đóng cắt cần cắt",
                          "en": "no switches to open"},
    "outage.water.none": {"vi": "không có van cần đóng", "en": "no valves to close"},
    "outage.more": {"vi": " và {n} thiết bị khác", "en": " and {n} more"},
    "outage.result": {"vi": "; {n} tòa nhà mất {what}", "en": "; {n} buildings without {what}"},
    "outage.method": {
        "vi": "phương pháp: dò mạng lưới từ chỗ hỏng đến các van (thiết bị đóng cắt) gần nhất; "
              "tòa nhà mất dịch vụ là tòa nhà nối vào đoạn bị cô lập hoặc mất nguồn; không tính "
              "áp lực, lưu lượng hay bể chứa trong nhà",
        "en": "method: traced over the network from the fault to the nearest valves (switches); "
              "buildings without service are those served by the isolated or cut-off section; "
              "no pressure, flow or household storage modelled",
    },
    "closure.method": {
        "vi": "phương pháp: thời gian lái xe ô tô trên mạng đường (pgRouting, tốc độ theo loại "
              "đường và đường một chiều) đến cơ sở gần nhất, trước và sau khi đóng; không tính "
              "ùn tắc, đèn tín hiệu hay đường tạm",
        "en": "method: car drive times over the road network (pgRouting, speed by road class, "
              "one-way rules) to the nearest facilities, before and after the closure; no "
              "traffic, signals or detours set up on site",
    },
    # warnings
    "warning.headline": {"vi": "{event}: {place}", "en": "{event} at {place}"},
    # what-ifs as OGC API - Processes (server/routes/processes.py, twin/jobs.py)
    "process.flood.title": {"vi": "Ngập theo mực nước", "en": "Flood at a water level"},
    "process.flood.description": {
        "vi": "Dâng nước trên mô hình độ cao đến một mực nước từ biển (hoặc các điểm nguồn): "
              "diện tích ngập, công trình, đường (không qua được khi ngập sâu), cơ sở, dân cư.",
        "en": "Flood the DEM to a water level from the sea (or seed points): flooded area, "
              "buildings, roads (impassable above a depth), facilities, people.",
    },
    "process.closure.title": {"vi": "Cấm đường", "en": "Road closure"},
    "process.closure.description": {
        "vi": "Đóng các đoạn đường (hoặc các đường không qua được của một trận ngập): nơi bị "
              "cô lập, thời gian lái xe đến bệnh viện và trạm cứu hỏa trước và sau.",
        "en": "Close road segments (or a flood's impassable roads): what is cut off, drive "
              "times to hospitals and fire stations before and after.",
    },
    "process.outage.title": {"vi": "Sự cố điện nước", "en": "Utility outage"},
    "process.outage.description": {
        "vi": "Vỡ ống hoặc hỏng thiết bị: các van hoặc cầu dao cần đóng để cô lập và các công "
              "trình bị mất dịch vụ.",
        "en": "A burst main or failed device: the valves or switches that isolate it and the "
              "buildings that lose service.",
    },
    "process.rain.title": {"vi": "Ngập do mưa", "en": "Rain flood"},
    "process.rain.description": {
        "vi": "Mưa trên mô hình độ cao (dòng chảy mặt SCS-CN, cống thoát, tràn qua các vùng "
              "trũng): nước đọng ở đâu khi hết mưa và ảnh hưởng đến những gì.",
        "en": "Rain on the DEM (SCS curve-number runoff, drains, fill-and-spill): where the "
              "water stands at the end of the rain and what it touches.",
    },
    "process.river.title": {"vi": "Ngập do lũ sông", "en": "River flood"},
    "process.river.description": {
        "vi": "Lũ sông theo lưu lượng hoặc mực nước trạm đo dọc theo sông.",
        "en": "A river flood from a discharge or gauge level along the river.",
    },
    "job.queued": {"vi": "đang chờ đến lượt", "en": "queued"},
    "job.started": {"vi": "đã bắt đầu", "en": "started"},
    "job.done": {"vi": "đã xong", "en": "done"},
    "job.dismissed": {"vi": "đã hủy", "en": "dismissed"},
    "job.server_died": {"vi": "máy chủ chạy tác vụ đã dừng",
                        "en": "the server running it stopped"},
    "job.server_stopping": {"vi": "máy chủ dừng khi đang chạy tác vụ",
                            "en": "the server stopped while running the job"},
    "job.internal": {"vi": "lỗi nội bộ; hãy báo mã tác vụ",
                     "en": "internal error; quote the job id when reporting it"},
}


def pick(lang: str | None = None, accept_language: str | None = None) -> str:
    """The language to answer in: an explicit ``lang`` (``vi``, ``en``, ``en-US``…) if
    known, else the first known one in ``Accept-Language`` by q-value, else Vietnamese."""
    if lang:
        base = lang.strip().lower()[:2]
        if base in LANGS:
            return base
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for i, part in enumerate(accept_language.split(",")[:20]):
            tag, _, q = part.strip().partition(";")
            weight = 1.0
            if q.strip().startswith("q="):
                try:
                    weight = float(q.strip()[2:])
                except ValueError:
                    weight = 0.0
            base = tag.strip().lower()[:2]
            if base in LANGS and weight > 0:
                ranked.append((-weight, i, base))
        if ranked:
            return min(ranked)[2]
    return DEFAULT


class _Formatter(string.Formatter):
    """``str.format`` whose numbers follow the language: Vietnamese writes a decimal comma
    and groups thousands with a dot."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> Any:
        out = super().format_field(value, format_spec)
        if self.lang == "vi" and isinstance(value, int | float) and not isinstance(value, bool):
            out = out.translate(_VI_NUMBER)
        return out


_VI_NUMBER = str.maketrans({".": ",", ",": "."})
_FORMATTERS = {lang: _Formatter(lang) for lang in LANGS}


def number(value: float, lang: str, spec: str = "g") -> str:
    """``value`` formatted by ``spec`` the way ``lang`` writes numbers."""
    return _FORMATTERS.get(lang, _FORMATTERS[DEFAULT]).format_field(value, spec)


def t(key: str, lang: str = DEFAULT, **params: Any) -> str:
    """The message ``key`` in ``lang`` (Vietnamese when that language is missing), its
    numbers written as ``lang`` writes them."""
    entry = MESSAGES[key]
    text = entry.get(lang) or entry[DEFAULT]
    return _FORMATTERS.get(lang, _FORMATTERS[DEFAULT]).vformat(text, (), params)


def both(key: str, **params: Any) -> dict[str, str]:
    """The message in every language: ``{"vi": …, "en": …}`` (to store)."""
    return {lang: t(key, lang, **params) for lang in LANGS}


def choose(texts: dict[str, Any] | None, lang: str, fallback: str | None = None) -> str | None:
    """One language out of stored ``{"vi": …, "en": …}`` texts, else the other, else
    ``fallback``."""
    if texts:
        for candidate in (lang, DEFAULT, *LANGS):
            if texts.get(candidate):
                return str(texts[candidate])
    return fallback


def local_text(value: dt.datetime) -> str:
    """A time for a person to read: Đà Nẵng time with its zone, ``03:45 03/12/2026
    (GMT+7)`` (the viewer writes times the same way)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y (GMT+7)")


def local_iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in Đà Nẵng time with its offset (``…+07:00``), seconds precision."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(VN_TZ).replace(microsecond=0).isoformat()
