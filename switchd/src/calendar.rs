//! Statutory working-day calendar for ticket deadlines.
//!
//! Hotline tickets must be answered within a number of *working days* as defined by the
//! State Council holiday schedule: Monday–Friday are working days, Saturday/Sunday are
//! not, except where the schedule declares a holiday (放假) or a make-up working day
//! (调休上班). Administrators maintain those exceptions per date; this module stores them,
//! counts working days, and imports/exports them as plain text.
//!
//! Counting never panics: date arithmetic is checked, and when a result would leave the
//! range `chrono` can represent, the computation stops at `NaiveDate::MAX` with a warning.
//! Counting is done in O(number of overrides) rather than day by day, so huge inputs
//! (e.g. `u32::MAX` working days) cannot stall the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Included, Unbounded};

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The calendar's entries are the desk protocol's own types, so nothing is converted on the way.
pub use rexian_shared::{CalendarDay as CalendarEntry, DayKind as DayOverride};

/// Parse the kind field of the import format. Chinese spellings are accepted because
/// administrators often copy the State Council notice (休/假 = off, 班/上班 = work).
fn kind_from_field(field: &str) -> Option<DayOverride> {
    match field.to_ascii_lowercase().as_str() {
        "holiday" | "休" | "假" => Some(DayOverride::Holiday),
        "workday" | "班" | "上班" => Some(DayOverride::Workday),
        _ => None,
    }
}

/// Errors from [`parse_import`]. Every variant carries the 1-based line number so an
/// administrator can fix the file without guessing.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The line has no kind field (no comma after the date).
    #[error("line {line}: missing kind field (expected `YYYY-MM-DD,holiday|workday,name`), found `{content}`")]
    BadLineFormat {
        /// 1-based line number in the imported text.
        line: usize,
        /// The offending line (trimmed, shortened to 80 characters).
        content: String,
    },
    /// The date field is not a valid `YYYY-MM-DD` calendar date.
    #[error("line {line}: invalid date field `{value}` (expected YYYY-MM-DD)")]
    BadDate {
        /// 1-based line number in the imported text.
        line: usize,
        /// The date field as written.
        value: String,
        /// Why chrono rejected it.
        #[source]
        source: chrono::ParseError,
    },
    /// The kind field is not one of the accepted spellings.
    #[error(
        "line {line}: invalid kind field `{value}` (expected holiday/workday, 休/假 or 班/上班)"
    )]
    BadKind {
        /// 1-based line number in the imported text.
        line: usize,
        /// The kind field as written.
        value: String,
    },
    /// The same date appears twice; rejected because silently keeping one of two
    /// possibly contradictory declarations would hide an administrator's mistake.
    #[error("line {line}: date field {date} already given on line {first_line}")]
    DuplicateDate {
        /// 1-based line number of the repeated date.
        line: usize,
        /// The repeated date.
        date: NaiveDate,
        /// 1-based line number where the date first appeared.
        first_line: usize,
    },
}

/// Result of a deadline computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// The computed deadline (the n-th working day).
    pub date: NaiveDate,
    /// Set when the result relies on guessed data (years without calendar entries) or
    /// overflowed; operators must see this rather than trust a silent guess.
    pub warning: Option<String>,
}

/// Working-day calendar: the Monday–Friday rule plus per-date overrides.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// Overrides keyed by date, so range queries give the exceptions in an interval.
    overrides: BTreeMap<NaiveDate, CalendarEntry>,
    /// Years with at least one override; other years are assumed to be weekends-only.
    years: BTreeSet<i32>,
}

/// `08:30-17:30` as a half-open range.
pub fn parse_hours(range: &str) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
    let (from, to) = range.split_once('-')?;
    let from = chrono::NaiveTime::parse_from_str(from.trim(), "%H:%M").ok()?;
    let to = chrono::NaiveTime::parse_from_str(to.trim(), "%H:%M").ok()?;
    (from < to).then_some((from, to))
}

impl Calendar {
    /// Build a calendar. If a date occurs more than once, the last entry wins (the
    /// database is expected to hold one row per date already).
    pub fn new(entries: impl IntoIterator<Item = CalendarEntry>) -> Self {
        let mut cal = Self::default();
        for entry in entries {
            cal.years.insert(entry.date.year());
            cal.overrides.insert(entry.date, entry);
        }
        cal
    }

