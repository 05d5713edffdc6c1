//! TKT-7: the acceptance form (受理单) and the dispatch form (转办单) of a ticket as A4 PDF,
//! laid out like a Chinese government form: a centred title, a bordered table of labelled
//! rows, boxes for the handwritten opinion and signature, and the page number at the foot.
//! Pure functions of the ticket and a font, so they are tested without a window or a server.
//!
//! Paper leaves the hotline's access control, so both forms print the caller's number masked
//! as department handlers see it (138****1234), and nothing about a confidential caller but
//! the word 保密. The verification code is the caller's key for status queries: it is on the
//! acceptance form (the hotline's own record) and never on the dispatch form (which goes to
//! the department).
//!
//! Times are printed as switchd recorded them: in the hotline's local time (switchd's
//! `utc_offset_hours`, 8 — Beijing time — for Chinese hotlines).

mod font;
mod layout;

pub use font::CjkFont;

use crate::i18n::{Lang, T};
use chrono::{NaiveDate, NaiveDateTime};
use layout::{Cell, Form, Op, Page, Row};
use pdf_writer::types::TextRenderingMode;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use rexian_shared::{Category, Department, Ticket, TicketState};

/// Why a form could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrintError {
    /// No Chinese font on this PC: Chinese text cannot be drawn.
    #[error("no CJK font is installed (fonts-wqy-microhei or fonts-noto-cjk)")]
    NoFont,
    /// The font file could not be read or parsed, or has no Chinese glyphs.
    #[error("the CJK font cannot be used: {0}")]
    FontUnreadable(String),
    /// The font could not be cut down to the glyphs the form uses.
    #[error("the CJK font cannot be subset: {0}")]
    Subset(String),
}

impl PrintError {
    /// What the user is told.
    pub fn text(&self, lang: Lang) -> &'static str {
        match self {
            PrintError::NoFont => T::NoCjkFont.s(lang),
            PrintError::FontUnreadable(_) | PrintError::Subset(_) => T::FontUnusable.s(lang),
        }
    }
}

/// What a form needs besides the ticket: names for the ids the ticket holds, and the time.
pub struct FormContext<'a> {
    pub departments: &'a [Department],
    pub categories: &'a [Category],
    /// When the form is printed (the PC's local time, Beijing time in China), shown under the title.
    pub printed_at: NaiveDateTime,
}

impl FormContext<'_> {
    fn department(&self, id: i64) -> String {
        self.departments.iter().find(|d| d.id == id).map_or_else(|| format!("#{id}"), |d| d.name.clone())
    }

    fn category(&self, t: &Ticket) -> String {
        let code = t.category_code.as_deref().unwrap_or_default();
        self.categories.iter().find(|c| c.code == code).map_or_else(|| code.to_owned(), |c| c.name.clone())
    }
}

/// A form's label in Chinese, its English printed small beneath.
fn cell(t: T, value: impl Into<String>) -> Cell {
    Cell::new(t.s(Lang::Zh), t.s(Lang::En), value)
}

fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y年%m月%d日").to_string()).unwrap_or_default()
}

fn time(t: NaiveDateTime) -> String {
    t.format("%Y年%m月%d日 %H:%M").to_string()
}

