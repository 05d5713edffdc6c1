//! Lays a form out on A4 pages: the title, then a bordered table of rows (a shaded label cell
//! beside each value, one or two pairs to a row), text wrapped to its cell, a row that does
//! not fit carried to the next page (long text split across the break, its label marked
//! 续), and the page number at the foot. The result is a list of drawing operations per page,
//! so the layout is tested without reading PDF.

use super::font::Metrics;

/// A4 in PostScript points.
pub const PAGE_W: f32 = 595.28;
pub const PAGE_H: f32 = 841.89;
/// 20 mm left and right, as Chinese official forms leave for binding and filing.
const MARGIN_X: f32 = 56.7;
const TOP: f32 = 50.0;
/// The table stops here; the footer sits below.
const BOTTOM: f32 = 64.0;
const FOOTER_Y: f32 = 34.0;
/// 五号 (10.5 pt), the size of body text on Chinese forms, on a 16 pt line.
const BODY: f32 = 10.5;
const LEAD: f32 = 16.0;
const SMALL: f32 = 6.5;
const PAD: f32 = 5.0;
const LABEL_W: f32 = 92.0;
const TITLE: f32 = 18.0;
/// Spacing of the ruled lines in a box left for handwriting.
const RULE: f32 = 24.0;

/// A drawing operation; coordinates are points from the bottom left of the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Text from its baseline's left end, in `gray` (0 black), faux-bold when `bold`.
    Text { x: f32, y: f32, size: f32, gray: f32, bold: bool, text: String },
    /// A filled rectangle (the shading of label cells).
    Fill { x: f32, y: f32, w: f32, h: f32, gray: f32 },
    /// A rectangle's outline.
    Frame { x: f32, y: f32, w: f32, h: f32 },
    /// A thin ruled line for handwriting.
    Rule { x1: f32, x2: f32, y: f32 },
}

#[derive(Debug, Default)]
pub struct Page {
    pub ops: Vec<Op>,
}

/// A label (Chinese, English printed small beneath when it fits) and its value.
#[derive(Debug, Clone)]
pub struct Cell {
    pub zh: String,
    pub en: String,
    pub value: String,
}

impl Cell {
    pub fn new(zh: &str, en: &str, value: impl Into<String>) -> Cell {
        Cell { zh: zh.to_owned(), en: en.to_owned(), value: value.into() }
    }
}

/// One row of the table: one pair across the width, or two side by side.
#[derive(Debug, Clone)]
pub struct Row {
    pub cells: Vec<Cell>,
    /// At least this tall (a box left for handwriting).
    pub min_height: f32,
    /// Ruled lines in the value cell, for a handwritten opinion.
    pub ruled: bool,
}

impl Row {
    pub fn one(cell: Cell) -> Row {
        Row { cells: vec![cell], min_height: 0.0, ruled: false }
    }
    pub fn two(left: Cell, right: Cell) -> Row {
        Row { cells: vec![left, right], min_height: 0.0, ruled: false }
    }
    /// A box of `lines` ruled lines for a handwritten opinion.
    pub fn handwritten(cell: Cell, lines: usize) -> Row {
        Row { cells: vec![cell], min_height: RULE * lines as f32 + PAD, ruled: true }
    }
    /// A row tall enough to sign in.
    pub fn signature(left: Cell, right: Cell) -> Row {
        Row { cells: vec![left, right], min_height: 40.0, ruled: false }
    }
}

pub struct Form {
    pub title: String,
    pub title_en: String,
    /// Small text at the right under the title (when the form was printed).
    pub subtitle: String,
    /// Heads every page after the first, so a loose second sheet is still identified.
    pub continued: String,
    pub rows: Vec<Row>,
}

/// A row measured for its cells' widths.
struct Measured {
    labels: Vec<(Vec<String>, bool)>,
    values: Vec<Vec<String>>,
    height: f32,
}

fn value_width(cells: usize) -> f32 {
    let n = cells.max(1) as f32;
    ((PAGE_W - 2.0 * MARGIN_X) - n * LABEL_W) / n
}

fn measure(m: &Metrics<'_>, row: &Row) -> Measured {
    let vw = value_width(row.cells.len());
    let labels: Vec<_> = row.cells.iter().map(|c| (wrap(m, &c.zh, BODY, LABEL_W - 2.0 * PAD), !c.en.is_empty() && m.width(&c.en, SMALL) <= LABEL_W - 2.0 * PAD)).collect();
    let values: Vec<_> = row.cells.iter().map(|c| if c.value.is_empty() { Vec::new() } else { wrap(m, &c.value, BODY, vw - 2.0 * PAD) }).collect();
    let label_h = labels.iter().map(|(l, en)| label_height(l.len(), *en)).fold(0.0, f32::max);
    let value_h = values.iter().map(|v| v.len() as f32 * LEAD).fold(0.0, f32::max);
    let height = label_h.max(value_h).max(LEAD).max(row.min_height - 2.0 * PAD) + 2.0 * PAD;
    Measured { labels, values, height }
}