    /// All overrides in date order.
    pub fn entries(&self) -> impl Iterator<Item = &CalendarEntry> {
        self.overrides.values()
    }

    /// Overrides of one year in date order (for per-year display and export).
    pub fn entries_for_year(&self, year: i32) -> Vec<CalendarEntry> {
        self.overrides
            .values()
            .filter(|e| e.date.year() == year)
            .cloned()
            .collect()
    }

    /// Years that have at least one entry (sorted).
    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// Holiday override => false; Workday override => true; otherwise Mon–Fri true,
    /// Sat/Sun false.
    /// Whether `local` falls on a working day within one of `hours` (`08:30-17:30` each).
    pub fn is_open(&self, local: chrono::NaiveDateTime, hours: &[String]) -> bool {
        self.is_working_day(local.date()) && hours.iter().filter_map(|h| parse_hours(h)).any(|(from, to)| local.time() >= from && local.time() < to)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.overrides.get(&date) {
            Some(entry) => entry.kind.is_working(),
            None => is_weekday(date),
        }
    }

    /// The date of the n-th working day strictly after `start` (start itself never
    /// counts, because the day a ticket arrives is not a full working day).
    /// n == 0 returns `start`. Example: start Friday, n = 1, no holidays => next Monday.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Deadline {
        if n == 0 {
            return Deadline {
                date: start,
                warning: None,
            };
        }
        match self.nth_working_day_after(start, u64::from(n)) {
            Some(date) => Deadline {
                date,
                warning: self.coverage_warning(start, date),
            },
            None => Deadline {
                date: NaiveDate::MAX,
                warning: Some(format!(
                    "{n} working days after {start} is beyond the supported date range; \
                     counting stopped / 截止日期超出可计算的日期范围"
                )),
            },
        }
    }

    /// Number of working days d with from < d <= to (0 if to <= from).
    /// Computed as plain weekdays corrected by the overrides in the interval, so the
    /// cost does not depend on the length of the interval.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        if to <= from {
            return 0;
        }
        let plain = i64::try_from(weekdays_between(from, to)).unwrap_or(i64::MAX);
        let correction: i64 = self
            .overrides
            .range((Excluded(from), Included(to)))
            .map(|(date, entry)| i64::from(entry.kind.is_working()) - i64::from(is_weekday(*date)))
            .sum();
        u32::try_from(plain.saturating_add(correction).max(0)).unwrap_or(u32::MAX)
    }

    /// Walk from override to override, skipping the plain weekdays in between
    /// arithmetically. Returns None if the result is not representable.
    fn nth_working_day_after(&self, start: NaiveDate, n: u64) -> Option<NaiveDate> {
        let mut cursor = start;
        let mut remaining = n;
        for (&date, entry) in self.overrides.range((Excluded(start), Unbounded)) {
            let gap = weekdays_between(cursor, date.pred_opt()?);
            if gap >= remaining {
                return add_weekdays(cursor, remaining);
            }
            remaining -= gap;
            if entry.kind.is_working() {
                if remaining == 1 {
                    return Some(date);
                }
                remaining -= 1;
            }
            cursor = date;
        }
        add_weekdays(cursor, remaining)
    }

    /// Explain why a deadline from `start` to `deadline` may be wrong: some counted day
    /// lies in a year without any calendar entries, where only weekends were assumed.
    fn coverage_warning(&self, start: NaiveDate, deadline: NaiveDate) -> Option<String> {
        let Some(&last) = self.years.last() else {
            return Some(format!(
                "deadline {deadline}: no holiday calendar data loaded; weekends only assumed \
                 / 未加载节假日数据，仅按周末计算"
            ));
        };
        if deadline.year() > last {
            return Some(format!(
                "deadline {deadline} lies past the last year with calendar data ({last}); \
                 weekends only assumed / 截止日期超出节假日数据范围"
            ));
        }
        let first_counted = start.succ_opt().unwrap_or(deadline);
        let missing = self.first_missing_year(first_counted.year(), deadline.year())?;
        Some(format!(
            "counting from {start} to deadline {deadline} passes through {missing}, which has \
             no calendar data; weekends only assumed / 计算区间包含无节假日数据的年份（{missing}）"
        ))
    }

    /// First year in `from..=to` without any entry, if any.
    fn first_missing_year(&self, from: i32, to: i32) -> Option<i32> {
        if from > to {
            return None;
        }
        let mut expected = from;
        for &year in self.years.range(from..=to) {
            if year != expected {
                return Some(expected);
            }
            expected = expected.checked_add(1)?;
        }
        (expected <= to).then_some(expected)
    }
}