/// Rows both forms share: who called, about whom, what.
fn caller_rows(t: &Ticket) -> Vec<Row> {
    let withheld = T::Withheld.s(Lang::Zh);
    let (name, phone, enterprise, address) = if t.confidential {
        (withheld.to_owned(), withheld.to_owned(), withheld.to_owned(), withheld.to_owned())
    } else {
        let name = if t.anonymous { T::AnonymousCaller.s(Lang::Zh).to_owned() } else { t.caller.name.clone().unwrap_or_default() };
        // The ticket holds the full number for hotline staff and only the masked one for
        // handlers; either way the paper gets the masked one.
        let phone = t.caller.phone.as_ref().map(|p| p.masked()).or_else(|| t.caller_phone_display.clone()).unwrap_or_default();
        (name, phone, t.caller.enterprise.clone().unwrap_or_default(), t.caller.address.clone().unwrap_or_default())
    };
    let subject = t.subject.as_ref().map_or_else(String::new, |s| {
        let mut lines = vec![s.name.clone()];
        if let Some(code) = &s.credit_code {
            lines.push(format!("{}：{code}", T::CreditCode.s(Lang::Zh)));
        }
        if let Some(a) = s.address.as_ref().filter(|a| !a.is_empty()) {
            lines.push(format!("{}：{a}", T::SubjectAddress.s(Lang::Zh)));
        }
        lines.join("\n")
    });
    vec![
        Row::two(cell(T::CallerName, name), cell(T::CallerPhone, phone)),
        Row::two(cell(T::CallerEnterprise, enterprise), cell(T::CallerAddress, address)),
        Row::one(cell(T::Subject, subject)),
        Row::one(cell(T::Summary, t.summary.clone())),
        Row::one(cell(T::Content, t.content.clone())),
    ]
}

fn departments_row(t: &Ticket, cx: &FormContext<'_>) -> Row {
    let lead = t.lead_department.map(|id| cx.department(id)).unwrap_or_default();
    let assisting = t.assisting_departments.iter().map(|&id| cx.department(id)).collect::<Vec<_>>().join("、");
    Row::two(cell(T::LeadDepartment, lead), cell(T::AssistingDepartments, assisting))
}

/// The blank the signer fills in by hand.
const SIGN_DATE: &str = "　　　　年　　月　　日";

/// The acceptance form (受理单): the hotline's record of what was registered, with the
/// verification code given to the caller and a box for the acceptance opinion.
pub fn acceptance_form(ticket: &Ticket, cx: &FormContext<'_>, font: &CjkFont) -> Result<Vec<u8>, PrintError> {
    let t = ticket;
    let mut rows = vec![
        Row::two(cell(T::TicketNo, t.no.to_string()), cell(T::VerificationCode, t.verification_code.clone().unwrap_or_default())),
        Row::two(cell(T::Created, time(t.created_at)), cell(T::Channel, t.channel.zh())),
        Row::two(cell(T::Kind, t.kind.zh()), cell(T::Category, cx.category(t))),
    ];
    rows.extend(caller_rows(t));
    rows.push(departments_row(t, cx));
    rows.push(Row::two(cell(T::Due, date(t.due_date)), cell(T::RegisteredBy, t.created_by.clone())));
    rows.push(Row::handwritten(cell(T::AcceptanceOpinion, ""), 4));
    rows.push(Row::signature(cell(T::AcceptorSignature, ""), cell(T::SignDate, SIGN_DATE)));
    render(t, cx, font, T::AcceptanceFormTitle, rows)
}

/// The dispatch form (转办单): what the lead department is asked to handle, by when, with the
/// dispatcher's note and boxes for the department's opinion and signature. No verification
/// code: it is the caller's, not the department's.
pub fn dispatch_form(ticket: &Ticket, cx: &FormContext<'_>, font: &CjkFont) -> Result<Vec<u8>, PrintError> {
    let t = ticket;
    let dispatch = t.history.iter().rev().find(|h| h.to_state == TicketState::Dispatched);
    let mut rows = vec![
        Row::two(cell(T::TicketNo, t.no.to_string()), cell(T::Kind, t.kind.zh())),
        Row::two(cell(T::Created, time(t.created_at)), cell(T::DispatchedAt, dispatch.map(|h| time(h.at)).unwrap_or_default())),
        Row::two(cell(T::Channel, t.channel.zh()), cell(T::Category, cx.category(t))),
    ];
    rows.extend(caller_rows(t));
    rows.push(departments_row(t, cx));
    rows.push(Row::two(cell(T::Due, date(t.due_date)), cell(T::Dispatcher, dispatch.map(|h| h.actor.clone()).unwrap_or_default())));
    rows.push(Row::one(cell(T::DispatchNote, dispatch.map(|h| h.note.clone()).unwrap_or_default())));
    rows.push(Row::handwritten(cell(T::HandlingOpinion, ""), 5));
    rows.push(Row::signature(cell(T::HandlerSignature, ""), cell(T::SignDate, SIGN_DATE)));
    render(t, cx, font, T::DispatchFormTitle, rows)
}

