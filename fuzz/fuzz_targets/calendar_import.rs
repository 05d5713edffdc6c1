//! The holiday calendar import format (`switchd calendar import FILE`), parsed by
//! `switchd::calendar::parse_import` from arbitrary UTF-8 (invalid UTF-8 is skipped).
//!
//! * `parse_import` never panics, and its error's `Display` never panics.
//! * If it returns entries, `render_export` of them parses back to the same entries, except
//!   for what `render_export` documents: control characters in a name (a lone `\r`, NUL, …;
//!   the parser never yields `\n` inside a name) become spaces and the name is trimmed again.
//!   Dates, kinds and order are kept exactly, and no duplicate date appears (the parser rejects
//!   duplicates, so a successful import has none and neither does its export).
//! * Export is a fixed point after one round: rendering the re-parsed entries gives the same text.
//!
//! Set `REXIAN_FUZZ_DEBUG=1` to print what each input parsed to (useful for checking seeds).

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchd::calendar::{parse_import, render_export, CalendarEntry};

/// What `render_export` does to a name, and so what the re-import must yield.
fn exported_name(name: &str) -> String {
    let spaced: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced.trim().to_owned()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let entries = match parse_import(text) {
        Ok(entries) => entries,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if std::env::var_os("REXIAN_FUZZ_DEBUG").is_some() {
        eprintln!("calendar_import: {entries:?}");
    }
    let mut dates: Vec<_> = entries.iter().map(|e| e.date).collect();
    dates.sort();
    dates.dedup();
    assert_eq!(dates.len(), entries.len(), "parse_import returned a duplicate date");

    let rendered = render_export(&entries);
    let back = match parse_import(&rendered) {
        Ok(back) => back,
        Err(e) => panic!("export does not import again: {e}\nexport:\n{rendered}"),
    };
    let expected: Vec<CalendarEntry> = entries
        .iter()
        .map(|e| CalendarEntry { name: exported_name(&e.name), ..e.clone() })
        .collect();
    assert_eq!(back, expected, "export imports to different entries\nexport:\n{rendered}");
    assert_eq!(render_export(&back), rendered, "export is not a fixed point");
});
