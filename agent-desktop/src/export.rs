//! The ticket list exported to an Excel workbook (.xlsx): the rows on screen under Chinese
//! headers, for the reports offices still make by hand. `rust_xlsxwriter` without default
//! features writes it with a pure-Rust zip, so nothing is added to the build but that.

use crate::i18n::{Lang, T};
use rexian_shared::TicketPage;

/// Why a workbook could not be made (rust_xlsxwriter's reason, for the log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The workbook could not be assembled.
    #[error("cannot write the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// The columns: header and width (in Excel's character units; a Chinese character is two).
const COLUMNS: [(T, f64); 7] = [(T::TicketNo, 16.0), (T::Kind, 10.0), (T::State, 10.0), (T::Summary, 48.0), (T::Created, 18.0), (T::Due, 12.0), (T::Overdue, 6.0)];

/// A workbook of one sheet: a header row in Chinese, then one row per ticket of `page`.
pub fn ticket_list_xlsx(page: &TicketPage) -> Result<Vec<u8>, ExportError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let sheet = book.add_worksheet();
    sheet.set_name(T::TicketListFile.s(Lang::Zh))?;
    for (col, (header, width)) in (0u16..).zip(COLUMNS) {
        sheet.write_string_with_format(0, col, header.s(Lang::Zh), &bold)?;
        sheet.set_column_width(col, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (row, t) in (1u32..).zip(&page.items) {
        let overdue = if t.overdue { T::Yes } else { T::No };
        let cells = [
            t.no.to_string(),
            t.kind.zh().to_owned(),
            t.state.zh().to_owned(),
            t.summary.clone(),
            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
            t.due_date.map(|d| d.to_string()).unwrap_or_default(),
            overdue.s(Lang::Zh).to_owned(),
        ];
        for (col, value) in (0u16..).zip(cells) {
            sheet.write_string(row, col, value)?;
        }
    }
    Ok(book.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rexian_shared::{Channel, TicketKind, TicketNo, TicketState, TicketSummary};
    use std::io::Read;

    fn part(xlsx: &[u8], name: &str) -> String {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("an xlsx is a zip");
        let mut text = String::new();
        zip.by_name(name).expect(name).read_to_string(&mut text).expect("utf-8");
        text
    }

    #[test]
    fn the_workbook_holds_chinese_headers_and_the_rows() {
        let created = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).and_then(|d| d.and_hms_opt(9, 41, 0)).expect("time");
        let item = TicketSummary {
            no: TicketNo::parse("202611290007").expect("no"),
            kind: TicketKind::Complaint,
            channel: Channel::Phone,
            state: TicketState::Dispatched,
            summary: "电动自行车充电器起火".into(),
            caller_phone: None,
            lead_department: Some(3),
            created_at: created,
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 11),
            overdue: true,
            supervised: false,
        };
        let page = TicketPage { items: vec![item], total: 1, page: 0, page_size: 50 };
        let xlsx = ticket_list_xlsx(&page).expect("xlsx");
        let strings = part(&xlsx, "xl/sharedStrings.xml");
        for s in ["工单编号", "工单类型", "状态", "摘要", "登记时间", "办理期限", "超期", "202611290007", "投诉", "已转办", "电动自行车充电器起火", "2026-11-29 09:41", "2026-12-11", "是"] {
            assert!(strings.contains(&format!(">{s}<")), "{s} missing from {strings}");
        }
        let sheet = part(&xlsx, "xl/worksheets/sheet1.xml");
        assert!(sheet.contains(r#"<row r="2""#) && !sheet.contains(r#"<row r="3""#), "{sheet}");
        assert!(part(&xlsx, "xl/workbook.xml").contains("工单列表"));
    }
}