fn label_height(lines: usize, en: bool) -> f32 {
    lines as f32 * LEAD + if en { SMALL + 2.0 } else { 0.0 }
}

/// Lays `form` out; every page gets "第 n 页 共 m 页" at its foot.
pub fn lay_out(m: &Metrics<'_>, form: &Form) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut page = Page::default();
    let mut y = PAGE_H - TOP;
    let centred = |page: &mut Page, y: f32, size: f32, gray: f32, bold: bool, text: &str| {
        let x = (PAGE_W - m.width(text, size)) / 2.0;
        page.ops.push(Op::Text { x, y, size, gray, bold, text: text.to_owned() });
    };
    centred(&mut page, y - TITLE, TITLE, 0.0, true, &form.title);
    y -= TITLE + 6.0;
    centred(&mut page, y - 8.0, 8.0, 0.35, false, &form.title_en);
    y -= 8.0 + 10.0;
    let sub_w = m.width(&form.subtitle, 9.0);
    page.ops.push(Op::Text { x: PAGE_W - MARGIN_X - sub_w, y: y - 9.0, size: 9.0, gray: 0.0, bold: false, text: form.subtitle.clone() });
    y -= 9.0 + 6.0;

    let mut queue: std::collections::VecDeque<Row> = form.rows.iter().cloned().collect();
    // Nothing of the table on this page yet: a row that cannot be split is drawn here even if
    // it runs past the foot, since on the next page it would not fit either.
    let mut fresh = true;
    while let Some(row) = queue.pop_front() {
        let measured = measure(m, &row);
        let room = y - BOTTOM;
        let splittable_at = |fits: usize| row.cells.len() == 1 && !row.ruled && fits >= 2 && fits < measured.values[0].len() && label_height(measured.labels[0].0.len(), measured.labels[0].1) <= fits as f32 * LEAD;
        let fits = ((room - 2.0 * PAD) / LEAD).floor().max(0.0) as usize;
        if measured.height <= room || (fresh && !splittable_at(fits)) {
            draw_row(&mut page.ops, m, &row, &measured, y);
            y -= measured.height;
            fresh = false;
            continue;
        }
        // Long text splits at a line break when two lines and the label fit here; anything
        // else goes whole to the next page (where it fits, or splits again).
        if splittable_at(fits) {
            let mut lines = measured.values[0].clone();
            let rest = lines.split_off(fits);
            let first = Measured { labels: measured.labels.clone(), values: vec![lines], height: fits as f32 * LEAD + 2.0 * PAD };
            draw_row(&mut page.ops, m, &row, &first, y);
            let cell = &row.cells[0];
            queue.push_front(Row::one(Cell::new(&format!("{}（续）", cell.zh), &continued_en(&cell.en), rest.join("\n"))));
        } else {
            queue.push_front(row);
        }
        pages.push(std::mem::take(&mut page));
        y = PAGE_H - TOP;
        page.ops.push(Op::Text { x: MARGIN_X, y: y - 9.0, size: 9.0, gray: 0.0, bold: false, text: form.continued.clone() });
        y -= 9.0 + 8.0;
        fresh = true;
    }
    pages.push(page);

    let count = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        let text = format!("第 {} 页 共 {} 页", i + 1, count);
        let w = m.width(&text, 9.0);
        page.ops.push(Op::Text { x: (PAGE_W - w) / 2.0, y: FOOTER_Y, size: 9.0, gray: 0.0, bold: false, text });
    }
    pages
}

fn continued_en(en: &str) -> String {
    if en.is_empty() { String::new() } else { format!("{en} (cont.)") }
}

/// The baseline of a line whose top is `top`: CJK glyphs sit about 0.38 em above their
/// baseline at their centre, so this centres them in the 16 pt line.
fn baseline(top: f32, size: f32, lead: f32) -> f32 {
    top - lead / 2.0 - 0.38 * size
}