/// Monday–Friday, the default working week.
fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Number of Monday–Friday dates d with from < d <= to, by arithmetic: every 7
/// consecutive days hold exactly 5 weekdays, and the remainder is checked by weekday
/// number, so no date arithmetic (and no overflow) is involved.
fn weekdays_between(from: NaiveDate, to: NaiveDate) -> u64 {
    if to <= from {
        return 0;
    }
    let days = u64::try_from(to.signed_duration_since(from).num_days()).unwrap_or(0);
    let start_wd = u64::from(from.weekday().num_days_from_monday());
    let rest = (1..=days % 7).filter(|i| (start_wd + i) % 7 < 5).count();
    (days / 7) * 5 + rest as u64
}

/// The n-th Monday–Friday date strictly after `from` (n >= 1), ignoring overrides.
/// Whole weeks are jumped at once (7 days = 5 weekdays); at most one week is then walked.
fn add_weekdays(from: NaiveDate, n: u64) -> Option<NaiveDate> {
    if n == 0 {
        return Some(from);
    }
    let weeks = (n - 1) / 5;
    let mut remaining = n - weeks * 5;
    let mut date = from.checked_add_days(Days::new(weeks.checked_mul(7)?))?;
    loop {
        date = date.succ_opt()?;
        if is_weekday(date) {
            remaining -= 1;
            if remaining == 0 {
                return Some(date);
            }
        }
    }
}

/// Parse the import format used by `switchd calendar import FILE`: UTF-8 text, one entry
/// per line, `YYYY-MM-DD,holiday|workday,name` (name optional, may contain Chinese and
/// commas; kind also accepts 休 / 班 and 假 / 上班; a full-width comma `，` also separates
/// fields because Chinese input methods produce it); blank lines and lines starting with
/// '#' ignored; surrounding whitespace and a UTF-8 BOM (spreadsheet exports) are stripped.
/// Duplicate dates are rejected.
pub fn parse_import(text: &str) -> Result<Vec<CalendarEntry>, CalendarError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut first_seen: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_line(line, trimmed)?;
        if let Some(&first_line) = first_seen.get(&entry.date) {
            return Err(CalendarError::DuplicateDate {
                line,
                date: entry.date,
                first_line,
            });
        }
        first_seen.insert(entry.date, line);
        entries.push(entry);
    }
    Ok(entries)
}

/// Parse one non-empty, non-comment, trimmed line.
fn parse_line(line: usize, text: &str) -> Result<CalendarEntry, CalendarError> {
    let mut fields = text.splitn(3, [',', '，']);
    let date_field = fields.next().unwrap_or_default().trim();
    let kind_field = fields
        .next()
        .map(str::trim)
        .ok_or_else(|| CalendarError::BadLineFormat {
            line,
            content: text.chars().take(80).collect(),
        })?;
    let name = fields.next().unwrap_or_default().trim().to_string();
    let date = NaiveDate::parse_from_str(date_field, "%Y-%m-%d").map_err(|source| {
        CalendarError::BadDate {
            line,
            value: date_field.to_string(),
            source,
        }
    })?;
    let kind = kind_from_field(kind_field).ok_or_else(|| CalendarError::BadKind {
        line,
        value: kind_field.to_string(),
    })?;
    Ok(CalendarEntry { date, kind, name })
}