fn render(t: &Ticket, cx: &FormContext<'_>, font: &CjkFont, title: T, rows: Vec<Row>) -> Result<Vec<u8>, PrintError> {
    let metrics = font.metrics()?;
    let form = Form {
        title: title.s(Lang::Zh).to_owned(),
        title_en: title.s(Lang::En).to_owned(),
        subtitle: format!("{}　{}：{}", T::TimesInBeijingTime.s(Lang::Zh), T::PrintedAt.s(Lang::Zh), time(cx.printed_at)),
        continued: format!("{}（续）　{}：{}", title.s(Lang::Zh), T::TicketNo.s(Lang::Zh), t.no),
        rows,
    };
    let pages = layout::lay_out(&metrics, &form);
    write_pdf(&pages, font, &metrics, &form.title)
}

const FONT: Name<'static> = Name(b"F1");

/// The PDF of laid-out pages: one content stream per page, one embedded font subset.
fn write_pdf(pages: &[Page], font: &CjkFont, metrics: &font::Metrics<'_>, title: &str) -> Result<Vec<u8>, PrintError> {
    let mut glyphs = font::GlyphSet::default();
    let contents: Vec<Vec<u8>> = pages.iter().map(|p| miniz_oxide::deflate::compress_to_vec_zlib(&content(p, &mut glyphs, metrics), 6)).collect();

    let mut pdf = Pdf::new();
    let mut next = Ref::new(1);
    let (catalog, tree, font_id, info) = (next.bump(), next.bump(), next.bump(), next.bump());
    let ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (next.bump(), next.bump())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(ids.iter().map(|p| p.0)).count(ids.len() as i32);
    for ((page_id, content_id), data) in ids.iter().zip(&contents) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, layout::PAGE_W, layout::PAGE_H)).parent(tree).contents(*content_id);
        page.resources().fonts().pair(FONT, font_id);
        page.finish();
        pdf.stream(*content_id, data).filter(Filter::FlateDecode);
    }
    glyphs.write(font, &mut pdf, font_id, &mut next)?;
    pdf.document_info(info).title(TextStr(title)).creator(TextStr("Rexian 热线"));
    Ok(pdf.finish())
}

/// A page's drawing: shading first, then text and rules, then the cell borders on top so a
/// neighbouring cell's shading never thins a border.
fn content(page: &Page, glyphs: &mut font::GlyphSet, metrics: &font::Metrics<'_>) -> Vec<u8> {
    let mut c = Content::new();
    for op in &page.ops {
        if let Op::Fill { x, y, w, h, gray } = op {
            c.set_fill_gray(*gray).rect(*x, *y, *w, *h).fill_nonzero();
        }
    }
    for op in &page.ops {
        match op {
            Op::Text { x, y, size, gray, bold, text } => {
                c.save_state();
                c.set_fill_gray(*gray);
                if *bold {
                    // One weight is installed; a thin outline thickens the title's strokes.
                    c.set_stroke_gray(*gray).set_line_width(size * 0.03);
                }
                c.begin_text().set_font(FONT, *size);
                c.set_text_rendering_mode(if *bold { TextRenderingMode::FillStroke } else { TextRenderingMode::Fill });
                c.next_line(*x, *y).show(Str(&glyphs.encode(metrics, text))).end_text();
                c.restore_state();
            }
            Op::Rule { x1, x2, y } => {
                c.set_stroke_gray(0.6).set_line_width(0.3).move_to(*x1, *y).line_to(*x2, *y).stroke();
            }
            Op::Fill { .. } | Op::Frame { .. } => {}
        }
    }
    c.set_stroke_gray(0.0).set_line_width(0.6);
    for op in &page.ops {
        if let Op::Frame { x, y, w, h } = op {
            c.rect(*x, *y, *w, *h).stroke();
        }
    }
    c.finish().to_vec()
}

#[cfg(test)]
mod tests;