fn draw_row(ops: &mut Vec<Op>, m: &Metrics<'_>, row: &Row, measured: &Measured, top: f32) {
    let h = measured.height;
    let vw = value_width(row.cells.len());
    for (i, ((label, en), value)) in measured.labels.iter().zip(&measured.values).enumerate() {
        let x = MARGIN_X + i as f32 * (LABEL_W + vw);
        ops.push(Op::Fill { x, y: top - h, w: LABEL_W, h, gray: 0.93 });
        // The label block is centred both ways in its cell, as on printed government forms.
        let block = label_height(label.len(), *en);
        let mut line_top = top - (h - block) / 2.0;
        for l in label {
            ops.push(Op::Text { x: x + (LABEL_W - m.width(l, BODY)) / 2.0, y: baseline(line_top, BODY, LEAD), size: BODY, gray: 0.0, bold: false, text: l.clone() });
            line_top -= LEAD;
        }
        if *en {
            let c = &row.cells[i];
            ops.push(Op::Text { x: x + (LABEL_W - m.width(&c.en, SMALL)) / 2.0, y: line_top - SMALL, size: SMALL, gray: 0.4, bold: false, text: c.en.clone() });
        }
        ops.push(Op::Frame { x, y: top - h, w: LABEL_W, h });
        let vx = x + LABEL_W;
        // Values sit in the middle of a row made taller by its label or its neighbour's value;
        // a box for handwriting keeps its text at the top, above the rules.
        let block = value.len() as f32 * LEAD;
        let mut line_top = if row.ruled { top - PAD } else { top - (h - block) / 2.0 };
        for l in value {
            ops.push(Op::Text { x: vx + PAD, y: baseline(line_top, BODY, LEAD), size: BODY, gray: 0.0, bold: false, text: l.clone() });
            line_top -= LEAD;
        }
        if row.ruled {
            let mut ry = top - PAD - value.len() as f32 * LEAD - RULE;
            while ry > top - h + PAD {
                ops.push(Op::Rule { x1: vx + PAD, x2: vx + vw - PAD, y: ry });
                ry -= RULE;
            }
        }
        ops.push(Op::Frame { x: vx, y: top - h, w: vw, h });
    }
}

/// Closing punctuation may hang past the line's end rather than begin the next line
/// (避头尾: no line of Chinese starts with ，。、 and the like).
fn hangs(c: char) -> bool {
    "，。、；：？！）》」』”’…,.;:!?)".contains(c)
}

/// Wraps `text` to lines no wider than `width` at `size`: Chinese breaks between any two
/// characters, runs of Latin letters and digits (words, phone numbers, codes) only at their
/// ends unless a run is longer than a line; line breaks in the text are kept.
pub fn wrap(m: &Metrics<'_>, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.replace("\r\n", "\n").split(['\n', '\r']) {
        let mut line = String::new();
        let mut w = 0.0;
        // Byte offset in `line` after which a break is allowed (after a space or a CJK char).
        let mut brk: Option<usize> = None;
        for c in para.chars() {
            let c = if c.is_control() { ' ' } else { c };
            let cw = m.glyph(c).1 * size / 1000.0;
            if w + cw > width && !line.is_empty() && !(hangs(c) && w <= width) {
                let cut = match brk {
                    Some(b) if c.is_ascii_graphic() => b,
                    _ => line.len(),
                };
                let rest = line.split_off(cut);
                lines.push(line.trim_end().to_owned());
                line = rest.trim_start().to_owned();
                w = m.width(&line, size);
                brk = None;
            }
            line.push(c);
            w += cw;
            if !c.is_ascii_graphic() {
                brk = Some(line.len());
            }
        }
        lines.push(line.trim_end().to_owned());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::font::CjkFont;

    #[test]
    fn chinese_wraps_anywhere_latin_at_word_ends_and_punctuation_hangs() {
        let font = CjkFont::system().expect("scripts/deps installs a CJK font");
        let m = font.metrics().expect("metrics");
        let width = m.width("一二三四五", BODY);
        assert_eq!(wrap(&m, "一二三四五六七八九十", BODY, width), ["一二三四五", "六七八九十"]);
        // The full stop stays on the line it ends instead of starting the next one.
        assert_eq!(wrap(&m, "一二三四五。六七", BODY, width), ["一二三四五。", "六七"]);
        assert_eq!(wrap(&m, "第一段\n\n第二段", BODY, width), ["第一段", "", "第二段"]);
        let lines = wrap(&m, "电话 13800138000 已拨", BODY, m.width("电话 1380013", BODY));
        assert!(lines.contains(&"13800138000".to_owned()), "{lines:?}");
    }

    #[test]
    fn text_longer_than_pages_splits_and_an_unsplittable_row_taller_than_a_page_still_ends() {
        let font = CjkFont::system().expect("font");
        let m = font.metrics().expect("metrics");
        let long = "很长的内容。".repeat(1200);
        let form = |rows| Form { title: "标题".into(), title_en: "Title".into(), subtitle: String::new(), continued: "续页".into(), rows };
        let pages = lay_out(&m, &form(vec![Row::one(Cell::new("详细内容", "Details", long.clone()))]));
        assert!(pages.len() >= 4, "{} pages", pages.len());
        let last = pages.last().map(|p| p.ops.clone()).unwrap_or_default();
        assert!(last.iter().any(|op| matches!(op, Op::Text { text, .. } if text == "详细内容（续）")));
        // Two pairs side by side do not split; drawn once, overflowing, rather than pushed on forever.
        let pages = lay_out(&m, &form(vec![Row::two(Cell::new("地址", "", long.clone()), Cell::new("电话", "", ""))]));
        assert!(pages.len() <= 2, "{} pages", pages.len());
    }
}
