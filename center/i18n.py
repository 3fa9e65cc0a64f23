"""Vietnamese and English for the center's pages (proper diacritics; one table, every key in both)."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "title": {"vi": "Giám sát camera", "en": "Camera monitoring"},
    "fleet": {"vi": "Toàn thành phố", "en": "Fleet"},
    "outages": {"vi": "Sự cố", "en": "Outages"},
    "report": {"vi": "Báo cáo", "en": "Report"},
    "audit": {"vi": "Nhật ký truy cập", "en": "Audit log"},
    "who": {"vi": "Ai", "en": "Who"},
    "action": {"vi": "Việc", "en": "Action"},
    "address": {"vi": "Địa chỉ", "en": "Address"},
    "older": {"vi": "Cũ hơn", "en": "Older"},
    "audit_login": {"vi": "đăng nhập", "en": "logged in"},
    "audit_login_failed": {"vi": "đăng nhập sai", "en": "failed login"},
    "audit_login_blocked": {"vi": "đăng nhập bị chặn", "en": "login blocked"},
    "audit_logout": {"vi": "đăng xuất", "en": "logged out"},
    "audit_maintenance_added": {"vi": "thêm lịch bảo trì", "en": "added maintenance"},
    "audit_maintenance_deleted": {"vi": "xoá lịch bảo trì", "en": "deleted maintenance"},
    "audit_snapshot_viewed": {"vi": "xem ảnh chụp", "en": "viewed a snapshot"},
    "audit_report_viewed": {"vi": "xem báo cáo", "en": "viewed a report"},
    "audit_report_downloaded": {"vi": "tải báo cáo CSV", "en": "downloaded a report (CSV)"},
    "audit_user_added": {"vi": "thêm/đặt lại người dùng", "en": "added or reset a user"},
    "audit_user_removed": {"vi": "xoá người dùng", "en": "removed a user"},
    "audit_token_added": {"vi": "cấp mã API", "en": "issued an API token"},
    "audit_token_revoked": {"vi": "thu hồi mã API", "en": "revoked an API token"},
    "login": {"vi": "Đăng nhập", "en": "Log in"},
    "logout": {"vi": "Đăng xuất", "en": "Log out"},
    "user": {"vi": "Tên đăng nhập", "en": "User name"},
    "password": {"vi": "Mật khẩu", "en": "Password"},
    "bad_login": {"vi": "Sai tên đăng nhập hoặc mật khẩu.", "en": "Wrong user name or password."},
    "too_many": {
        "vi": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau vài phút.",
        "en": "Too many failed logins. Try again in a few minutes.",
    },
    "online": {"vi": "Hoạt động", "en": "Online"},
    "degraded": {"vi": "Suy giảm", "en": "Degraded"},
    "offline": {"vi": "Mất tín hiệu", "en": "Offline"},
    "unknown": {"vi": "Không rõ", "en": "Unknown"},
    "ward": {"vi": "Phường/xã", "en": "Ward"},
    "camera": {"vi": "Camera", "en": "Camera"},
    "cameras": {"vi": "camera", "en": "cameras"},
    "state": {"vi": "Trạng thái", "en": "State"},
    "since": {"vi": "Từ lúc", "en": "Since"},
    "for": {"vi": "Đã", "en": "For"},
    "problems": {"vi": "Lỗi", "en": "Problems"},
    "problem_history": {"vi": "Lịch sử lỗi", "en": "Problems history"},
    "availability": {"vi": "Khả dụng", "en": "Availability"},
    "healthy": {"vi": "Tốt", "en": "Healthy"},
    "unknown_share": {"vi": "Không rõ", "en": "Unknown"},
    "maintenance": {"vi": "Bảo trì", "en": "Maintenance"},
    "ongoing": {"vi": "Đang diễn ra", "en": "Ongoing"},
    "history": {"vi": "Lịch sử", "en": "History"},
    "history_cut": {
        "vi": "Hiển thị {shown} sự cố gần nhất trong số {total}; chọn phường/xã hoặc ít ngày hơn, hoặc xem tất cả:",
        "en": "Showing the {shown} most recent of {total}; pick a ward or fewer days, or get them all:",
    },
    "start": {"vi": "Bắt đầu", "en": "Start"},
    "end": {"vi": "Kết thúc", "en": "End"},
    "duration": {"vi": "Thời gian", "en": "Duration"},
    "reasons": {"vi": "Nguyên nhân", "en": "Reasons"},
    "period": {"vi": "Khoảng thời gian", "en": "Period"},
    "today": {"vi": "Hôm nay", "en": "Today"},
    "24h": {"vi": "24 giờ", "en": "24 hours"},
    "7d": {"vi": "7 ngày", "en": "7 days"},
    "30d": {"vi": "30 ngày", "en": "30 days"},
    "show": {"vi": "Xem", "en": "Show"},
    "csv": {"vi": "Tải CSV", "en": "Download CSV"},
    "print": {"vi": "In", "en": "Print"},
    "city": {"vi": "Toàn thành phố", "en": "City"},
    "timeline": {"vi": "Diễn biến trạng thái", "en": "State timeline"},
    "events": {"vi": "Sự kiện gần đây", "en": "Recent events"},
    "snapshot": {"vi": "Ảnh chụp", "en": "Snapshot"},
    "no_snapshot": {"vi": "Chưa có ảnh.", "en": "No snapshot yet."},
    "none": {"vi": "Không có.", "en": "None."},
    "add_maintenance": {"vi": "Thêm lịch bảo trì", "en": "Add a maintenance window"},
    "note": {"vi": "Ghi chú", "en": "Note"},
    "whole_ward": {"vi": "Cả phường/xã", "en": "The whole ward"},
    "save": {"vi": "Lưu", "en": "Save"},
    "delete": {"vi": "Xoá", "en": "Delete"},
    "updated": {"vi": "Cập nhật", "en": "Updated"},
    "type": {"vi": "Loại", "en": "Type"},
    "time": {"vi": "Thời điểm", "en": "Time"},
    "detail": {"vi": "Chi tiết", "en": "Detail"},
    "not_found": {"vi": "Không tìm thấy camera này.", "en": "No such camera."},
    "bad_form": {"vi": "Biểu mẫu không hợp lệ hoặc đã hết hạn.", "en": "The form is invalid or has expired."},
    "admins_only": {"vi": "Chỉ quản trị viên được làm việc này.", "en": "Only administrators can do this."},
    "state_changed": {"vi": "Đổi trạng thái", "en": "State changed"},
    "problem_started": {"vi": "Bắt đầu lỗi", "en": "Problem started"},
    "problem_ended": {"vi": "Hết lỗi", "en": "Problem ended"},
    "detection_started": {"vi": "Phát hiện", "en": "Detection"},
    "detection_ended": {"vi": "Hết phát hiện", "en": "Detection ended"},
    "agent": {"vi": "Máy giám sát của phường", "en": "Ward agent"},
    "agent_up": {"vi": "đang chạy", "en": "running"},
    "agent_gone": {"vi": "mất kết nối từ", "en": "gone since"},
    "agent_stopped": {"vi": "đã dừng từ", "en": "stopped since"},
    "wards_unreachable": {"vi": "Phường/xã mất liên lạc", "en": "Wards unreachable"},
    "ward_unreachable": {"vi": "Mất liên lạc với phường từ", "en": "Ward unreachable since"},
    "ward_stopped": {"vi": "Máy giám sát của phường đã dừng từ", "en": "Ward agent stopped since"},
    "ward_problem": {
        "vi": "Lỗi ở phường (máy tính của phường tắt hoặc đường truyền bị đứt), không phải ở camera: "
        "không ai thấy được các camera của phường này.",
        "en": "A ward problem (the ward's PC is off or its uplink is down), not a camera problem: "
        "nobody can see this ward's cameras.",
    },
    "not_seen_ward_down": {"vi": "không ai thấy (phường mất liên lạc)", "en": "not seen (ward unreachable)"},
    "where_failure": {
        "vi": "Ngoại tuyến = lỗi ở camera. Không rõ = không ai thấy camera; "
        "nếu cả phường mất liên lạc thì lỗi ở phường.",
        "en": "Offline = a camera problem. Unknown = nobody can see the camera; a whole ward unreachable is a ward "
        "problem.",
    },
    "no_cameras": {
        "vi": "Chưa nhận được tin từ phường/xã nào. Kiểm tra kết nối tới broker MQTT.",
        "en": "No ward has reported yet. Check the connection to the MQTT broker.",
    },
}


def t(key: str, lang: str) -> str:
    """The text for ``key`` in ``lang``; the key itself if there is none (never an error on a page)."""
    entry = TEXT.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["en"]


def duration(seconds: float, lang: str) -> str:
    """``3 ngày 4 giờ`` / ``3 d 4 h``: the two largest units."""
    s = max(0, int(seconds))
    units = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    names = {
        "vi": {"d": "ngày", "h": "giờ", "min": "phút", "s": "giây"},
        "en": {"d": "d", "h": "h", "min": "min", "s": "s"},
    }
    parts: list[str] = []
    for unit, size in units:
        if s >= size or (unit == "s" and not parts):
            parts.append(f"{s // size} {names.get(lang, names['en'])[unit]}")
            s %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