/// Render entries in the import format (round-trips with [`parse_import`]). Line breaks
/// and other control characters in names become spaces, because a name may not span
/// lines; names are trimmed, as the parser would trim them anyway.
pub fn render_export(entries: &[CalendarEntry]) -> String {
    let mut out = String::new();
    for entry in entries {
        let name: String = entry
            .name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let name = name.trim();
        out.push_str(&entry.date.to_string());
        out.push(',');
        out.push_str(entry.kind.as_str());
        if !name.is_empty() {
            out.push(',');
            out.push_str(name);
        }
        out.push('\n');
    }
    out
}

/// Suffix marking guessed 2027 entries, so administrators know to replace them once the
/// State Council publishes the 2027 schedule.
const ESTIMATED: &str = " (预估 estimated)";

/// One run of consecutive dates within a month: (year, month, first day, last day, kind, name).
type Run = (i32, u32, u32, u32, DayOverride, &'static str);

/// 2026: State Council notice 国办发明电〔2025〕7号.
#[rustfmt::skip]
const SEED_2026: &[Run] = &[
    (2026, 1, 1, 3, DayOverride::Holiday, "元旦 New Year's Day"),
    (2026, 1, 4, 4, DayOverride::Workday, "元旦调休上班 New Year make-up workday"),
    (2026, 2, 14, 14, DayOverride::Workday, "春节调休上班 Spring Festival make-up workday"),
    (2026, 2, 15, 23, DayOverride::Holiday, "春节 Spring Festival"),
    (2026, 2, 28, 28, DayOverride::Workday, "春节调休上班 Spring Festival make-up workday"),
    (2026, 4, 4, 6, DayOverride::Holiday, "清明节 Qingming Festival"),
    (2026, 5, 1, 5, DayOverride::Holiday, "劳动节 Labour Day"),
    (2026, 5, 9, 9, DayOverride::Workday, "劳动节调休上班 Labour Day make-up workday"),
    (2026, 6, 19, 21, DayOverride::Holiday, "端午节 Dragon Boat Festival"),
    (2026, 9, 20, 20, DayOverride::Workday, "国庆节调休上班 National Day make-up workday"),
    (2026, 9, 25, 27, DayOverride::Holiday, "中秋节 Mid-Autumn Festival"),
    (2026, 10, 1, 7, DayOverride::Holiday, "国庆节 National Day"),
    (2026, 10, 10, 10, DayOverride::Workday, "国庆节调休上班 National Day make-up workday"),
];

/// 2027: estimate only, because the State Council had not published the schedule. Seeded
/// are the statutory days, the substitute days the law requires when a statutory day
/// falls on a weekend, and the customary bridge days; the make-up workdays that would
/// pay for the bridge days are unknown and therefore not seeded.
#[rustfmt::skip]
const SEED_2027: &[Run] = &[
    (2027, 1, 1, 3, DayOverride::Holiday, "元旦 New Year's Day"),
    (2027, 2, 5, 12, DayOverride::Holiday, "春节 Spring Festival"),
    (2027, 4, 3, 5, DayOverride::Holiday, "清明节 Qingming Festival"),
    (2027, 5, 1, 5, DayOverride::Holiday, "劳动节 Labour Day"),
    (2027, 6, 9, 9, DayOverride::Holiday, "端午节 Dragon Boat Festival"),
    (2027, 9, 15, 15, DayOverride::Holiday, "中秋节 Mid-Autumn Festival"),
    (2027, 10, 1, 7, DayOverride::Holiday, "国庆节 National Day"),
];

/// The statutory holiday schedule shipped with the daemon for 2026 and 2027, seeded into
/// a new database so deadlines are right from the first day. 2027 names carry the
/// "(预估 estimated)" suffix because that schedule was not yet published.
pub fn statutory_seed() -> Vec<CalendarEntry> {
    let mut entries = Vec::new();
    push_runs(&mut entries, SEED_2026, "");
    push_runs(&mut entries, SEED_2027, ESTIMATED);
    entries.sort_by_key(|e| e.date);
    entries
}

/// Expand runs into one entry per date, appending `suffix` to each name.
fn push_runs(entries: &mut Vec<CalendarEntry>, runs: &[Run], suffix: &str) {
    for &(year, month, first, last, kind, name) in runs {
        for day in first..=last {
            if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
                entries.push(CalendarEntry {
                    date,
                    kind,
                    name: format!("{name}{suffix}"),
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn seeded() -> Calendar {
        Calendar::new(statutory_seed())
    }

    /// Day-by-day reference implementation the fast algorithm is checked against.
    fn naive_add(cal: &Calendar, start: NaiveDate, n: u32) -> NaiveDate {
        let (mut date, mut left) = (start, n);
        while left > 0 {
            date = date.succ_opt().unwrap();
            if cal.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }

    #[test]
    fn weekends_are_not_working_days_weekdays_are() {
        let cal = Calendar::default();
        assert!(!cal.is_working_day(d(2025, 3, 8))); // Saturday
        assert!(!cal.is_working_day(d(2025, 3, 9))); // Sunday
        for day in 10..=14 {
            assert!(cal.is_working_day(d(2025, 3, day)));
        }
    }

    #[test]
    fn friday_plus_one_is_monday() {
        let cal = seeded();
        assert_eq!(cal.add_working_days(d(2026, 3, 6), 1).date, d(2026, 3, 9));
        assert_eq!(cal.add_working_days(d(2026, 3, 7), 5).date, d(2026, 3, 13));
        // from Saturday
    }

    #[test]
    fn spring_festival_2026_holiday_run_is_skipped() {
        let cal = seeded();
        for day in 15..=23 {
            assert!(!cal.is_working_day(d(2026, 2, day)), "2026-02-{day}");
        }
        // Fri 02-13 -> Sat 02-14 (make-up) -> holiday run -> Tue 02-24.
        assert_eq!(cal.add_working_days(d(2026, 2, 13), 2).date, d(2026, 2, 24));
    }

    #[test]
    fn make_up_saturday_counts() {
        let cal = seeded();
        assert!(cal.is_working_day(d(2026, 2, 28)));
        assert_eq!(cal.add_working_days(d(2026, 2, 27), 1).date, d(2026, 2, 28));
        assert_eq!(cal.working_days_between(d(2026, 2, 27), d(2026, 3, 2)), 2);
    }

    #[test]
    fn national_day_2026() {
        let cal = seeded();
        let r = cal.add_working_days(d(2026, 9, 30), 1);
        assert_eq!(
            r,
            Deadline {
                date: d(2026, 10, 8),
                warning: None
            }
        );
        // By hand: Mon 09-28 start; 09-29 (1), 09-30 (2), 10-01..07 holiday,
        // 10-08 Thu (3), 10-09 Fri (4), 10-10 Sat make-up workday (5).
        assert_eq!(
            cal.add_working_days(d(2026, 9, 28), 5).date,
            d(2026, 10, 10)
        );
        // 09-20 (Sunday) is a make-up workday: Fri 09-18 + 1 = Sun 09-20.
        assert_eq!(cal.add_working_days(d(2026, 9, 18), 1).date, d(2026, 9, 20));
    }

    #[test]
    fn zero_days_returns_start_even_on_holiday() {
        let cal = seeded();
        for start in [d(2026, 10, 1), d(2026, 3, 7), d(2030, 1, 1), NaiveDate::MAX] {
            assert_eq!(
                cal.add_working_days(start, 0),
                Deadline {
                    date: start,
                    warning: None
                }
            );
        }
    }

    #[test]
    fn working_days_between_is_inverse_of_add_working_days() {
        let cal = seeded();
        let mut start = d(2025, 12, 1);
        while start < d(2028, 1, 31) {
            for n in 0..30 {
                let end = cal.add_working_days(start, n).date;
                assert_eq!(cal.working_days_between(start, end), n, "{start} + {n}");
                if n > 0 {
                    assert!(cal.is_working_day(end));
                }
            }
            start = start.succ_opt().unwrap();
        }
    }

    #[test]
    fn working_days_between_empty_or_reversed_is_zero() {
        let cal = seeded();
        assert_eq!(cal.working_days_between(d(2026, 5, 6), d(2026, 5, 6)), 0);
        assert_eq!(cal.working_days_between(d(2026, 5, 6), d(2026, 5, 1)), 0);
        assert_eq!(cal.working_days_between(d(2026, 4, 30), d(2026, 5, 6)), 1);
    }

    #[test]
    fn fast_counting_matches_day_by_day_reference() {
        let entries = statutory_seed().into_iter().chain([
            // Redundant overrides must not confuse the arithmetic.
            CalendarEntry {
                date: d(2026, 3, 3),
                kind: DayOverride::Workday,
                name: String::new(),
            },
            CalendarEntry {
                date: d(2026, 3, 7),
                kind: DayOverride::Holiday,
                name: String::new(),
            },
        ]);
        let cal = Calendar::new(entries);
        let mut start = d(2025, 12, 20);
        while start < d(2027, 12, 31) {
            for n in [1, 2, 3, 4, 5, 6, 7, 10, 15, 60, 300] {
                assert_eq!(
                    cal.add_working_days(start, n).date,
                    naive_add(&cal, start, n),
                    "{start} + {n}"
                );
            }
            start = start.checked_add_days(Days::new(3)).unwrap();
        }
    }

    #[test]
    fn warning_past_last_year_with_data() {
        let cal = seeded();
        // Thu 2027-12-30: 12-31 (1), 2028-01-03..06 (2..5).
        let r = cal.add_working_days(d(2027, 12, 30), 5);
        assert_eq!(r.date, d(2028, 1, 6));
        let w = r.warning.unwrap();
        assert!(
            w.contains("2028-01-06")
                && w.contains("(2027)")
                && w.contains("截止日期超出节假日数据范围"),
            "{w}"
        );
    }

    #[test]
    fn no_warning_inside_data() {
        let cal = seeded();
        assert_eq!(cal.add_working_days(d(2026, 1, 5), 200).warning, None);
        assert_eq!(cal.add_working_days(d(2027, 12, 30), 1).warning, None);
    }

    #[test]
    fn warning_for_gap_year_before_first_year_and_empty_calendar() {
        let seed = statutory_seed()
            .into_iter()
            .filter(|e| e.date.year() == 2026);
        let late = CalendarEntry {
            date: d(2028, 1, 1),
            kind: DayOverride::Holiday,
            name: String::new(),
        };
        let cal = Calendar::new(seed.chain([late]));
        let w = cal.add_working_days(d(2026, 12, 1), 40).warning.unwrap();
        assert!(w.contains("2027"), "{w}");
        let w = cal.add_working_days(d(2025, 12, 30), 3).warning.unwrap();
        assert!(w.contains("2025"), "{w}");
        // Start on 12-31 of a year without data: only the following year is counted.
        assert_eq!(cal.add_working_days(d(2025, 12, 31), 3).warning, None);
        assert!(Calendar::default()
            .add_working_days(d(2026, 1, 5), 1)
            .warning
            .is_some());
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let cal = seeded();
        let r = cal.add_working_days(d(2026, 1, 1), u32::MAX);
        assert_eq!(r.date, NaiveDate::MAX);
        assert!(r.warning.is_some());
        let r = cal.add_working_days(NaiveDate::MAX, 1);
        assert_eq!(r.date, NaiveDate::MAX);
        assert!(r.warning.is_some());
        let r = cal.add_working_days(NaiveDate::MIN, 10);
        assert!(r.date > NaiveDate::MIN && r.warning.is_some());
        let all = cal.working_days_between(NaiveDate::MIN, NaiveDate::MAX);
        assert!(all > 60_000_000);
        assert_eq!(cal.working_days_between(NaiveDate::MAX, NaiveDate::MIN), 0);
    }

    #[test]
    fn parse_errors_name_the_line_and_field() {
        let err = parse_import("# header\n2026-10-10,workday\n2026-10-11\n").unwrap_err();
        assert!(matches!(err, CalendarError::BadLineFormat { line: 3, .. }));
        assert!(
            err.to_string().starts_with("line 3: missing kind field"),
            "{err}"
        );

        let err = parse_import("\n2026-02-30,holiday,x").unwrap_err();
        assert!(matches!(err, CalendarError::BadDate { line: 2, .. }));
        assert!(
            err.to_string()
                .contains("line 2: invalid date field `2026-02-30`"),
            "{err}"
        );

        let err = parse_import("2026-10-10,maybe,x").unwrap_err();
        assert!(matches!(err, CalendarError::BadKind { line: 1, .. }));
        assert!(
            err.to_string()
                .contains("line 1: invalid kind field `maybe`"),
            "{err}"
        );

        let err = parse_import("2026-10-10,班\n2026-10-10,休").unwrap_err();
        assert!(matches!(
            err,
            CalendarError::DuplicateDate {
                line: 2,
                first_line: 1,
                ..
            }
        ));
    }

    #[test]
    fn parse_accepts_chinese_kinds_comments_and_whitespace() {
        let text = "\u{feff}# 2026 国庆\n\n  2026-10-01 , 休 , 国庆节, 第一天  \r\n2026-10-02,假\n\
                    2026-10-10，上班，国庆节调休\n2026-09-20,班\n2026-05-01,HOLIDAY,劳动节\n";
        let got = parse_import(text).unwrap();
        let kinds: Vec<_> = got.iter().map(|e| e.kind).collect();
        use DayOverride::{Holiday as H, Workday as W};
        assert_eq!(kinds, vec![H, H, W, W, H]);
        assert_eq!(got[0].name, "国庆节, 第一天");
        assert_eq!(got[1].name, "");
        assert_eq!(got[2].date, d(2026, 10, 10));
        assert_eq!(got[2].name, "国庆节调休");
    }

    #[test]
    fn render_and_parse_round_trip() {
        let mut entries = statutory_seed();
        entries.push(CalendarEntry {
            date: d(2028, 1, 1),
            kind: DayOverride::Holiday,
            name: String::new(),
        });
        let text = render_export(&entries);
        assert!(text.contains("2026-10-10,workday,国庆节调休上班"));
        assert_eq!(parse_import(&text).unwrap(), entries);
        let odd = vec![CalendarEntry {
            date: d(2026, 1, 1),
            kind: DayOverride::Holiday,
            name: "a\nb".into(),
        }];
        assert_eq!(parse_import(&render_export(&odd)).unwrap()[0].name, "a b");
    }

    #[test]
    fn seed_matches_official_2026_schedule() {
        let cal = seeded();
        let workdays = [
            (1, 4, Weekday::Sun),
            (2, 14, Weekday::Sat),
            (2, 28, Weekday::Sat),
            (5, 9, Weekday::Sat),
            (9, 20, Weekday::Sun),
            (10, 10, Weekday::Sat),
        ];
        for (m, day, wd) in workdays {
            let date = d(2026, m, day);
            assert_eq!(date.weekday(), wd, "{date}");
            assert!(cal.is_working_day(date), "{date}");
        }
        let e = cal.entries().find(|e| e.date == d(2026, 10, 10)).unwrap();
        assert_eq!(e.kind, DayOverride::Workday);
        // 33 holiday dates (3 + 9 + 3 + 5 + 3 + 3 + 7) and 6 make-up workdays.
        let year = cal.entries_for_year(2026);
        assert_eq!(
            year.iter()
                .filter(|e| e.kind == DayOverride::Holiday)
                .count(),
            33
        );
        assert_eq!(year.len(), 39);
        assert_eq!(cal.years(), vec![2026, 2027]);
    }

    #[test]
    fn seed_2027_is_marked_estimated_and_dates_unique() {
        let seed = statutory_seed();
        for e in seed.iter().filter(|e| e.date.year() == 2027) {
            assert!(e.name.ends_with("(预估 estimated)"), "{}", e.name);
        }
        assert!(seed
            .iter()
            .filter(|e| e.date.year() == 2026)
            .all(|e| !e.name.contains("预估")));
        assert_eq!(Calendar::new(seed.clone()).entries().count(), seed.len());
        assert!(seed
            .iter()
            .any(|e| e.date == d(2027, 2, 6) && e.kind == DayOverride::Holiday));
    }

    #[test]
    fn day_override_serializes_snake_case() {
        assert_eq!(
            serde_json::to_string(&DayOverride::Workday).unwrap(),
            "\"workday\""
        );
        let e: CalendarEntry =
            serde_json::from_str(r#"{"date":"2026-10-10","kind":"holiday","name":"x"}"#).unwrap();
        assert_eq!(e.kind, DayOverride::Holiday);
    }
}
