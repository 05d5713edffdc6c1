//! The forms checked as a reader sees them: the PDF's text extracted by poppler's `pdftotext`
//! (so the font's ToUnicode map must be right) and its page count read by `pdfinfo`; both come
//! with poppler-utils, which scripts/deps installs.

use super::*;
use rexian_shared::{Channel, HistoryEntry, NewTicket, PhoneNumber, SubjectInfo, TicketKind, TicketNo};
use std::process::Command;

const CODE: &str = "836152";
const SUMMARY: &str = "电动自行车充电器起火";
const LAST_MARKER: &str = "【完】";

fn departments() -> Vec<Department> {
    vec![
        Department { id: 3, name: "市场监管局质量科".into(), parent_id: None, phone: None },
        Department { id: 4, name: "消防救援支队".into(), parent_id: None, phone: None },
    ]
}

/// A dispatched complaint whose details run to about `sentences` sentences.
fn ticket(sentences: usize) -> Ticket {
    let at = |h: u32, m: u32| NaiveDate::from_ymd_opt(2026, 11, 29).and_then(|d| d.and_hms_opt(h, m, 0)).expect("time");
    let mut content: String = (1..=sentences).map(|i| format!("第{i}句：本人于十一月在某商城购买的电动自行车充电器在充电过程中冒烟起火，烧毁了家中部分物品，商家拒绝退换并不予赔偿。")).collect();
    content.push_str(LAST_MARKER);
    let phone = PhoneNumber::parse("13800131234").ok();
    let mut t = Ticket::from_intake(NewTicket::phone(TicketKind::Complaint, phone, SUMMARY, &content), TicketNo::parse("202611290007").expect("no"), at(9, 41), "agent1");
    t.caller.name = Some("王小明".into());
    t.subject = Some(SubjectInfo { name: "某某电器商行".into(), credit_code: None, address: Some("北京市朝阳区某路1号".into()) });
    t.verification_code = Some(CODE.into());
    t.state = TicketState::Dispatched;
    t.lead_department = Some(3);
    t.assisting_departments = vec![4];
    t.due_date = NaiveDate::from_ymd_opt(2026, 12, 11);
    t.history.push(HistoryEntry { at: at(10, 5), actor: "agent1".into(), action: "dispatch".into(), from_state: Some(TicketState::Accepted), to_state: TicketState::Dispatched, note: "请核实后依法处理".into() });
    assert_eq!(t.channel, Channel::Phone);
    t
}

fn font() -> CjkFont {
    CjkFont::system().expect("scripts/deps installs a CJK font")
}

fn context(departments: &[Department]) -> FormContext<'_> {
    FormContext { departments, categories: &[], printed_at: NaiveDate::from_ymd_opt(2026, 11, 29).and_then(|d| d.and_hms_opt(10, 30, 0)).expect("time") }
}

/// The text of `pdf` (whitespace removed, as the layout puts line breaks and cell gaps in it)
/// and its page count.
fn read(pdf: &[u8]) -> (String, u32) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("form.pdf");
    std::fs::write(&path, pdf).expect("write");
    let text = Command::new("pdftotext").arg(&path).arg("-").output().expect("pdftotext (poppler-utils) runs");
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let info = Command::new("pdfinfo").arg(&path).output().expect("pdfinfo (poppler-utils) runs");
    assert!(info.status.success() && info.stderr.is_empty(), "pdfinfo complains: {}", String::from_utf8_lossy(&info.stderr));
    let pages = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:").map(|n| n.trim().parse().expect("page count")))
        .expect("Pages: line");
    (String::from_utf8_lossy(&text.stdout).split_whitespace().collect(), pages)
}

#[test]
fn acceptance_form_of_a_long_complaint_flows_to_a_second_page_with_its_text_searchable() {
    let deps = departments();
    let pdf = acceptance_form(&ticket(30), &context(&deps), &font()).expect("form");
    assert!(pdf.starts_with(b"%PDF-"));
    let (text, pages) = read(&pdf);
    assert_eq!(pages, 2, "{text}");
    for expected in ["12365热线受理单", "202611290007", SUMMARY, CODE, "市场监管局质量科", "消防救援支队", "王小明", "某某电器商行", "2026年11月29日09:41", "时间均为北京时间", "2026年12月11日", "第1页共2页", "第2页共2页", "详细内容（续）", LAST_MARKER] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    // The caller's number is masked on paper even for staff, who see it whole on screen.
    assert!(text.contains("138****1234") && !text.contains("13800131234"), "{text}");
    // A subset of the font is embedded, not the multi-megabyte collection.
    assert!(pdf.len() < 300_000, "{} bytes", pdf.len());
}

#[test]
fn dispatch_form_names_the_departments_and_never_the_verification_code() {
    let deps = departments();
    let pdf = dispatch_form(&ticket(30), &context(&deps), &font()).expect("form");
    let (text, pages) = read(&pdf);
    assert_eq!(pages, 2, "{text}");
    for expected in ["12365热线转办单", "202611290007", SUMMARY, "市场监管局质量科", "请核实后依法处理", "2026年11月29日10:05", LAST_MARKER] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    assert!(!text.contains(CODE), "the verification code is printed: {text}");
}

#[test]
fn a_short_ticket_fits_one_page_and_a_confidential_caller_is_withheld() {
    let deps = departments();
    let mut t = ticket(1);
    t.confidential = true;
    let pdf = acceptance_form(&t, &context(&deps), &font()).expect("form");
    let (text, pages) = read(&pdf);
    assert_eq!(pages, 1, "{text}");
    assert!(text.contains("第1页共1页") && text.contains("保密"), "{text}");
    assert!(!text.contains("王小明") && !text.contains("1234"), "{text}");
}

#[test]
fn a_missing_font_is_told_in_chinese() {
    assert!(matches!(CjkFont::from_bytes(b"not a font".to_vec(), 0), Err(PrintError::FontUnreadable(_))));
    assert!(PrintError::NoFont.text(Lang::Zh).contains("字体"));
}

#[test]
fn every_installed_cjk_font_embeds_with_searchable_text() {
    // WenQuanYi (TrueType outlines) and Noto Sans CJK (CFF outlines) are embedded differently;
    // each one present on this machine must give a form whose text reads back.
    let deps = departments();
    let mut found = 0;
    for path in crate::fonts::KNOWN_PATHS.iter().map(std::path::Path::new).filter(|p| p.exists()) {
        let font = CjkFont::from_file(path).expect("font");
        let pdf = dispatch_form(&ticket(3), &context(&deps), &font).expect("form");
        let (text, pages) = read(&pdf);
        assert_eq!(pages, 1, "{}", path.display());
        assert!(text.contains("12365热线转办单") && text.contains(SUMMARY) && text.contains(LAST_MARKER), "{}: {text}", path.display());
        found += 1;
    }
    assert!(found > 0, "no CJK font at a known path");
}
